//! Key material: generation, import and export, as JWKs (josekit).

use josekit::jwk::alg::ec::{EcCurve, EcKeyPair};
use josekit::jwk::alg::ed::{EdCurve, EdKeyPair};
use josekit::jwk::alg::rsa::RsaKeyPair;
use josekit::jwk::{Jwk, KeyPair};

use super::{JoseAlg, SigningAlg};

/// RSA modulus size for generated keys.
pub const RSA_BITS: u32 = 2048;

#[derive(Debug, thiserror::Error)]
pub enum MaterialError {
    #[error("key generation failed: {0}")]
    Generate(String),
    #[error("not a usable key: {0}")]
    Unreadable(String),
    #[error("the key is a {found} key, but {alg} needs {expected}")]
    WrongType {
        alg: SigningAlg,
        found: String,
        expected: &'static str,
    },
}

/// A fresh private JWK for `alg`, with `kid`, `alg` and `use` set.
pub fn generate(alg: SigningAlg, kid: &str) -> Result<Jwk, MaterialError> {
    let jwk = match alg {
        SigningAlg::RS256 | SigningAlg::PS256 => Jwk::generate_rsa_key(RSA_BITS),
        SigningAlg::ES256 => Jwk::generate_ec_key(EcCurve::P256),
        SigningAlg::EdDSA => Jwk::generate_ed_key(EdCurve::Ed25519),
    }
    .map_err(|e| MaterialError::Generate(e.to_string()))?;
    label(jwk, alg, kid)
}

/// Sets `kid`, `alg` and `use: sig`, and checks the key fits `alg`.
pub fn label(mut jwk: Jwk, alg: SigningAlg, kid: &str) -> Result<Jwk, MaterialError> {
    if jwk.key_type() != alg.key_type() {
        return Err(MaterialError::WrongType {
            alg,
            found: jwk.key_type().to_owned(),
            expected: alg.key_type(),
        });
    }
    match (alg, jwk.curve()) {
        (SigningAlg::ES256, Some("P-256")) | (SigningAlg::EdDSA, Some("Ed25519")) => {}
        (SigningAlg::ES256 | SigningAlg::EdDSA, curve) => {
            return Err(MaterialError::WrongType {
                alg,
                found: format!("{} {}", jwk.key_type(), curve.unwrap_or("(no curve)")),
                expected: if alg == SigningAlg::ES256 {
                    "EC P-256"
                } else {
                    "OKP Ed25519"
                },
            });
        }
        _ => {}
    }
    jwk.set_key_id(kid);
    jwk.set_algorithm(alg.as_str());
    jwk.set_key_use("sig");
    // A signer must build from it, which also proves it holds a private key.
    alg.signer(&jwk)
        .map_err(|e| MaterialError::Unreadable(e.to_string()))?;
    Ok(jwk)
}

/// The public half, as published in the JWKS, with `kid`, `alg` and `use`.
pub fn public_jwk(private: &Jwk) -> Result<Jwk, MaterialError> {
    let mut public = private
        .to_public_key()
        .map_err(|e| MaterialError::Unreadable(e.to_string()))?;
    if let Some(kid) = private.key_id() {
        public.set_key_id(kid);
    }
    if let Some(alg) = private.algorithm() {
        public.set_algorithm(alg);
    }
    public.set_key_use("sig");
    Ok(public)
}

/// Reads a private key from a PEM (PKCS#8 or traditional) or JWK file.
pub fn import(bytes: &[u8], alg: SigningAlg, kid: &str) -> Result<Jwk, MaterialError> {
    let text = std::str::from_utf8(bytes).map_err(|_| {
        MaterialError::Unreadable("the file is not text (PEM or JWK expected)".into())
    })?;
    let jwk = if text.trim_start().starts_with('{') {
        Jwk::from_bytes(text.as_bytes()).map_err(|e| MaterialError::Unreadable(e.to_string()))?
    } else if text.contains("-----BEGIN") {
        let parsed: Result<Box<dyn KeyPair>, _> = match alg {
            SigningAlg::RS256 | SigningAlg::PS256 => {
                RsaKeyPair::from_pem(bytes).map(|k| Box::new(k) as Box<dyn KeyPair>)
            }
            SigningAlg::ES256 => EcKeyPair::from_pem(bytes, Some(EcCurve::P256))
                .map(|k| Box::new(k) as Box<dyn KeyPair>),
            SigningAlg::EdDSA => {
                EdKeyPair::from_pem(bytes).map(|k| Box::new(k) as Box<dyn KeyPair>)
            }
        };
        parsed
            .map_err(|e| MaterialError::Unreadable(format!("not a {alg} private key in PEM: {e}")))?
            .to_jwk_key_pair()
    } else {
        return Err(MaterialError::Unreadable(
            "expected a PEM or JWK private key".into(),
        ));
    };
    label(jwk, alg, kid)
}

/// PKCS#8 PEM of a private JWK.
pub fn to_pem(private: &Jwk, alg: SigningAlg) -> Result<Vec<u8>, MaterialError> {
    let err = |e: josekit::JoseError| MaterialError::Unreadable(e.to_string());
    Ok(match alg {
        SigningAlg::RS256 | SigningAlg::PS256 => RsaKeyPair::from_jwk(private)
            .map_err(err)?
            .to_pem_private_key(),
        SigningAlg::ES256 => EcKeyPair::from_jwk(private)
            .map_err(err)?
            .to_pem_private_key(),
        SigningAlg::EdDSA => EdKeyPair::from_jwk(private)
            .map_err(err)?
            .to_pem_private_key(),
    })
}

/// A new random key id: 128 bits, base64url.
pub fn new_kid() -> Result<String, MaterialError> {
    use base64::Engine;
    let mut b = [0u8; 16];
    getrandom::fill(&mut b).map_err(|e| MaterialError::Generate(e.to_string()))?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_alg_generates_signs_and_round_trips_through_pem() {
        for alg in SigningAlg::ALL {
            let jwk = generate(alg, "k1").unwrap();
            assert_eq!(jwk.key_id(), Some("k1"));
            assert_eq!(jwk.algorithm(), Some(alg.as_str()));
            let public = public_jwk(&jwk).unwrap();
            assert!(public.parameter("d").is_none(), "{alg}: no private part");
            let pem = to_pem(&jwk, alg).unwrap();
            let back = import(&pem, alg, "k2").unwrap();
            assert_eq!(back.key_id(), Some("k2"));
            assert_eq!(
                public_jwk(&back).unwrap().parameter("x"),
                public.parameter("x")
            );
            assert_eq!(
                public_jwk(&back).unwrap().parameter("n"),
                public.parameter("n")
            );
        }
    }

    #[test]
    fn wrong_or_corrupt_keys_are_refused() {
        let ec = generate(SigningAlg::ES256, "k").unwrap();
        let pem = to_pem(&ec, SigningAlg::ES256).unwrap();
        assert!(import(&pem, SigningAlg::RS256, "k").is_err());
        assert!(
            import(
                b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
                SigningAlg::ES256,
                "k"
            )
            .is_err()
        );
        assert!(import(b"hello", SigningAlg::ES256, "k").is_err());
        assert!(import(&[0xff, 0x00], SigningAlg::ES256, "k").is_err());
        let public = public_jwk(&ec).unwrap().to_string();
        assert!(
            import(public.as_bytes(), SigningAlg::ES256, "k").is_err(),
            "a public key cannot sign"
        );
    }
}

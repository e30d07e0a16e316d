//! The signature algorithms a verifier may accept: asymmetric JWS
//! algorithms only. `none` and the HMAC family have no variant, so no
//! configuration can let them in.

use std::fmt;

use josekit::JoseError;
use josekit::jwk::Jwk;
use josekit::jws::{ES256, ES384, EdDSA, JwsVerifier, PS256, PS384, PS512, RS256, RS384, RS512};

/// An asymmetric JWS algorithm (RFC 7518 section 3, RFC 8037).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Algorithm {
    /// RSASSA-PKCS1-v1_5 with SHA-256.
    RS256,
    /// RSASSA-PKCS1-v1_5 with SHA-384.
    RS384,
    /// RSASSA-PKCS1-v1_5 with SHA-512.
    RS512,
    /// RSASSA-PSS with SHA-256.
    PS256,
    /// RSASSA-PSS with SHA-384.
    PS384,
    /// RSASSA-PSS with SHA-512.
    PS512,
    /// ECDSA with P-256 and SHA-256.
    ES256,
    /// ECDSA with P-384 and SHA-384.
    ES384,
    /// Ed25519 (or Ed448) signatures, RFC 8037.
    EdDSA,
}

impl Algorithm {
    /// Every algorithm this crate can verify; the default allow-list.
    pub const ALL: [Algorithm; 9] = [
        Algorithm::RS256,
        Algorithm::RS384,
        Algorithm::RS512,
        Algorithm::PS256,
        Algorithm::PS384,
        Algorithm::PS512,
        Algorithm::ES256,
        Algorithm::ES384,
        Algorithm::EdDSA,
    ];

    /// The JWS `alg` name.
    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::RS256 => "RS256",
            Algorithm::RS384 => "RS384",
            Algorithm::RS512 => "RS512",
            Algorithm::PS256 => "PS256",
            Algorithm::PS384 => "PS384",
            Algorithm::PS512 => "PS512",
            Algorithm::ES256 => "ES256",
            Algorithm::ES384 => "ES384",
            Algorithm::EdDSA => "EdDSA",
        }
    }

    /// Parses a JWS `alg` name, case-sensitively as RFC 7515 requires.
    /// `none`, `HS256` and anything else unknown give `None`.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.as_str() == name)
    }

    /// The algorithms a JWK without an `alg` member can serve, judged by
    /// its key type and curve.
    pub(crate) fn candidates_for(jwk: &Jwk) -> &'static [Algorithm] {
        const RSA: [Algorithm; 6] = [
            Algorithm::RS256,
            Algorithm::RS384,
            Algorithm::RS512,
            Algorithm::PS256,
            Algorithm::PS384,
            Algorithm::PS512,
        ];
        let crv = jwk.curve();
        match (jwk.key_type(), crv) {
            ("RSA", _) => &RSA,
            ("EC", Some("P-256")) => &[Algorithm::ES256],
            ("EC", Some("P-384")) => &[Algorithm::ES384],
            ("OKP", Some("Ed25519" | "Ed448")) => &[Algorithm::EdDSA],
            _ => &[],
        }
    }

    /// A verifier for `jwk`. josekit checks that the key type, curve,
    /// `use`, `key_ops` and `alg` members fit this algorithm, and that RSA
    /// keys have at least 2048 bits.
    pub(crate) fn verifier(self, jwk: &Jwk) -> Result<Box<dyn JwsVerifier>, JoseError> {
        Ok(match self {
            Algorithm::RS256 => Box::new(RS256.verifier_from_jwk(jwk)?),
            Algorithm::RS384 => Box::new(RS384.verifier_from_jwk(jwk)?),
            Algorithm::RS512 => Box::new(RS512.verifier_from_jwk(jwk)?),
            Algorithm::PS256 => Box::new(PS256.verifier_from_jwk(jwk)?),
            Algorithm::PS384 => Box::new(PS384.verifier_from_jwk(jwk)?),
            Algorithm::PS512 => Box::new(PS512.verifier_from_jwk(jwk)?),
            Algorithm::ES256 => Box::new(ES256.verifier_from_jwk(jwk)?),
            Algorithm::ES384 => Box::new(ES384.verifier_from_jwk(jwk)?),
            Algorithm::EdDSA => Box::new(EdDSA.verifier_from_jwk(jwk)?),
        })
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_unsafe_names_are_unknown() {
        for alg in Algorithm::ALL {
            assert_eq!(Algorithm::from_name(alg.as_str()), Some(alg));
        }
        for name in [
            "none", "None", "HS256", "HS384", "HS512", "rs256", "", "ES256K",
        ] {
            assert_eq!(Algorithm::from_name(name), None, "{name}");
        }
    }
}

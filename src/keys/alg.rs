//! The signing algorithms Latchkey issues with: asymmetric only, from an
//! allow-list (never `none`, never HMAC).

use std::fmt;
use std::str::FromStr;

use josekit::jwk::Jwk;
use josekit::jws::{ES256, EdDSA, JwsSigner, JwsVerifier, PS256, RS256};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum SigningAlg {
    RS256,
    PS256,
    ES256,
    EdDSA,
}

impl SigningAlg {
    pub const ALL: [SigningAlg; 4] = [
        SigningAlg::RS256,
        SigningAlg::PS256,
        SigningAlg::ES256,
        SigningAlg::EdDSA,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            SigningAlg::RS256 => "RS256",
            SigningAlg::PS256 => "PS256",
            SigningAlg::ES256 => "ES256",
            SigningAlg::EdDSA => "EdDSA",
        }
    }

    /// The JWK `kty` this algorithm needs.
    pub fn key_type(self) -> &'static str {
        match self {
            SigningAlg::RS256 | SigningAlg::PS256 => "RSA",
            SigningAlg::ES256 => "EC",
            SigningAlg::EdDSA => "OKP",
        }
    }

    pub fn signer(self, private_jwk: &Jwk) -> Result<Box<dyn JwsSigner>, josekit::JoseError> {
        Ok(match self {
            SigningAlg::RS256 => Box::new(RS256.signer_from_jwk(private_jwk)?),
            SigningAlg::PS256 => Box::new(PS256.signer_from_jwk(private_jwk)?),
            SigningAlg::ES256 => Box::new(ES256.signer_from_jwk(private_jwk)?),
            SigningAlg::EdDSA => Box::new(EdDSA.signer_from_jwk(private_jwk)?),
        })
    }

    pub fn verifier(self, public_jwk: &Jwk) -> Result<Box<dyn JwsVerifier>, josekit::JoseError> {
        Ok(match self {
            SigningAlg::RS256 => Box::new(RS256.verifier_from_jwk(public_jwk)?),
            SigningAlg::PS256 => Box::new(PS256.verifier_from_jwk(public_jwk)?),
            SigningAlg::ES256 => Box::new(ES256.verifier_from_jwk(public_jwk)?),
            SigningAlg::EdDSA => Box::new(EdDSA.verifier_from_jwk(public_jwk)?),
        })
    }
}

impl fmt::Display for SigningAlg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("unsupported signing algorithm {0:?} (expected RS256, PS256, ES256 or EdDSA)")]
pub struct UnsupportedAlg(pub String);

impl FromStr for SigningAlg {
    type Err = UnsupportedAlg;
    fn from_str(s: &str) -> Result<Self, UnsupportedAlg> {
        SigningAlg::ALL
            .into_iter()
            .find(|a| a.as_str() == s)
            .ok_or_else(|| UnsupportedAlg(s.to_owned()))
    }
}

//! The signing algorithms Latchkey issues with: asymmetric only, from an
//! allow-list (never `none`, never HMAC). A plain enum: the josekit
//! signers and verifiers for each live in `keys::alg`.

use std::fmt;
use std::str::FromStr;

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

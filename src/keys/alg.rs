//! josekit signers and verifiers for each [`SigningAlg`].

use josekit::jwk::Jwk;
use josekit::jws::{ES256, EdDSA, JwsSigner, JwsVerifier, PS256, RS256};

pub use crate::domain::alg::{SigningAlg, UnsupportedAlg};

/// The josekit side of a [`SigningAlg`].
pub trait JoseAlg {
    fn signer(self, private_jwk: &Jwk) -> Result<Box<dyn JwsSigner>, josekit::JoseError>;
    fn verifier(self, public_jwk: &Jwk) -> Result<Box<dyn JwsVerifier>, josekit::JoseError>;
}

impl JoseAlg for SigningAlg {
    fn signer(self, private_jwk: &Jwk) -> Result<Box<dyn JwsSigner>, josekit::JoseError> {
        Ok(match self {
            SigningAlg::RS256 => Box::new(RS256.signer_from_jwk(private_jwk)?),
            SigningAlg::PS256 => Box::new(PS256.signer_from_jwk(private_jwk)?),
            SigningAlg::ES256 => Box::new(ES256.signer_from_jwk(private_jwk)?),
            SigningAlg::EdDSA => Box::new(EdDSA.signer_from_jwk(private_jwk)?),
        })
    }

    fn verifier(self, public_jwk: &Jwk) -> Result<Box<dyn JwsVerifier>, josekit::JoseError> {
        Ok(match self {
            SigningAlg::RS256 => Box::new(RS256.verifier_from_jwk(public_jwk)?),
            SigningAlg::PS256 => Box::new(PS256.verifier_from_jwk(public_jwk)?),
            SigningAlg::ES256 => Box::new(ES256.verifier_from_jwk(public_jwk)?),
            SigningAlg::EdDSA => Box::new(EdDSA.verifier_from_jwk(public_jwk)?),
        })
    }
}

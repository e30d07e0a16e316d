//! PKCE (RFC 7636) with S256 only: `plain` is refused (RFC 9700 2.1.1).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};

use super::OAuthError;
use crate::domain::secret::ct_eq;

/// The code challenge of an authorization request, judged: S256 only,
/// well-formed, and required when `public` (RFC 9700 2.1.1).
pub fn challenge(
    challenge: Option<&str>,
    method: Option<&str>,
    public: bool,
) -> Result<Option<String>, OAuthError> {
    match (challenge, method) {
        (None, Some(_)) => Err(OAuthError::invalid_request(
            "code_challenge_method without code_challenge",
        )),
        (None, None) if public => Err(OAuthError::invalid_request(
            "PKCE (code_challenge with S256) is required for public clients",
        )),
        (None, None) => Ok(None),
        (Some(_), None | Some("plain")) => Err(OAuthError::invalid_request(
            "code_challenge_method must be S256; plain is not supported",
        )),
        (Some(c), Some("S256")) if valid_challenge(c) => Ok(Some(c.to_owned())),
        (Some(_), Some("S256")) => Err(OAuthError::invalid_request("malformed code_challenge")),
        (Some(_), Some(_)) => Err(OAuthError::invalid_request(
            "code_challenge_method must be S256",
        )),
    }
}

fn unreserved(s: &str) -> bool {
    s.bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b))
}

/// A valid S256 challenge: the base64url SHA-256 of a verifier, 43 chars.
pub fn valid_challenge(challenge: &str) -> bool {
    challenge.len() == 43 && unreserved(challenge)
}

/// A valid verifier: 43..=128 unreserved characters (RFC 7636 4.1).
pub fn valid_verifier(verifier: &str) -> bool {
    (43..=128).contains(&verifier.len()) && unreserved(verifier)
}

/// Whether `verifier` hashes to `challenge` (constant-time compare).
pub fn verify_s256(verifier: &str, challenge: &str) -> bool {
    if !valid_verifier(verifier) {
        return false;
    }
    let computed = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    ct_eq(computed.as_bytes(), challenge.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc7636_appendix_b() {
        let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        let challenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
        assert!(valid_challenge(challenge));
        assert!(verify_s256(verifier, challenge));
        assert!(!verify_s256(
            "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXx",
            challenge
        ));
        assert!(!verify_s256("short", challenge));
        assert!(!valid_challenge("plain-text"));
    }
}

//! Opaque secrets (session ids, CSRF tokens, client secrets, later codes and
//! refresh tokens): 256 bits from the OS RNG, base64url without padding.
//! Only their SHA-256 is stored; comparisons are constant-time.

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

/// A freshly generated secret. Redacts itself in `Debug`.
#[derive(Clone, PartialEq, Eq)]
pub struct OpaqueSecret(Zeroizing<String>);

#[derive(Debug, thiserror::Error)]
#[error("the operating system's random number generator failed: {0}")]
pub struct RngError(String);

/// Fills `buf` from the operating system's random number generator.
pub fn fill_random(buf: &mut [u8]) -> Result<(), RngError> {
    getrandom::fill(buf).map_err(|e| RngError(e.to_string()))
}

impl OpaqueSecret {
    /// 32 random bytes from the OS, base64url (43 characters).
    pub fn generate() -> Result<Self, RngError> {
        let mut bytes = Zeroizing::new([0u8; 32]);
        getrandom::fill(bytes.as_mut()).map_err(|e| RngError(e.to_string()))?;
        Ok(Self(Zeroizing::new(URL_SAFE_NO_PAD.encode(bytes.as_ref()))))
    }

    /// A secret derived from another with HMAC-SHA256 under `key`, in the
    /// same form as a generated one: whoever holds `from` and the key gets
    /// the same secret again, nobody else can compute it.
    pub fn derived(key: &[u8; 32], from: &str) -> Self {
        use hmac::{Hmac, Mac};
        let mut bytes = Zeroizing::new([0u8; 32]);
        // HMAC takes keys of any length: `new_from_slice` cannot fail here.
        if let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(key) {
            mac.update(from.as_bytes());
            bytes.copy_from_slice(&mac.finalize().into_bytes());
        }
        Self(Zeroizing::new(URL_SAFE_NO_PAD.encode(bytes.as_ref())))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn hash(&self) -> String {
        hash_secret(&self.0)
    }
}

impl fmt::Debug for OpaqueSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("OpaqueSecret(<redacted>)")
    }
}

/// SHA-256 of a presented secret, lowercase hex: what the database keeps.
pub fn hash_secret(secret: &str) -> String {
    let digest = Sha256::digest(secret.as_bytes());
    let mut out = String::with_capacity(64);
    for b in digest {
        use fmt::Write;
        let _ = write!(out, "{b:02x}");
    }
    out
}

/// Constant-time equality of two byte strings (length may leak, content not).
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.ct_eq(b).into()
}

/// Checks a presented secret against a stored hash in constant time.
pub fn verify_secret(presented: &str, stored_hash: &str) -> bool {
    ct_eq(hash_secret(presented).as_bytes(), stored_hash.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_256_bit_and_distinct() {
        let a = OpaqueSecret::generate().unwrap();
        let b = OpaqueSecret::generate().unwrap();
        assert_eq!(a.expose().len(), 43);
        assert_ne!(a, b);
        assert!(!format!("{a:?}").contains(a.expose()));
    }

    #[test]
    fn verify_matches_only_the_secret() {
        let s = OpaqueSecret::generate().unwrap();
        let h = s.hash();
        assert_eq!(h.len(), 64);
        assert!(verify_secret(s.expose(), &h));
        assert!(!verify_secret("nope", &h));
        assert_eq!(
            hash_secret("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}

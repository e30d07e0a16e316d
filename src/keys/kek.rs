//! The key-encryption key (KEK): 32 bytes that encrypt every private signing
//! key at rest with AES-256-GCM. It comes from `LATCHKEY_KEK` or from
//! `keys.kek_file`; the file is created (mode 0600) only when the database
//! holds no keys yet, so a lost KEK is reported, never silently replaced.

use std::fmt;
use std::io::Write;
use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use openssl::symm::{Cipher, decrypt_aead, encrypt_aead};
use zeroize::Zeroizing;

pub const KEK_ENV: &str = "LATCHKEY_KEK";
const NONCE_LEN: usize = 12;
const TAG_LEN: usize = 16;
const FORMAT_PREFIX: &str = "v1.";

pub struct Kek {
    key: Zeroizing<[u8; 32]>,
    source: String,
}

impl fmt::Debug for Kek {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Kek(<redacted>, from {})", self.source)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum KekError {
    #[error("{source_name}: {problem}")]
    Invalid {
        source_name: String,
        problem: String,
    },
    #[error(
        "{path}: the key-encryption key is missing, but the database holds {keys} encrypted signing key(s); \
         restore the file from backup or set {KEK_ENV} (a new key would not decrypt them)"
    )]
    Missing { path: String, keys: i64 },
    #[error("{path}: cannot create the key-encryption key file: {error}")]
    Create { path: String, error: std::io::Error },
    #[error("encryption failed: {0}")]
    Crypto(String),
    #[error(
        "the key-encryption key from {source_name} does not decrypt signing key {kid}: wrong key?"
    )]
    WrongKey { source_name: String, kid: String },
}

fn decode_key(text: &str, source_name: &str) -> Result<Zeroizing<[u8; 32]>, KekError> {
    let t = text.trim();
    let bytes = Zeroizing::new(
        URL_SAFE_NO_PAD
            .decode(t.trim_end_matches('='))
            .or_else(|_| STANDARD.decode(t))
            .map_err(|_| KekError::Invalid {
                source_name: source_name.into(),
                problem: "not base64".into(),
            })?,
    );
    let key: [u8; 32] = bytes.as_slice().try_into().map_err(|_| KekError::Invalid {
        source_name: source_name.into(),
        problem: format!("must decode to 32 bytes (got {})", bytes.len()),
    })?;
    Ok(Zeroizing::new(key))
}

impl Kek {
    /// From the environment variable if set, else from the file. When
    /// neither exists: create the file if `existing_keys` is 0, else fail.
    pub fn load_or_create(kek_file: &Path, existing_keys: i64) -> Result<Kek, KekError> {
        if let Ok(text) = std::env::var(KEK_ENV)
            && !text.is_empty()
        {
            return Ok(Kek {
                key: decode_key(&text, KEK_ENV)?,
                source: KEK_ENV.into(),
            });
        }
        let source = kek_file.display().to_string();
        match std::fs::read_to_string(kek_file) {
            Ok(text) => {
                warn_if_readable_by_others(kek_file);
                Ok(Kek {
                    key: decode_key(&text, &source)?,
                    source,
                })
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                if existing_keys > 0 {
                    return Err(KekError::Missing {
                        path: source,
                        keys: existing_keys,
                    });
                }
                Self::create(kek_file)
            }
            Err(e) => Err(KekError::Invalid {
                source_name: source,
                problem: e.to_string(),
            }),
        }
    }

    /// The KEK as [`Kek::load_or_create`] would find it, but never creating
    /// one: `None` when neither the environment variable nor the file is
    /// there (`latchkey check` reads, it does not provision).
    pub fn load_existing(kek_file: &Path) -> Result<Option<Kek>, KekError> {
        if let Ok(text) = std::env::var(KEK_ENV)
            && !text.is_empty()
        {
            return Ok(Some(Kek {
                key: decode_key(&text, KEK_ENV)?,
                source: KEK_ENV.into(),
            }));
        }
        let source = kek_file.display().to_string();
        match std::fs::read_to_string(kek_file) {
            Ok(text) => Ok(Some(Kek {
                key: decode_key(&text, &source)?,
                source,
            })),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(KekError::Invalid {
                source_name: source,
                problem: e.to_string(),
            }),
        }
    }

    /// A 256-bit key for one `purpose`, derived from the KEK with
    /// HMAC-SHA256, so every instance sharing the KEK derives the same key
    /// and the KEK itself is used for nothing but sealing.
    pub fn derive(&self, purpose: &str) -> Zeroizing<[u8; 32]> {
        use hmac::{Hmac, Mac};
        let mut out = Zeroizing::new([0u8; 32]);
        // HMAC takes keys of any length: `new_from_slice` cannot fail here.
        if let Ok(mut mac) = Hmac::<sha2::Sha256>::new_from_slice(self.key.as_ref()) {
            mac.update(purpose.as_bytes());
            out.copy_from_slice(&mac.finalize().into_bytes());
        }
        out
    }

    /// A KEK from raw bytes (tests and tools).
    pub fn from_bytes(key: [u8; 32], source: &str) -> Kek {
        Kek {
            key: Zeroizing::new(key),
            source: source.into(),
        }
    }

    fn create(path: &Path) -> Result<Kek, KekError> {
        let fail = |error: std::io::Error| KekError::Create {
            path: path.display().to_string(),
            error,
        };
        let mut key = Zeroizing::new([0u8; 32]);
        getrandom::fill(key.as_mut()).map_err(|e| KekError::Crypto(e.to_string()))?;
        if let Some(dir) = path.parent()
            && !dir.as_os_str().is_empty()
        {
            std::fs::create_dir_all(dir).map_err(fail)?;
        }
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        let mut file = opts.open(path).map_err(fail)?;
        let text = Zeroizing::new(format!("{}\n", STANDARD.encode(key.as_ref())));
        file.write_all(text.as_bytes()).map_err(fail)?;
        file.sync_all().map_err(fail)?;
        tracing::info!(path = %path.display(), "created a new key-encryption key; back it up with the database");
        Ok(Kek {
            key,
            source: path.display().to_string(),
        })
    }

    pub fn source(&self) -> &str {
        &self.source
    }

    /// Encrypts `plaintext`, binding it to `aad` (the key id).
    pub fn seal(&self, plaintext: &[u8], aad: &str) -> Result<String, KekError> {
        let mut nonce = [0u8; NONCE_LEN];
        getrandom::fill(&mut nonce).map_err(|e| KekError::Crypto(e.to_string()))?;
        let mut tag = [0u8; TAG_LEN];
        let ct = encrypt_aead(
            Cipher::aes_256_gcm(),
            self.key.as_ref(),
            Some(&nonce),
            aad.as_bytes(),
            plaintext,
            &mut tag,
        )
        .map_err(|e| KekError::Crypto(e.to_string()))?;
        let mut out = Vec::with_capacity(NONCE_LEN + ct.len() + TAG_LEN);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ct);
        out.extend_from_slice(&tag);
        Ok(format!("{FORMAT_PREFIX}{}", URL_SAFE_NO_PAD.encode(out)))
    }

    /// Decrypts what [`Kek::seal`] produced with the same `aad`.
    pub fn open(&self, sealed: &str, aad: &str) -> Result<Zeroizing<Vec<u8>>, KekError> {
        let wrong = || KekError::WrongKey {
            source_name: self.source.clone(),
            kid: aad.into(),
        };
        let body = sealed.strip_prefix(FORMAT_PREFIX).ok_or_else(wrong)?;
        let raw = URL_SAFE_NO_PAD.decode(body).map_err(|_| wrong())?;
        if raw.len() < NONCE_LEN + TAG_LEN {
            return Err(wrong());
        }
        let (nonce, rest) = raw.split_at(NONCE_LEN);
        let (ct, tag) = rest.split_at(rest.len() - TAG_LEN);
        decrypt_aead(
            Cipher::aes_256_gcm(),
            self.key.as_ref(),
            Some(nonce),
            aad.as_bytes(),
            ct,
            tag,
        )
        .map(Zeroizing::new)
        .map_err(|_| wrong())
    }
}

fn warn_if_readable_by_others(path: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if let Ok(meta) = std::fs::metadata(path)
            && meta.permissions().mode() & 0o077 != 0
        {
            tracing::warn!(path = %path.display(), "the key-encryption key file is readable by other users; chmod 600 it");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_and_open() {
        let kek = Kek::from_bytes([7; 32], "test");
        let sealed = kek.seal(b"private key", "kid-1").unwrap();
        assert!(!sealed.contains("private"));
        assert_eq!(
            kek.open(&sealed, "kid-1").unwrap().as_slice(),
            b"private key"
        );
        // Bound to its kid, and to its key.
        assert!(matches!(
            kek.open(&sealed, "kid-2"),
            Err(KekError::WrongKey { .. })
        ));
        let other = Kek::from_bytes([8; 32], "other");
        assert!(matches!(
            other.open(&sealed, "kid-1"),
            Err(KekError::WrongKey { .. })
        ));
        assert!(kek.open("garbage", "kid-1").is_err());
    }

    #[test]
    fn created_once_with_mode_0600_and_never_over_existing_keys() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/latchkey.kek");
        assert!(matches!(
            Kek::load_or_create(&path, 3),
            Err(KekError::Missing { keys: 3, .. })
        ));
        assert!(!path.exists());
        let a = Kek::load_or_create(&path, 0).unwrap();
        let sealed = a.seal(b"x", "k").unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let b = Kek::load_or_create(&path, 1).unwrap();
        assert_eq!(b.open(&sealed, "k").unwrap().as_slice(), b"x");
        std::fs::write(&path, "too short").unwrap();
        assert!(matches!(
            Kek::load_or_create(&path, 1),
            Err(KekError::Invalid { .. })
        ));
    }
}

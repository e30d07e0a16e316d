//! Password hashing with argon2id (RFC 9106 / OWASP parameters: 19 MiB,
//! 2 passes, 1 lane). Verification always spends the same work, even for
//! unknown users, so timing does not reveal whether an account exists.

use std::sync::OnceLock;

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};

use zeroize::Zeroizing;

use super::{ServiceError, ServiceResult};
use crate::domain::user::{PASSWORD_MAX, check_new_password};

fn hasher() -> Argon2<'static> {
    let params = Params::new(19 * 1024, 2, 1, None).unwrap_or_default();
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

#[derive(Debug, thiserror::Error)]
#[error("password hashing failed: {0}")]
pub struct HashError(String);

/// Hashes a password to a PHC string (`$argon2id$v=19$...`).
pub fn hash(password: &str) -> Result<String, HashError> {
    let salt = SaltString::generate(&mut OsRng);
    hasher()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| HashError(e.to_string()))
}

/// Checks a password against a stored PHC string. Over-long input and
/// unparseable hashes are a plain `false`.
pub fn verify(password: &str, phc: &str) -> bool {
    if password.len() > PASSWORD_MAX {
        return false;
    }
    match PasswordHash::new(phc) {
        Ok(parsed) => hasher()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok(),
        Err(_) => false,
    }
}

/// At most as many password hashes at once as there are cores, each on a
/// blocking thread and never while holding a database connection: a burst
/// of sign-ins queues here instead of starving `/token` and `/userinfo` of
/// connections and CPU.
#[derive(Clone)]
pub struct PasswordGate {
    slots: std::sync::Arc<tokio::sync::Semaphore>,
}

impl PasswordGate {
    pub fn new(slots: usize) -> Self {
        Self {
            slots: std::sync::Arc::new(tokio::sync::Semaphore::new(slots.max(1))),
        }
    }

    /// One slot per core.
    pub fn per_core() -> Self {
        Self::new(std::thread::available_parallelism().map_or(1, usize::from))
    }

    /// Runs `work` (argon2) on a blocking thread once a slot is free.
    pub async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, HashError> {
        let _slot = self
            .slots
            .acquire()
            .await
            .map_err(|e| HashError(e.to_string()))?;
        tokio::task::spawn_blocking(work)
            .await
            .map_err(|e| HashError(e.to_string()))
    }
}

/// A new password that passed the password rules, hashed (argon2id) and
/// ready to store. Built before any database work, so no pooled
/// connection waits on argon2.
pub struct NewPasswordHash(String);

impl std::fmt::Debug for NewPasswordHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("NewPasswordHash(<redacted>)")
    }
}

impl NewPasswordHash {
    /// Checks the rules, then hashes behind `gate` on a blocking thread:
    /// for request handlers (admin console and API).
    pub async fn gated(gate: &PasswordGate, plain: Zeroizing<String>) -> ServiceResult<Self> {
        check_new_password(&plain)?;
        gate.run(move || hash(&plain))
            .await
            .and_then(|h| h)
            .map(Self)
            .map_err(|e| ServiceError::Internal(e.to_string()))
    }

    /// Checks the rules, then hashes on this thread: for callers with no
    /// shared pool to starve (the CLI, first-start bootstrap, tests).
    pub fn now(plain: &str) -> ServiceResult<Self> {
        check_new_password(plain)?;
        hash(plain)
            .map(Self)
            .map_err(|e| ServiceError::Internal(e.to_string()))
    }

    /// The PHC string to store.
    pub fn phc(&self) -> &str {
        &self.0
    }
}

/// Spends the same work as [`verify`] when there is no account to check.
pub fn verify_dummy(password: &str) {
    static DUMMY: OnceLock<Option<String>> = OnceLock::new();
    if let Some(phc) = DUMMY.get_or_init(|| hash("latchkey-dummy-password").ok()) {
        let _ = verify(password, phc);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_and_verify() {
        let h = hash("correct horse").unwrap();
        assert!(h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
        assert!(verify("correct horse", &h));
        assert!(!verify("wrong horse", &h));
        assert!(!verify("correct horse", "not a hash"));
    }
}

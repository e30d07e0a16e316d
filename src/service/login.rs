//! Password sign-in with throttling per account and per client IP.
//!
//! What a failure may say: only "invalid username or password" or "too many
//! attempts". Unknown users, disabled users and wrong passwords look the
//! same, and cost the same argon2 work.

use time::{Duration, OffsetDateTime};

use super::{ServiceError, password};
use crate::clock::to_db;
use crate::domain::user::{PASSWORD_MAX, USERNAME_MAX, Username};
use crate::store::models::UserRow;
use crate::store::{DbConn, StoreError, repo};

#[derive(Debug, Clone, Copy)]
pub struct ThrottlePolicy {
    pub max_failures_per_account: u32,
    pub max_failures_per_ip: u32,
    pub window: Duration,
}

impl ThrottlePolicy {
    pub fn from_config(c: &crate::config::LoginConfig) -> Self {
        Self {
            max_failures_per_account: c.max_failures_per_account,
            max_failures_per_ip: c.max_failures_per_ip,
            window: Duration::seconds(i64::try_from(c.throttle_window_secs).unwrap_or(i64::MAX)),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    #[error("invalid username or password")]
    InvalidCredentials,
    #[error("too many failed sign-in attempts; try again later")]
    Throttled { retry_after_secs: u64 },
    #[error(transparent)]
    Service(#[from] ServiceError),
}

impl From<StoreError> for LoginError {
    fn from(e: StoreError) -> Self {
        LoginError::Service(e.into())
    }
}

impl From<diesel::result::Error> for LoginError {
    fn from(e: diesel::result::Error) -> Self {
        LoginError::Service(e.into())
    }
}

fn account_key(raw_username: &str) -> String {
    // Normalised like usernames, and bounded, whether or not it parses.
    let norm: String = raw_username
        .trim()
        .to_ascii_lowercase()
        .chars()
        .take(USERNAME_MAX + 1)
        .collect();
    format!("user:{norm}")
}

fn ip_key(ip: &str) -> String {
    format!("ip:{}", ip.chars().take(64).collect::<String>())
}

/// Checks a username and password. Throttled keys are refused before any
/// password work; each failure counts against both the account and the IP.
pub fn authenticate(
    conn: &mut DbConn,
    raw_username: &str,
    password_plain: &str,
    client_ip: Option<&str>,
    now: OffsetDateTime,
    policy: ThrottlePolicy,
) -> Result<UserRow, LoginError> {
    let account = account_key(raw_username);
    let ip = client_ip.map(ip_key);
    let cutoff = to_db(now - policy.window);
    let retry = LoginError::Throttled {
        retry_after_secs: u64::try_from(policy.window.whole_seconds()).unwrap_or(0),
    };
    if repo::throttle::failures(conn, &account, cutoff)? >= to_i32(policy.max_failures_per_account)
    {
        return Err(retry);
    }
    if let Some(ip) = &ip
        && repo::throttle::failures(conn, ip, cutoff)? >= to_i32(policy.max_failures_per_ip)
    {
        return Err(retry);
    }

    let user = match Username::parse(raw_username) {
        Ok(name) if password_plain.len() <= PASSWORD_MAX => {
            repo::users::by_username(conn, name.as_str())?
        }
        _ => None,
    };
    let ok = match user.as_ref().and_then(|u| u.password_hash.as_deref()) {
        Some(hash) => password::verify(password_plain, hash),
        None => {
            password::verify_dummy(password_plain);
            false
        }
    };
    match user {
        Some(user) if ok && !user.disabled => {
            repo::throttle::clear(conn, &account)?;
            Ok(user)
        }
        _ => {
            let now_db = to_db(now);
            repo::throttle::record_failure(conn, &account, now_db, cutoff)?;
            if let Some(ip) = &ip {
                repo::throttle::record_failure(conn, ip, now_db, cutoff)?;
            }
            Err(LoginError::InvalidCredentials)
        }
    }
}

fn to_i32(n: u32) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

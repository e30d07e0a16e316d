//! Password sign-in with throttling per account+network (exponential
//! back-off), per account (a softer allowance) and per network (IPv4
//! address or IPv6 /64, a hard limit per window).
//!
//! What a failure may say: only "invalid username or password" or "too many
//! attempts". Unknown users, disabled users and wrong passwords look the
//! same, and cost the same argon2 work.

use std::net::IpAddr;

use diesel::Connection;
use time::{Duration, OffsetDateTime};
use zeroize::Zeroizing;

use super::password::{self, PasswordGate};
use super::sessions::{self, SessionMeta, SessionPolicy};
use super::{ServiceError, mfa};
use crate::clock::{from_db, to_db};
use crate::domain::Invalid;
use crate::domain::net;
use crate::domain::secret::OpaqueSecret;
use crate::domain::user::{PASSWORD_MAX, USERNAME_MAX, Username};
use crate::store::models::UserRow;
use crate::store::{Db, DbConn, StoreError, repo};
use crate::telemetry::metrics::{Metrics, SignInMethod, SignInResult};

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

/// Refused attempts, and a successful one, do not count as failures.
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

/// The throttle counters one attempt claims.
struct Keys {
    /// This account from this network: exponential back-off.
    pair: Option<String>,
    /// This account from anywhere: a softer limit, also back-off.
    account: String,
    /// This network, whatever the account: a hard limit per window.
    network: Option<String>,
}

impl Keys {
    fn new(raw_username: &str, ip: Option<IpAddr>) -> Self {
        let account = account_key(raw_username);
        let network = ip.map(net::throttle_key);
        Self {
            pair: network.as_ref().map(|n| format!("{account}|ip:{n}")),
            network: network.map(|n| format!("ip:{n}")),
            account,
        }
    }

    fn all(&self) -> impl Iterator<Item = &String> {
        self.pair
            .iter()
            .chain(std::iter::once(&self.account))
            .chain(self.network.iter())
    }
}

/// How many times the per-pair allowance the account as a whole may fail
/// in a window before everyone backs off for it.
const ACCOUNT_ALLOWANCE_FACTOR: i32 = 10;

/// Exponential back-off: after `free` failures in the window, the n-th
/// further attempt waits 2^n seconds from the window's start. The wait a
/// next attempt would face now, if any.
fn backoff(
    failures_before: i32,
    free: i32,
    started: OffsetDateTime,
    now: OffsetDateTime,
) -> Option<Duration> {
    if failures_before < free {
        return None;
    }
    let n = (failures_before - free).min(30);
    let ready = started + Duration::seconds(1_i64 << n);
    (now < ready).then(|| ready - now)
}

/// What one attempt's claimed counts say: go ahead, or wait this long.
fn verdict(
    policy: &ThrottlePolicy,
    pair: Option<(i32, OffsetDateTime)>,
    account: (i32, OffsetDateTime),
    network: Option<(i32, OffsetDateTime)>,
    now: OffsetDateTime,
) -> Option<Duration> {
    let free = to_i32(policy.max_failures_per_account);
    let waits = [
        pair.and_then(|(n, at)| backoff(n - 1, free, at, now)),
        backoff(
            account.0 - 1,
            free.saturating_mul(ACCOUNT_ALLOWANCE_FACTOR),
            account.1,
            now,
        ),
        network.and_then(|(n, at)| {
            (n > to_i32(policy.max_failures_per_ip)).then(|| (at + policy.window) - now)
        }),
    ];
    waits.into_iter().flatten().max()
}

/// Claims one attempt on every counter of `keys`; when one of them says
/// wait, the attempt is released again (it costs nothing) and the wait is
/// returned.
fn claim_attempt(
    conn: &mut DbConn,
    keys: &Keys,
    now_db: time::PrimitiveDateTime,
    cutoff: time::PrimitiveDateTime,
    policy: &ThrottlePolicy,
    now: OffsetDateTime,
) -> diesel::QueryResult<Option<Duration>> {
    let mut claim = |key: &String| {
        repo::throttle::claim(conn, key, now_db, cutoff).map(|(n, at)| (n, from_db(at)))
    };
    let pair = keys.pair.as_ref().map(&mut claim).transpose()?;
    let account = claim(&keys.account)?;
    let network = keys.network.as_ref().map(&mut claim).transpose()?;
    let Some(wait) = verdict(policy, pair, account, network, now) else {
        return Ok(None);
    };
    for key in keys.all() {
        repo::throttle::release(conn, key)?;
    }
    Ok(Some(wait))
}

/// A successful attempt: this account+network's back-off is cleared, the
/// attempt taken back from the others.
fn attempt_succeeded(conn: &mut DbConn, keys: &Keys) -> diesel::QueryResult<()> {
    if let Some(pair) = &keys.pair {
        repo::throttle::clear(conn, pair)?;
    }
    repo::throttle::release(conn, &keys.account)?;
    if let Some(network) = &keys.network {
        repo::throttle::release(conn, network)?;
    }
    Ok(())
}

/// The sign-in throttle for a second factor (`service::mfa`): a code is
/// guessed like a password, so it counts on the same counters as the
/// password of `username` from `ip`. Claimed before the code is checked.
pub struct FactorAttempt(Keys);

impl FactorAttempt {
    /// Claims the attempt (in the caller's transaction, as its first
    /// write); `Err(seconds)` when the account or network must wait.
    pub fn claim(
        conn: &mut DbConn,
        username: &str,
        ip: Option<IpAddr>,
        now: OffsetDateTime,
        policy: &ThrottlePolicy,
    ) -> diesel::QueryResult<Result<Self, u64>> {
        let keys = Keys::new(username, ip);
        let (now_db, cutoff) = (to_db(now), to_db(now - policy.window));
        Ok(
            match claim_attempt(conn, &keys, now_db, cutoff, policy, now)? {
                Some(wait) => Err(u64::try_from(wait.whole_seconds().max(1)).unwrap_or(1)),
                None => Ok(FactorAttempt(keys)),
            },
        )
    }

    /// The code was right: as for a right password. A wrong code leaves
    /// the attempt counted.
    pub fn succeeded(self, conn: &mut DbConn) -> diesel::QueryResult<()> {
        attempt_succeeded(conn, &self.0)
    }
}

/// One sign-in attempt with a password.
pub struct Attempt {
    pub username: String,
    pub password: Zeroizing<String>,
    pub ip: Option<IpAddr>,
}

/// The settings a sign-in follows: the throttle, session lifetimes, and
/// `[mfa]` policies.
pub struct SignInPolicies {
    pub throttle: ThrottlePolicy,
    pub session: SessionPolicy,
    pub mfa: crate::config::MfaConfig,
}

/// What a right password leads to.
#[derive(Debug)]
pub enum SignedIn {
    /// The session started: its cookie value.
    Session(OpaqueSecret),
    /// The session started, but an `[mfa]` policy requires a second factor
    /// the user has not set up: lead them there.
    MustEnrol(OpaqueSecret),
    /// The user has a second factor: no session yet, but a pending
    /// challenge (its cookie value) that `service::mfa::answer` completes.
    SecondFactor(OpaqueSecret),
}

/// The sign-in form: [`check_password`], and on success, in the same
/// round trip that clears the throttle, the session starts, or for a user
/// with a second factor the challenge that asks for it. The attempt is
/// counted in `metrics` by result (`second_factor` when the password was
/// right and a code is asked next), method `password`.
pub async fn sign_in(
    db: &Db,
    gate: &PasswordGate,
    attempt: Attempt,
    meta: SessionMeta,
    now: OffsetDateTime,
    policies: SignInPolicies,
    metrics: &Metrics,
) -> Result<(UserRow, SignedIn), LoginError> {
    let SignInPolicies {
        throttle,
        session: session_policy,
        mfa: mfa_policy,
    } = policies;
    let result = check_password(db, gate, attempt, now, throttle, move |conn, user| {
        if mfa::has_factor(conn, &user.id)? {
            let challenge = mfa::start_challenge(conn, &user.id, now)?;
            return Ok((user, SignedIn::SecondFactor(challenge)));
        }
        let enrol = mfa::policy::at_sign_in(conn, &mfa_policy, &user.id, now)?;
        let secret = sessions::create(conn, &user.id, meta, now, session_policy)?;
        Ok(match enrol {
            Some(_) => (user, SignedIn::MustEnrol(secret)),
            None => (user, SignedIn::Session(secret)),
        })
    })
    .await;
    let counted = match &result {
        Ok((_, SignedIn::SecondFactor(_))) => Some(SignInResult::SecondFactor),
        Ok(_) => Some(SignInResult::Success),
        Err(LoginError::InvalidCredentials) => Some(SignInResult::Failure),
        Err(LoginError::Throttled { .. }) => Some(SignInResult::Throttled),
        // An outage is no verdict on the person: not counted.
        Err(LoginError::Service(_)) => None,
    };
    if let Some(r) = counted {
        metrics.sign_in(r, SignInMethod::Password);
    }
    result
}

/// The one password check (the sign-in form, the password grant,
/// re-authentication in My account: [`confirm_password`]): throttling, argon2 off the database pool, the
/// disabled-user rule. On success `then` runs in the transaction that
/// clears the throttle, with the user.
///
/// 1. One transaction claims an attempt on every counter first (so a
///    parallel burst cannot pass a limit) and loads the user; a throttled
///    attempt is released again and costs no password work.
/// 2. argon2 runs behind the [`PasswordGate`], holding no connection.
/// 3. Success clears this account+network's back-off (for a user with a
///    second factor: only takes the attempt back) and runs `then`;
///    failure leaves the claimed attempt counted.
pub async fn check_password<T, F>(
    db: &Db,
    gate: &PasswordGate,
    attempt: Attempt,
    now: OffsetDateTime,
    policy: ThrottlePolicy,
    then: F,
) -> Result<T, LoginError>
where
    T: Send + 'static,
    F: FnOnce(&mut DbConn, UserRow) -> Result<T, LoginError> + Send + 'static,
{
    let keys = Keys::new(&attempt.username, attempt.ip);
    let username = attempt.username;
    let password_ok_len = attempt.password.len() <= PASSWORD_MAX;
    let (now_db, cutoff) = (to_db(now), to_db(now - policy.window));
    let p = policy;
    let claimed = db
        .run(move |conn| {
            conn.transaction(|conn| {
                if let Some(wait) = claim_attempt(conn, &keys, now_db, cutoff, &p, now)? {
                    return Ok::<_, LoginError>(Err(wait));
                }
                let user = match Username::parse(&username) {
                    Ok(name) if password_ok_len => repo::users::by_username(conn, name.as_str())?,
                    _ => None,
                };
                Ok(Ok((user, keys)))
            })
        })
        .await?;
    let (user, keys) = claimed.map_err(|wait| LoginError::Throttled {
        retry_after_secs: u64::try_from(wait.whole_seconds().max(1)).unwrap_or(1),
    })?;
    let hash = user.as_ref().and_then(|u| u.password_hash.clone());
    let password = attempt.password;
    let ok = gate
        .run(move || match hash {
            Some(hash) => password::verify(&password, &hash),
            None => {
                password::verify_dummy(&password);
                false
            }
        })
        .await
        .map_err(|e| LoginError::Service(ServiceError::Internal(e.to_string())))?;
    match user {
        Some(user) if ok && !user.disabled => {
            db.run(move |conn| {
                conn.transaction(|conn| {
                    // For a user with a second factor the password is half
                    // a sign-in: its attempt is taken back, but the
                    // back-off that wrong codes built stays until a right
                    // code (`FactorAttempt::succeeded`).
                    if mfa::has_factor(conn, &user.id)? {
                        for key in keys.all() {
                            repo::throttle::release(conn, key)?;
                        }
                    } else {
                        attempt_succeeded(conn, &keys)?;
                    }
                    then(conn, user)
                })
            })
            .await
        }
        _ => Err(LoginError::InvalidCredentials),
    }
}

/// What re-authenticating a signed-in person needs: the sign-in form's
/// gate and throttle, and the caller's address (counted per network, as
/// for the form).
#[derive(Clone)]
pub struct Reauth {
    pub gate: PasswordGate,
    pub throttle: ThrottlePolicy,
    pub ip: Option<IpAddr>,
}

/// Re-authentication: a signed-in `user` confirms a change that outlives
/// their session (a new password, a personal access token) with their
/// current password, through [`check_password`] for their own username.
/// So the same throttle counters as the sign-in form count it (a wrong
/// password here counts there, and the other way round), argon2 runs
/// behind the gate, and a disabled user is refused.
///
/// On success `then` runs with the user as stored now, in a savepoint of
/// the transaction that clears the throttle: its refusal (bad input, a
/// rule) undoes its own writes, not the cleared throttle, since the
/// password was right. An empty password is refused before any work and
/// counts nothing (it is no guess); a wrong or throttled one is `Invalid`
/// on `current_password`.
pub async fn confirm_password<T, F>(
    db: &Db,
    reauth: &Reauth,
    user: &UserRow,
    password: Zeroizing<String>,
    now: OffsetDateTime,
    then: F,
) -> Result<T, ServiceError>
where
    T: Send + 'static,
    F: FnOnce(&mut DbConn, UserRow) -> Result<T, ServiceError> + Send + 'static,
{
    const FIELD: &str = "current_password";
    if password.is_empty() {
        return Err(Invalid::new(FIELD, "is required: enter your current password").into());
    }
    let attempt = Attempt {
        username: user.username.clone(),
        password,
        ip: reauth.ip,
    };
    let expected = user.id.clone();
    let confirmed = check_password(db, &reauth.gate, attempt, now, reauth.throttle, {
        move |conn, fresh| {
            // A username now naming someone else is no confirmation.
            if fresh.id != expected {
                return Err(LoginError::InvalidCredentials);
            }
            Ok(conn.transaction(|conn| then(conn, fresh)))
        }
    })
    .await;
    match confirmed {
        Ok(done) => done,
        Err(LoginError::InvalidCredentials) => {
            Err(Invalid::new(FIELD, "is not your current password").into())
        }
        Err(LoginError::Throttled { .. }) => Err(Invalid::new(
            FIELD,
            "was wrong too many times; wait a few minutes and try again",
        )
        .into()),
        Err(LoginError::Service(e)) => Err(e),
    }
}

fn to_i32(n: u32) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> ThrottlePolicy {
        ThrottlePolicy {
            max_failures_per_account: 5,
            max_failures_per_ip: 50,
            window: Duration::minutes(15),
        }
    }

    #[test]
    fn backoff_grows_exponentially_after_the_free_attempts() {
        let t0 = OffsetDateTime::UNIX_EPOCH;
        assert_eq!(backoff(4, 5, t0, t0), None);
        assert_eq!(backoff(5, 5, t0, t0), Some(Duration::seconds(1)));
        assert_eq!(backoff(8, 5, t0, t0), Some(Duration::seconds(8)));
        assert_eq!(backoff(8, 5, t0, t0 + Duration::seconds(8)), None);
        assert_eq!(
            backoff(500, 5, t0, t0).map(|d| d > Duration::days(365)),
            Some(true)
        );
    }

    #[test]
    fn one_network_cannot_lock_an_account_for_everyone() {
        let (p, t0) = (policy(), OffsetDateTime::UNIX_EPOCH);
        // 20 failures of this account from one network: that pair backs off,
        // the account as a whole (20 < 50) does not.
        assert!(verdict(&p, Some((21, t0)), (21, t0), Some((21, t0)), t0).is_some());
        assert!(verdict(&p, Some((1, t0)), (21, t0), Some((1, t0)), t0).is_none());
        // Past the softer account allowance, everyone backs off.
        assert!(verdict(&p, Some((1, t0)), (51, t0), Some((1, t0)), t0).is_some());
        // A network past its hard limit waits for the window to end.
        assert_eq!(
            verdict(&p, Some((1, t0)), (1, t0), Some((51, t0)), t0),
            Some(Duration::minutes(15))
        );
    }

    #[test]
    fn keys_group_ipv6_by_64() {
        let a = Keys::new("Alice", Some("2001:db8::1".parse().unwrap()));
        let b = Keys::new("alice", Some("2001:db8::ffff".parse().unwrap()));
        assert_eq!(a.pair, b.pair);
        assert_eq!(a.network.as_deref(), Some("ip:2001:db8::/64"));
        assert_eq!(a.account, "user:alice");
    }
}

//! Browser sessions: server-side rows keyed by the SHA-256 of a 256-bit
//! random cookie value, with idle and absolute expiry.

use time::{Duration, OffsetDateTime};

use super::ServiceResult;
use super::logout::{self, Ended, LogoutPolicy, Which};
use crate::clock::{from_db, to_db};
use crate::domain::mfa::Amr;
use crate::domain::secret::{OpaqueSecret, hash_secret};
use crate::store::models::{SessionRow, UserRow};
use crate::store::{DbConn, repo};

/// Writes of `last_seen_at` are skipped when the last one is this recent,
/// so a busy page does not write on every request.
const TOUCH_EVERY: Duration = Duration::seconds(60);

#[derive(Debug, Clone, Copy)]
pub struct SessionPolicy {
    pub idle_timeout: Duration,
    pub absolute_timeout: Duration,
}

impl SessionPolicy {
    pub fn from_config(c: &crate::config::SessionConfig) -> Self {
        Self {
            idle_timeout: Duration::seconds(i64::try_from(c.idle_timeout_secs).unwrap_or(i64::MAX)),
            absolute_timeout: Duration::seconds(
                i64::try_from(c.absolute_timeout_secs).unwrap_or(i64::MAX),
            ),
        }
    }
}

/// A live session and its (enabled) user.
#[derive(Debug, Clone)]
pub struct ActiveSession {
    pub id_hash: String,
    /// Opaque id for the `sid` claim.
    pub sid: String,
    pub user: UserRow,
    pub auth_time: OffsetDateTime,
    pub expires_at: OffsetDateTime,
    /// How the user signed in (and stepped up since).
    pub amr: Amr,
}

/// Client details recorded with a session, bounded.
#[derive(Debug, Clone, Default)]
pub struct SessionMeta {
    pub ip: Option<String>,
    pub user_agent: Option<String>,
}

/// Starts a session for `user_id` signed in with a password alone;
/// returns the cookie value (shown once).
pub fn create(
    conn: &mut DbConn,
    user_id: &str,
    meta: SessionMeta,
    now: OffsetDateTime,
    policy: SessionPolicy,
) -> ServiceResult<OpaqueSecret> {
    create_with(conn, user_id, meta, now, policy, &Amr::password())
}

/// Starts a session for `user_id` signed in as `amr` says; returns the
/// cookie value (shown once).
pub fn create_with(
    conn: &mut DbConn,
    user_id: &str,
    meta: SessionMeta,
    now: OffsetDateTime,
    policy: SessionPolicy,
    amr: &Amr,
) -> ServiceResult<OpaqueSecret> {
    let secret = OpaqueSecret::generate()?;
    let bound = |s: Option<String>, n: usize| s.map(|s| s.chars().take(n).collect::<String>());
    let row = SessionRow {
        id_hash: secret.hash(),
        user_id: user_id.to_owned(),
        auth_time: to_db(now),
        created_at: to_db(now),
        last_seen_at: to_db(now),
        expires_at: to_db(now + policy.absolute_timeout),
        ip: bound(meta.ip, 64),
        user_agent: bound(meta.user_agent, 256),
        sid: Some(uuid::Uuid::new_v4().simple().to_string()),
        amr: Some(amr.to_string()),
    };
    repo::sessions::insert(conn, &row)?;
    Ok(secret)
}

/// Looks a cookie value up. Expired sessions and sessions of disabled users
/// are deleted and read as absent.
pub fn resolve(
    conn: &mut DbConn,
    cookie_value: &str,
    now: OffsetDateTime,
    policy: SessionPolicy,
) -> ServiceResult<Option<ActiveSession>> {
    // Our ids are exactly 43 base64url characters; anything else is not one.
    if cookie_value.len() != 43 {
        return Ok(None);
    }
    let id_hash = hash_secret(cookie_value);
    let Some((session, user)) = repo::sessions::with_user(conn, &id_hash)? else {
        return Ok(None);
    };
    let last_seen = from_db(session.last_seen_at);
    let expires_at = from_db(session.expires_at);
    if now >= expires_at || now - last_seen >= policy.idle_timeout || user.disabled {
        repo::sessions::delete(conn, &id_hash)?;
        return Ok(None);
    }
    if now - last_seen >= TOUCH_EVERY {
        repo::sessions::touch(conn, &id_hash, to_db(now))?;
    }
    Ok(Some(ActiveSession {
        sid: public_sid(&session),
        id_hash,
        auth_time: from_db(session.auth_time),
        expires_at,
        amr: Amr::parse(session.amr.as_deref()),
        user,
    }))
}

/// The session's public id (the `sid` claim). Sessions from before `sid`
/// existed get one derived from, but not revealing, their key.
pub fn public_sid(session: &SessionRow) -> String {
    session
        .sid
        .clone()
        .unwrap_or_else(|| hash_secret(&session.id_hash)[..32].to_owned())
}

/// Ends the session with this cookie value, if any, as a sign-out: the
/// clients that took part get a logout token, its grants without
/// `offline_access` are revoked (all of them under
/// `logout.revoke_offline_grants`). See [`logout::end_sessions`].
pub fn end_with(
    conn: &mut DbConn,
    cookie_value: &str,
    policy: LogoutPolicy,
    now: OffsetDateTime,
) -> ServiceResult<Ended> {
    if cookie_value.len() != 43 {
        return Ok(Ended::default());
    }
    let id_hash = hash_secret(cookie_value);
    Ok(logout::end_sessions(
        conn,
        Which::Hash(&id_hash),
        policy,
        now,
    )?)
}

/// Deletes expired sessions; returns how many.
pub fn purge_expired(
    conn: &mut DbConn,
    now: OffsetDateTime,
    policy: SessionPolicy,
) -> ServiceResult<usize> {
    Ok(repo::sessions::delete_expired(
        conn,
        to_db(now),
        to_db(now - policy.idle_timeout),
    )?)
}

//! Deleting what has expired: sessions, login throttle counters,
//! authorization codes, device codes, refresh tokens, revoked access token
//! ids, grants that ended more than [`GRANT_RETENTION`] ago, and logout
//! tokens delivered or given up more than [`LOGOUT_RETENTION`] ago, and
//! personal access tokens revoked or expired more than [`GRANT_RETENTION`]
//! ago (until then their owners see them listed as expired).

use time::{Duration, OffsetDateTime};

use super::ServiceResult;
use super::sessions::{self, SessionPolicy};
use crate::clock::to_db;
use crate::store::{DbConn, repo};

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Purged {
    pub sessions: usize,
    pub throttles: usize,
    pub codes: usize,
    pub device_codes: usize,
    pub refresh_tokens: usize,
    pub revocations: usize,
    pub grants: usize,
    pub logout_tokens: usize,
    pub personal_access_tokens: usize,
    /// Sign-ins that never got their second factor.
    pub mfa_challenges: usize,
}

impl Purged {
    pub fn total(&self) -> usize {
        self.sessions
            + self.throttles
            + self.codes
            + self.device_codes
            + self.refresh_tokens
            + self.revocations
            + self.grants
            + self.logout_tokens
            + self.personal_access_tokens
            + self.mfa_challenges
    }
}

/// How long an ended grant is kept (for the audit trail and support
/// questions) before it is deleted.
pub const GRANT_RETENTION: Duration = Duration::days(30);

/// How long a delivered or given-up logout token (and its attempts) stays
/// visible to admins before it is deleted.
pub const LOGOUT_RETENTION: Duration = Duration::days(7);

pub fn purge(
    conn: &mut DbConn,
    now: OffsetDateTime,
    sessions_policy: SessionPolicy,
    throttle_window: Duration,
    refresh_absolute_ttl: Duration,
) -> ServiceResult<Purged> {
    let now_db = to_db(now);
    let revoked_before = to_db(now - GRANT_RETENTION);
    let started_before = to_db(now - refresh_absolute_ttl - GRANT_RETENTION);
    Ok(Purged {
        sessions: sessions::purge_expired(conn, now, sessions_policy)?,
        throttles: repo::throttle::purge(conn, to_db(now - throttle_window))?,
        codes: repo::grants::delete_expired_codes(conn, now_db)?,
        device_codes: repo::device_codes::purge_expired(conn, now_db)?,
        refresh_tokens: repo::grants::delete_expired_refresh(conn, now_db)?,
        revocations: repo::revocations::purge(conn, now_db)?,
        grants: repo::grants::purge_ended(conn, revoked_before, started_before)?,
        logout_tokens: repo::logout::purge(conn, to_db(now - LOGOUT_RETENTION))?,
        personal_access_tokens: repo::personal_access_tokens::purge(conn, revoked_before)?,
        mfa_challenges: repo::mfa::purge_challenges(conn, now_db)?,
    })
}

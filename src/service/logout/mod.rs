//! Ending sessions: the one place every sign-out goes through (the
//! session's own sign-out, "sign out" of one session or "everywhere else"
//! in My account, a password change, an admin disabling, resetting,
//! deleting a user or ending their sessions), and OpenID Connect
//! Back-Channel Logout 1.0 for the clients that took part.
//!
//! [`end_sessions`] does, in one transaction: read the ended sessions'
//! `(sid, user)`, find the clients that took part in each (the grants
//! made in that session, `grants.sid`, whose client registered a
//! `backchannel_logout_uri`), write one outbox row per (session, client),
//! revoke the session's grants without `offline_access` (all of them with
//! `logout.revoke_offline_grants`), then delete the sessions. The
//! [`delivery`] worker of every instance sends the logout tokens. Session
//! expiry is not a sign-out and sends nothing.

pub mod admin;
pub mod delivery;
mod egress;

use std::collections::{BTreeMap, BTreeSet};

use diesel::Connection;
use serde::Serialize;
use time::OffsetDateTime;
use tokio::sync::Notify;

use super::sessions::public_sid;
use crate::clock::to_db;
use crate::store::models::LogoutOutboxRow;
use crate::store::{DbConn, repo};

pub use crate::store::repo::sessions::Matching as Which;

/// What ending a session does to its grants (`[logout]` settings).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LogoutPolicy {
    /// Revoke the session's `offline_access` grants too.
    pub revoke_offline_grants: bool,
}

impl LogoutPolicy {
    pub fn from_config(c: &crate::config::LogoutConfig) -> Self {
        Self {
            revoke_offline_grants: c.revoke_offline_grants,
        }
    }
}

/// What a sign-out did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Ended {
    /// Sessions ended.
    pub sessions: usize,
    /// Logout tokens queued (one per ended session and client).
    pub logout_tokens: usize,
    /// Grants revoked.
    pub grants_revoked: usize,
}

/// Wakes the delivery workers of this process at once.
static WAKE: Notify = Notify::const_new();

/// Tells this process's delivery workers that logout tokens are waiting
/// (those of other instances find them at their next poll). Call it after
/// the transaction that queued them committed; an early call only costs
/// the worker one query.
pub fn wake() {
    WAKE.notify_waiters();
}

pub(crate) fn wake_signal() -> &'static Notify {
    &WAKE
}

/// Whether a grant's scope holds `offline_access`.
fn is_offline(scope: &str) -> bool {
    scope.split(' ').any(|s| s == "offline_access")
}

/// Ends the sessions `which` names, in one transaction (a savepoint
/// inside the caller's): queues a logout token for every client that
/// took part and listens, revokes the sessions' grants as `policy` says,
/// deletes the sessions. Nothing matching is `Ended::default()`.
pub fn end_sessions(
    conn: &mut DbConn,
    which: Which<'_>,
    policy: LogoutPolicy,
    now: OffsetDateTime,
) -> diesel::QueryResult<Ended> {
    let ended = conn.transaction::<_, diesel::result::Error, _>(|conn| {
        // Claim first (see store): lock the sessions before reading them.
        if repo::sessions::lock_matching(conn, which)? == 0 {
            return Ok(Ended::default());
        }
        let rows = repo::sessions::select_matching(conn, which)?;
        let user_of: BTreeMap<String, String> = rows
            .iter()
            .map(|r| (public_sid(r), r.user_id.clone()))
            .collect();
        let sids: Vec<String> = user_of.keys().cloned().collect();
        let pairs = repo::grants::participants(conn, &sids)?;
        let clients: Vec<String> = pairs
            .iter()
            .map(|(_, c)| c.clone())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let listening: BTreeSet<String> = repo::clients::with_backchannel_logout(conn, &clients)?
            .into_iter()
            .collect();
        let mut logout_tokens = 0;
        for (sid, client_id) in pairs.into_iter().filter(|(_, c)| listening.contains(c)) {
            let Some(user_id) = user_of.get(&sid) else {
                continue;
            };
            repo::logout::insert(
                conn,
                &LogoutOutboxRow {
                    id: uuid::Uuid::now_v7().to_string(),
                    client_id,
                    user_id: user_id.clone(),
                    sid,
                    created_at: to_db(now),
                    next_attempt_at: to_db(now),
                    attempts: 0,
                    claimed_until: None,
                    delivered_at: None,
                    gave_up_at: None,
                    last_error: None,
                },
            )?;
            logout_tokens += 1;
        }
        let mut grants_revoked = 0;
        for g in repo::grants::live_in_sessions(conn, &sids)? {
            if policy.revoke_offline_grants || !is_offline(&g.scope) {
                grants_revoked += repo::grants::revoke_grant(conn, &g.id, to_db(now))?;
            }
        }
        let hashes: Vec<String> = rows.into_iter().map(|r| r.id_hash).collect();
        let sessions = repo::sessions::delete_many(conn, &hashes)?;
        Ok(Ended {
            sessions,
            logout_tokens,
            grants_revoked,
        })
    })?;
    if ended.logout_tokens > 0 {
        wake();
    }
    Ok(ended)
}

/// Signs every session of the user out, for changes that then revoke all
/// of the user's grants anyway (disabling, a new password, deleting).
pub fn end_all_of(
    conn: &mut DbConn,
    user_id: &str,
    now: OffsetDateTime,
) -> diesel::QueryResult<Ended> {
    end_sessions(conn, Which::All { user_id }, LogoutPolicy::default(), now)
}

#[cfg(test)]
mod tests {
    use super::is_offline;

    #[test]
    fn offline_is_a_whole_scope() {
        assert!(is_offline("openid offline_access"));
        assert!(is_offline("offline_access"));
        assert!(!is_offline("openid profile"));
        assert!(!is_offline("openid offline_access_x"));
    }
}

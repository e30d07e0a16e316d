//! "My account": what a signed-in person sees and changes about themselves:
//! profile, password, the apps they authorized (and revoking them), and
//! their sessions.

use std::collections::BTreeMap;

use diesel::Connection;
use serde::Serialize;
use time::OffsetDateTime;
use zeroize::Zeroizing;

use super::logout::{self, LogoutPolicy, Which};
use super::password::{self, PasswordGate};
use super::{ServiceError, ServiceResult};
use crate::clock::{from_db, to_db};
use crate::domain::Invalid;
use crate::domain::audit::Actor;
use crate::domain::scope::ScopeSet;
use crate::domain::user::{Profile, ProfileInput, check_new_password};
use crate::store::audit;
use crate::store::models::UserRow;
use crate::store::{Db, DbConn, repo};

/// An app the user authorized.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct AuthorizedApp {
    pub client_id: String,
    pub client_name: String,
    pub scopes: Vec<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub granted_at: OffsetDateTime,
    /// The last sign-in or token refresh through this app.
    #[serde(with = "time::serde::rfc3339")]
    pub last_used_at: OffsetDateTime,
}

/// The apps `user_id` has authorized: every client with a remembered
/// consent or a live grant, by name.
pub fn authorized_apps(conn: &mut DbConn, user_id: &str) -> ServiceResult<Vec<AuthorizedApp>> {
    struct Acc {
        scopes: ScopeSet,
        granted_at: OffsetDateTime,
        last_used_at: OffsetDateTime,
    }
    let mut by_client: BTreeMap<String, Acc> = BTreeMap::new();
    let mut merge = |client_id: &str, scope: &str, at: OffsetDateTime| {
        let scope = ScopeSet::parse(scope).unwrap_or_default();
        by_client
            .entry(client_id.to_owned())
            .and_modify(|a| {
                a.scopes = a.scopes.union(&scope);
                a.granted_at = a.granted_at.min(at);
                a.last_used_at = a.last_used_at.max(at);
            })
            .or_insert(Acc {
                scopes: scope,
                granted_at: at,
                last_used_at: at,
            });
    };
    for c in repo::consents::for_user(conn, user_id)? {
        merge(&c.client_id, &c.scope, from_db(c.granted_at));
    }
    for g in repo::grants::live_for_user(conn, user_id)? {
        merge(&g.client_id, &g.scope, from_db(g.created_at));
    }
    for (client_id, at) in repo::grants::refresh_times_for_user(conn, user_id)? {
        if let Some(a) = by_client.get_mut(&client_id) {
            a.last_used_at = a.last_used_at.max(from_db(at));
        }
    }
    let mut apps = Vec::with_capacity(by_client.len());
    for (client_id, acc) in by_client {
        // A deleted client's rows go with it; skip any stragglers.
        let Some(client) = repo::clients::by_id(conn, &client_id)? else {
            continue;
        };
        apps.push(AuthorizedApp {
            client_id,
            client_name: client.name,
            scopes: acc.scopes.iter().map(str::to_owned).collect(),
            granted_at: acc.granted_at,
            last_used_at: acc.last_used_at,
        });
    }
    apps.sort_by(|a, b| a.client_name.cmp(&b.client_name));
    Ok(apps)
}

/// Revokes the user's authorization of `client_id`: forgets the consent
/// (the app must ask again) and revokes every grant, so its refresh tokens
/// fail at once and introspection reports its access tokens inactive.
/// Nothing to revoke is `NotFound`.
pub fn revoke_app(
    conn: &mut DbConn,
    user: &UserRow,
    client_id: &str,
    actor: &Actor,
    now: OffsetDateTime,
) -> ServiceResult<()> {
    conn.transaction(|conn| {
        // Claim first (see store): the audit row is the first statement,
        // and is rolled back with the rest when there is nothing to revoke.
        audit::record(
            conn,
            actor,
            "account.revoke_app",
            client_id,
            Some(format!("user={}", user.username)),
            now,
        )?;
        let grants = repo::grants::revoke_for_user(conn, &user.id, Some(client_id), to_db(now))?;
        let consents = repo::consents::delete(conn, &user.id, client_id)?;
        if grants + consents == 0 {
            return Err(ServiceError::NotFound {
                what: "authorized application",
                id: client_id.to_owned(),
            });
        }
        Ok(())
    })
}

/// One of the user's browser sessions, identified by its public `sid`.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct SessionView {
    pub sid: String,
    pub current: bool,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub last_seen_at: OffsetDateTime,
}

/// The user's sessions, newest first; `current_hash` marks this browser's.
pub fn sessions(
    conn: &mut DbConn,
    user_id: &str,
    current_hash: &str,
) -> ServiceResult<Vec<SessionView>> {
    Ok(repo::sessions::for_user(conn, user_id)?
        .into_iter()
        .filter_map(|s| {
            Some(SessionView {
                current: s.id_hash == current_hash,
                sid: s.sid?,
                ip: s.ip,
                user_agent: s.user_agent,
                created_at: from_db(s.created_at),
                last_seen_at: from_db(s.last_seen_at),
            })
        })
        .collect())
}

/// Signs one of the user's own sessions out, by `sid` (with back-channel
/// logout, see [`logout::end_sessions`]). Another user's sid (or an
/// unknown one) is `NotFound` and changes nothing.
pub fn end_session(
    conn: &mut DbConn,
    user_id: &str,
    sid: &str,
    policy: LogoutPolicy,
    now: OffsetDateTime,
) -> ServiceResult<()> {
    let ended = logout::end_sessions(conn, Which::Sid { user_id, sid }, policy, now)?;
    if ended.sessions == 0 {
        return Err(ServiceError::NotFound {
            what: "session",
            id: sid.to_owned(),
        });
    }
    Ok(())
}

/// Signs every session of the user out except `current_hash`'s (with
/// back-channel logout); returns how many ended.
pub fn end_other_sessions(
    conn: &mut DbConn,
    user_id: &str,
    current_hash: &str,
    policy: LogoutPolicy,
    now: OffsetDateTime,
) -> ServiceResult<usize> {
    let which = Which::AllBut {
        user_id,
        keep_hash: current_hash,
    };
    Ok(logout::end_sessions(conn, which, policy, now)?.sessions)
}

/// Updates the profile claims the user controls (not the username, the
/// email address or the admin flag).
pub fn update_profile(
    conn: &mut DbConn,
    user_id: &str,
    input: &ProfileInput<'_>,
    now: OffsetDateTime,
) -> ServiceResult<()> {
    let profile = Profile::parse(input)?;
    repo::users::set_profile(conn, user_id, &profile, to_db(now))?;
    Ok(())
}

/// Changes the password after checking the current one, ends the user's
/// other sessions and revokes every grant (so every refresh token): whoever
/// else knew the old password, or stole a token with it, is out. The
/// session that made the change stays signed in.
///
/// argon2 (checking the current password, hashing the new one) runs behind
/// the [`PasswordGate`] holding no database connection, as sign-in does;
/// then one transaction writes.
pub async fn change_password(
    db: &Db,
    gate: &PasswordGate,
    user: UserRow,
    current: Zeroizing<String>,
    new: Zeroizing<String>,
    current_hash: String,
    now: OffsetDateTime,
) -> ServiceResult<()> {
    let stored = user.password_hash.clone();
    // Reported only once the current password is known to be right.
    let new_problem = check_new_password(&new).err().or_else(|| {
        (*new == *current).then(|| Invalid::new("new_password", "must differ from the current one"))
    });
    let hash = gate
        .run(move || {
            if !stored.is_some_and(|h| password::verify(&current, &h)) {
                return Err(
                    Invalid::new("current_password", "is not your current password").into(),
                );
            }
            if let Some(problem) = new_problem {
                return Err(ServiceError::from(problem));
            }
            password::hash(&new).map_err(|e| ServiceError::Internal(e.to_string()))
        })
        .await
        .map_err(|e| ServiceError::Internal(e.to_string()))??;
    db.run(move |conn| {
        conn.transaction(|conn| {
            repo::users::set_password_hash(conn, &user.id, &hash, to_db(now))?;
            let others = Which::AllBut {
                user_id: &user.id,
                keep_hash: &current_hash,
            };
            logout::end_sessions(conn, others, LogoutPolicy::default(), now)?;
            repo::grants::revoke_for_user(conn, &user.id, None, to_db(now))?;
            audit::record(
                conn,
                &Actor {
                    name: format!("user:{}", user.username),
                    ip: None,
                },
                "account.change_password",
                &user.username,
                None,
                now,
            )
        })
        .map_err(ServiceError::from)
    })
    .await?;
    logout::wake();
    Ok(())
}

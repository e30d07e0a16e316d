//! "My account": what a signed-in person sees and changes about themselves:
//! profile, password, the apps they authorized (and revoking them), their
//! sessions, and new personal access tokens (after their password).

use std::collections::BTreeMap;

use diesel::Connection;
use serde::Serialize;
use time::OffsetDateTime;
use zeroize::Zeroizing;

use super::login::{self, Reauth};
use super::logout::{self, LogoutPolicy, Which};
use super::password::NewPasswordHash;
use super::pat::{self, IssuedPat, NewPat};
use super::{ServiceError, ServiceResult};
use crate::clock::{from_db, to_db};
use crate::config::PatConfig;
use crate::domain::Invalid;
use crate::domain::audit::Actor;
use crate::domain::scope::ScopeSet;
use crate::domain::user::{Profile, ProfileInput};
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

/// How many authorized apps "My account" shows at a time.
pub const APPS_PER_PAGE: i64 = 20;

/// One page of a user's authorized apps.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct AppsPage {
    pub apps: Vec<AuthorizedApp>,
    /// 1-based, within `1..=pages`.
    pub page: i64,
    /// At least 1, even with no apps.
    pub pages: i64,
    pub total: i64,
}

/// The page to show for a `requested` one, how many pages `total` apps
/// make, and the offset of the page's first app: out-of-range requests
/// are clamped to the first or the last page.
fn page_bounds(total: i64, requested: i64) -> (i64, i64, i64) {
    let pages = ((total.max(0) + APPS_PER_PAGE - 1) / APPS_PER_PAGE).max(1);
    let page = requested.clamp(1, pages);
    (page, pages, (page - 1) * APPS_PER_PAGE)
}

/// Page `requested` (1-based, clamped to the pages there are) of the apps
/// `user_id` has authorized: every client with a remembered consent or a
/// live grant, most recently used first, then by name, then by client id.
/// The database pages; only the page's scopes are read.
pub fn authorized_apps(
    conn: &mut DbConn,
    user_id: &str,
    requested: i64,
) -> ServiceResult<AppsPage> {
    let total = repo::authorized_apps::count(conn, user_id)?;
    let (page, pages, offset) = page_bounds(total, requested);
    let rows = repo::authorized_apps::page(conn, user_id, APPS_PER_PAGE, offset)?;
    let ids: Vec<String> = rows.iter().map(|r| r.client_id.clone()).collect();
    let mut scopes: BTreeMap<String, ScopeSet> = BTreeMap::new();
    for (client_id, scope) in repo::authorized_apps::scopes(conn, user_id, &ids)? {
        let scope = ScopeSet::parse(&scope).unwrap_or_default();
        let all = scopes.entry(client_id).or_default();
        *all = all.union(&scope);
    }
    let apps = rows
        .into_iter()
        .map(|r| AuthorizedApp {
            scopes: scopes
                .get(&r.client_id)
                .map(|s| s.iter().map(str::to_owned).collect())
                .unwrap_or_default(),
            client_id: r.client_id,
            client_name: r.client_name,
            granted_at: from_db(r.granted_at),
            last_used_at: from_db(r.last_used_at),
        })
        .collect();
    Ok(AppsPage {
        apps,
        page,
        pages,
        total,
    })
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

/// The user acting on their own account, for the audit log.
fn themselves(user: &UserRow, reauth: &Reauth) -> Actor {
    Actor {
        name: format!("user:{}", user.username),
        ip: reauth.ip.map(|ip| ip.to_string()),
    }
}

/// What a password change asks for.
pub struct PasswordChange {
    pub current: Zeroizing<String>,
    pub new: Zeroizing<String>,
    /// "Also revoke my personal access tokens" (ticked by default).
    pub revoke_tokens: bool,
}

/// Changes the password after checking the current one
/// ([`login::confirm_password`]: the sign-in throttle, argon2 behind the
/// gate), ends the user's other sessions and revokes every grant (so every
/// refresh token): whoever else knew the old password, or stole a token
/// with it, is out. The session that made the change stays signed in.
/// With `revoke_tokens`, every personal access token of the user is
/// revoked in the same transaction ([`pat::revoke_all`]); without, they
/// keep working. Returns how many tokens were revoked.
///
/// argon2 (checking the current password, hashing the new one) holds no
/// database connection, as sign-in does; then one transaction writes.
pub async fn change_password(
    db: &Db,
    reauth: &Reauth,
    user: UserRow,
    change: PasswordChange,
    current_hash: String,
    now: OffsetDateTime,
) -> ServiceResult<usize> {
    let PasswordChange {
        current,
        new,
        revoke_tokens,
    } = change;
    // Reported only once the current password is known to be right.
    let new_problem = (*new == *current)
        .then(|| Invalid::new("new_password", "must differ from the current one"));
    let user = login::confirm_password(db, reauth, &user, current, now, |_, user| Ok(user)).await?;
    if let Some(problem) = new_problem {
        return Err(problem.into());
    }
    let hash = NewPasswordHash::gated(&reauth.gate, new).await?;
    let actor = themselves(&user, reauth);
    let revoked = db
        .run(move |conn| {
            conn.transaction(|conn| {
                repo::users::set_password_hash(conn, &user.id, hash.phc(), to_db(now))?;
                let others = Which::AllBut {
                    user_id: &user.id,
                    keep_hash: &current_hash,
                };
                logout::end_sessions(conn, others, LogoutPolicy::default(), now)?;
                repo::grants::revoke_for_user(conn, &user.id, None, to_db(now))?;
                audit::record(
                    conn,
                    &actor,
                    "account.change_password",
                    &user.username,
                    None,
                    now,
                )?;
                if revoke_tokens {
                    pat::revoke_all(conn, &user, "password_change", &actor, now)
                } else {
                    Ok(0)
                }
            })
        })
        .await?;
    logout::wake();
    Ok(revoked)
}

/// A personal access token from My account: it outlives the session (a
/// password change does not end it unless asked, "end sessions" never),
/// so the user confirms with their current password first, through the
/// password change's own check ([`login::confirm_password`]). A stolen
/// session alone cannot mint one. What needs no database (name, scopes,
/// expiry, `pat.enabled`) is refused before any password work; a wrong
/// password is `Invalid` on `current_password`, counts as a failed
/// sign-in, and stores nothing.
pub async fn create_token(
    db: &Db,
    reauth: &Reauth,
    config: PatConfig,
    user: &UserRow,
    password: Zeroizing<String>,
    input: NewPat,
    now: OffsetDateTime,
) -> ServiceResult<IssuedPat> {
    pat::precheck(&config, &input, now)?;
    let actor = themselves(user, reauth);
    login::confirm_password(db, reauth, user, password, now, move |conn, user| {
        pat::create(conn, &config, &user, &input, &actor, now)
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_are_clamped_to_the_apps_there_are() {
        assert_eq!(page_bounds(0, 1), (1, 1, 0), "no apps: one empty page");
        assert_eq!(page_bounds(0, 7), (1, 1, 0));
        assert_eq!(page_bounds(20, 2), (1, 1, 0), "exactly one full page");
        assert_eq!(page_bounds(21, 2), (2, 2, 20));
        assert_eq!(page_bounds(45, 3), (3, 3, 40));
        assert_eq!(page_bounds(45, 4), (3, 3, 40), "past the end: the last");
        assert_eq!(page_bounds(45, i64::MAX), (3, 3, 40));
        assert_eq!(page_bounds(45, 0), (1, 3, 0), "before the start: the first");
        assert_eq!(page_bounds(45, i64::MIN), (1, 3, 0));
    }
}

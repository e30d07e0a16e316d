//! Personal access tokens: a user's long-lived credentials for scripts and
//! tools, created in My account (or for them by an admin, through the
//! admin API and the CLI), shown once, stored hashed, listed with their
//! last use, revocable by their owner and by admins.
//!
//! Who may hold one is decided at creation and again at every use
//! ([`resolve`]): `pat.enabled`, membership of one of `pat.allowed_groups`
//! (when set), an enabled account; and the token's scopes shrink to what
//! the user may hold then (a user who leaves the group a scope is limited
//! to loses that scope on their tokens). Signing out and ending sessions
//! leave tokens alone: they are credentials of their own, ended by
//! revoking them (one, or all of them with a password change in My
//! account: [`revoke_all`]) or by their expiry. Creating one in My account
//! needs the current password (`account::create_token`).
//!
//! Scopes: a token carries neither `openid` nor `offline_access` (it signs
//! nobody in and needs no refresh token); every other scope the user may
//! hold, `latchkey:admin` for admins included.

use diesel::Connection;
use serde::Serialize;
use time::OffsetDateTime;

use super::{ServiceError, ServiceResult, scopes};
use crate::clock::{from_db, to_db};
use crate::config::PatConfig;
use crate::domain::Invalid;
use crate::domain::audit::Actor;
use crate::domain::pat::{self as rules, PersonalAccessToken};
use crate::domain::scope::ScopeSet;
use crate::store::models::{PersonalAccessTokenRow, UserRow};
use crate::store::{DbConn, StoreError, audit, repo};

mod by_name;

pub use by_name::{create_for, create_through_admin_api, list_for, revoke_for};

/// Live (unrevoked, unexpired) tokens one user may have at once.
pub const MAX_LIVE_PER_USER: i64 = 100;

/// Who a personal access token speaks for, and with which scopes, at the
/// time of the use: what [`resolve`] hands to introspection and token
/// exchange.
#[derive(Debug, Clone, PartialEq)]
pub struct PatPrincipal {
    pub token_id: String,
    pub user_id: String,
    /// The token's scopes that the user may still hold: never empty.
    pub scope: ScopeSet,
    pub expires_at: OffsetDateTime,
    /// When the token was created.
    pub issued_at: OffsetDateTime,
}

/// Whether a user may create and use tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Availability {
    /// `pat.enabled = false`: nobody.
    Off,
    /// `pat.allowed_groups` is set and the user is in none of them, or the
    /// account is disabled.
    NotAllowed,
    Allowed,
}

/// A token as its owner and admins see it (never the token itself).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct PatView {
    pub id: String,
    pub name: String,
    /// `lkp_` and the first 8 characters of the secret, then `…`.
    pub hint: String,
    pub scopes: Vec<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_used_at: Option<OffsetDateTime>,
    pub expired: bool,
}

impl PatView {
    fn of(row: PersonalAccessTokenRow, now: OffsetDateTime) -> Self {
        let expires_at = from_db(row.expires_at);
        Self {
            hint: rules::display_hint(&row.hint),
            scopes: row
                .scope
                .split(' ')
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect(),
            created_at: from_db(row.created_at),
            last_used_at: row.last_used_at.map(from_db),
            expired: !rules::usable(expires_at, None, now),
            expires_at,
            id: row.id,
            name: row.name,
        }
    }
}

/// A token just created: the view, and the token, shown this once.
/// `Debug` redacts the token.
#[derive(Clone, Serialize)]
pub struct IssuedPat {
    #[serde(flatten)]
    pub view: PatView,
    pub token: String,
}

impl std::fmt::Debug for IssuedPat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuedPat")
            .field("view", &self.view)
            .field("token", &"<redacted>")
            .finish()
    }
}

/// What a new token should be.
#[derive(Debug, Clone, Default)]
pub struct NewPat {
    pub name: String,
    /// Scope names; each entry may itself be space-separated.
    pub scopes: Vec<String>,
    pub expires_in_days: i64,
}

/// Whether `mine` (a user's groups) meets `allowed` (`pat.allowed_groups`;
/// empty: everyone).
fn groups_allow(allowed: &[String], mine: &[String]) -> bool {
    allowed.is_empty() || allowed.iter().any(|a| mine.iter().any(|m| m == a))
}

/// The rule, given the user's groups when `pat.allowed_groups` is set.
fn availability_of(config: &PatConfig, user: &UserRow, mine: &[String]) -> Availability {
    if !config.enabled {
        Availability::Off
    } else if user.disabled || !groups_allow(&config.allowed_groups, mine) {
        Availability::NotAllowed
    } else {
        Availability::Allowed
    }
}

/// Whether `user` may create and use tokens now: one query when
/// `pat.allowed_groups` is set, none otherwise.
pub fn availability(
    conn: &mut DbConn,
    config: &PatConfig,
    user: &UserRow,
) -> Result<Availability, StoreError> {
    let mine = if config.enabled && !config.allowed_groups.is_empty() {
        repo::groups::names_for_user(conn, &user.id)?
    } else {
        Vec::new()
    };
    Ok(availability_of(config, user, &mine))
}

fn refusal(a: Availability) -> ServiceError {
    ServiceError::Forbidden(match a {
        Availability::Off => "personal access tokens are turned off on this server".into(),
        _ => "this account may not have personal access tokens (ask an administrator)".into(),
    })
}

/// The token's name, scopes and expiry, checked without the database.
fn checked_input(
    config: &PatConfig,
    input: &NewPat,
    now: OffsetDateTime,
) -> Result<(String, ScopeSet, OffsetDateTime), Invalid> {
    let name = rules::name(&input.name)?;
    let scope = rules::requested_scopes(input.scopes.iter().map(String::as_str))?;
    let expires_at = rules::expiry(now, input.expires_in_days, config.max_ttl_days)?;
    Ok((name, scope, expires_at))
}

/// What [`create`] refuses without the database (`pat.enabled`, name,
/// scopes, expiry): checked before asking for the password.
pub(super) fn precheck(
    config: &PatConfig,
    input: &NewPat,
    now: OffsetDateTime,
) -> ServiceResult<()> {
    if !config.enabled {
        return Err(refusal(Availability::Off));
    }
    checked_input(config, input, now)?;
    Ok(())
}

/// Creates a token for `user`: for an admin ([`create_for`]), or for the
/// user after their password (`account::create_token`). Refused (`Forbidden`) when the user may
/// not have tokens; `Invalid` for a bad name, expiry or scope, including a
/// scope the user may not hold now; `Conflict` past
/// [`MAX_LIVE_PER_USER`]. Nothing is stored unless it succeeds; the audit
/// entry (`pat.create`, never the token) is written with it.
pub(super) fn create(
    conn: &mut DbConn,
    config: &PatConfig,
    user: &UserRow,
    input: &NewPat,
    actor: &Actor,
    now: OffsetDateTime,
) -> ServiceResult<IssuedPat> {
    if !config.enabled {
        return Err(refusal(Availability::Off));
    }
    let (name, scope, expires_at) = checked_input(config, input, now)?;
    let token = PersonalAccessToken::generate()?;
    let row = PersonalAccessTokenRow {
        id: uuid::Uuid::new_v4().to_string(),
        user_id: user.id.clone(),
        name,
        token_hash: token.hash(),
        hint: token.hint(),
        scope: scope.to_string(),
        created_at: to_db(now),
        expires_at: to_db(expires_at),
        last_used_at: None,
        revoked_at: None,
    };
    let stored = conn.transaction(|conn| {
        // Claim first (see store): the audit row is the first statement,
        // rolled back with everything else when a check below fails.
        let detail = format!(
            "id={} name={:?} scope={:?} expires_at={}",
            row.id,
            row.name,
            row.scope,
            from_db(row.expires_at)
        );
        audit::record(conn, actor, "pat.create", &user.username, Some(detail), now)?;
        match availability(conn, config, user)? {
            Availability::Allowed => {}
            other => return Err(refusal(other)),
        }
        scopes::check_known(conn, &scope)?;
        let kept = scopes::permitted(conn, user, &scope)?;
        if let Some(s) = scope.iter().find(|s| !kept.contains(s)) {
            return Err(Invalid::new(
                "scope",
                format!("{s:?} is not a scope this account may hold"),
            )
            .into());
        }
        if repo::personal_access_tokens::count_live(conn, &user.id, to_db(now))?
            >= MAX_LIVE_PER_USER
        {
            return Err(ServiceError::Conflict(format!(
                "at most {MAX_LIVE_PER_USER} personal access tokens at a time; revoke one first"
            )));
        }
        repo::personal_access_tokens::insert(conn, &row)?;
        Ok::<_, ServiceError>(row)
    })?;
    Ok(IssuedPat {
        view: PatView::of(stored, now),
        token: token.expose().to_owned(),
    })
}

/// The user's tokens that are not revoked (expired ones marked), newest
/// first.
pub fn list(conn: &mut DbConn, user_id: &str, now: OffsetDateTime) -> ServiceResult<Vec<PatView>> {
    Ok(repo::personal_access_tokens::list_for_user(conn, user_id)?
        .into_iter()
        .map(|r| PatView::of(r, now))
        .collect())
}

/// One of the user's unrevoked tokens; another user's (or an unknown) id
/// is `NotFound`.
pub fn find(
    conn: &mut DbConn,
    user_id: &str,
    id: &str,
    now: OffsetDateTime,
) -> ServiceResult<PatView> {
    repo::personal_access_tokens::get_for_user(conn, user_id, id)?
        .map(|r| PatView::of(r, now))
        .ok_or_else(|| ServiceError::NotFound {
            what: "personal access token",
            id: id.to_owned(),
        })
}

/// Revokes the user's token `id` at once (the next introspection answers
/// inactive; resource servers stop accepting it when their cache of the
/// answer ends). Another user's, an unknown or an already revoked id is
/// `NotFound` and changes nothing. Audited as `pat.revoke`.
pub fn revoke(
    conn: &mut DbConn,
    user: &UserRow,
    id: &str,
    actor: &Actor,
    now: OffsetDateTime,
) -> ServiceResult<()> {
    conn.transaction(|conn| {
        let detail = format!("id={id}");
        audit::record(conn, actor, "pat.revoke", &user.username, Some(detail), now)?;
        if repo::personal_access_tokens::revoke(conn, &user.id, id, to_db(now))? == 0 {
            return Err(ServiceError::NotFound {
                what: "personal access token",
                id: id.to_owned(),
            });
        }
        Ok(())
    })
}

/// Revokes every unrevoked token of `user` (a password change's "Also
/// revoke my personal access tokens"), in the caller's transaction, and
/// returns how many. Audited as `pat.revoke_all` with the count and
/// `reason` when there were any.
pub fn revoke_all(
    conn: &mut DbConn,
    user: &UserRow,
    reason: &str,
    actor: &Actor,
    now: OffsetDateTime,
) -> ServiceResult<usize> {
    let n = repo::personal_access_tokens::revoke_all(conn, &user.id, to_db(now))?;
    if n > 0 {
        let detail = format!("count={n} reason={reason}");
        audit::record(
            conn,
            actor,
            "pat.revoke_all",
            &user.username,
            Some(detail),
            now,
        )?;
    }
    Ok(n)
}

/// What My account shows about tokens.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Overview {
    pub availability: Availability,
    pub tokens: Vec<PatView>,
    /// The scopes the user may give a new token, with their descriptions
    /// (empty unless tokens are available to them).
    pub offered: Vec<(String, String)>,
    pub max_ttl_days: u32,
}

/// The My account section: whether the user may have tokens, their
/// tokens, and what a new one may carry.
pub fn overview(
    conn: &mut DbConn,
    config: &PatConfig,
    user: &UserRow,
    now: OffsetDateTime,
) -> ServiceResult<Overview> {
    let availability = availability(conn, config, user)?;
    let (tokens, offered) = match availability {
        Availability::Off => (Vec::new(), Vec::new()),
        Availability::NotAllowed => (list(conn, &user.id, now)?, Vec::new()),
        Availability::Allowed => {
            let all: Vec<(String, String)> = scopes::list(conn)?
                .into_iter()
                .filter(|s| !rules::REFUSED_SCOPES.contains(&s.name.as_str()))
                .map(|s| (s.name, s.description))
                .collect();
            let kept = scopes::permitted_names(conn, user, all.iter().map(|(n, _)| n.as_str()))?;
            let offered = all.into_iter().filter(|(n, _)| kept.contains(n)).collect();
            (list(conn, &user.id, now)?, offered)
        }
    };
    Ok(Overview {
        availability,
        tokens,
        offered,
        max_ttl_days: config.max_ttl_days,
    })
}

/// Who `token` speaks for now, if anyone: `None` for anything that is not
/// a well-formed, known, unrevoked, unexpired token of an enabled user who
/// may still have tokens (`pat.enabled`, `pat.allowed_groups`), or whose
/// scopes have all been taken away from the user. The scope is the
/// token's, narrowed to what the user may hold now.
///
/// Reads the token with its user (one query), then the scope registry
/// (two, three with a group-limited scope; one more with
/// `pat.allowed_groups`). Records the use with one conditional UPDATE only
/// when the recorded one is a minute old or more; a failure to record it
/// is logged, never a refusal. Call it outside a transaction.
pub fn resolve(
    conn: &mut DbConn,
    config: &PatConfig,
    token: &str,
    now: OffsetDateTime,
) -> Result<Option<PatPrincipal>, StoreError> {
    if !config.enabled {
        return Ok(None);
    }
    let Some(token) = PersonalAccessToken::parse(token) else {
        return Ok(None);
    };
    let Some((row, user)) = repo::personal_access_tokens::by_hash_with_user(conn, &token.hash())?
    else {
        return Ok(None);
    };
    let expires_at = from_db(row.expires_at);
    if !rules::usable(expires_at, row.revoked_at.map(from_db), now) {
        return Ok(None);
    }
    if availability(conn, config, &user)? != Availability::Allowed {
        return Ok(None);
    }
    let Ok(stored) = ScopeSet::parse(&row.scope) else {
        return Ok(None);
    };
    let scope = scopes::permitted(conn, &user, &stored)?;
    if scope.is_empty() {
        return Ok(None);
    }
    if rules::last_use_due(row.last_used_at.map(from_db), now) {
        let due_from = to_db(now - rules::LAST_USED_RESOLUTION);
        if let Err(e) = repo::personal_access_tokens::touch(conn, &row.id, to_db(now), due_from) {
            tracing::warn!(error = %e, token_id = %row.id, "could not record a personal access token's use");
        }
    }
    Ok(Some(PatPrincipal {
        token_id: row.id,
        user_id: user.id,
        scope,
        expires_at,
        issued_at: from_db(row.created_at),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(disabled: bool) -> UserRow {
        let t = to_db(OffsetDateTime::UNIX_EPOCH);
        UserRow {
            id: "u1".into(),
            username: "alice".into(),
            email: None,
            email_verified: false,
            name: None,
            given_name: None,
            family_name: None,
            picture: None,
            locale: None,
            password_hash: None,
            is_admin: false,
            disabled,
            created_at: t,
            updated_at: t,
        }
    }

    fn config(enabled: bool, groups: &[&str]) -> PatConfig {
        PatConfig {
            enabled,
            max_ttl_days: 30,
            allowed_groups: groups.iter().map(|g| (*g).to_owned()).collect(),
        }
    }

    #[test]
    fn who_may_have_tokens() {
        let staff = vec!["staff".to_owned()];
        let none: Vec<String> = Vec::new();
        let on = config(true, &[]);
        assert_eq!(
            availability_of(&on, &user(false), &none),
            Availability::Allowed
        );
        assert_eq!(
            availability_of(&on, &user(true), &none),
            Availability::NotAllowed,
            "disabled accounts never"
        );
        let off = config(false, &[]);
        assert_eq!(
            availability_of(&off, &user(false), &staff),
            Availability::Off
        );
        let limited = config(true, &["staff", "ops"]);
        assert_eq!(
            availability_of(&limited, &user(false), &staff),
            Availability::Allowed
        );
        assert_eq!(
            availability_of(&limited, &user(false), &none),
            Availability::NotAllowed
        );
        assert_eq!(
            availability_of(&limited, &user(false), &["staffers".to_owned()]),
            Availability::NotAllowed,
            "names match exactly"
        );
    }

    #[test]
    fn input_is_checked_before_the_database() {
        let now = OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap();
        let c = config(true, &[]);
        let good = NewPat {
            name: " deploy ".into(),
            scopes: vec!["read:notes write:notes".into(), "profile".into()],
            expires_in_days: 30,
        };
        let (name, scope, exp) = checked_input(&c, &good, now).unwrap();
        assert_eq!(name, "deploy");
        assert_eq!(scope.to_string(), "profile read:notes write:notes");
        assert_eq!(exp, now + time::Duration::days(30));
        let too_long = NewPat {
            expires_in_days: 31,
            ..good.clone()
        };
        assert_eq!(
            checked_input(&c, &too_long, now).unwrap_err().field,
            "expires_in_days"
        );
        let no_name = NewPat {
            name: "  ".into(),
            ..good.clone()
        };
        assert_eq!(checked_input(&c, &no_name, now).unwrap_err().field, "name");
        let sign_in = NewPat {
            scopes: vec!["openid read:notes".into()],
            ..good
        };
        assert_eq!(checked_input(&c, &sign_in, now).unwrap_err().field, "scope");
    }

    #[test]
    fn issued_tokens_do_not_debug_their_secret() {
        let now = OffsetDateTime::UNIX_EPOCH;
        let issued = IssuedPat {
            view: PatView {
                id: "i".into(),
                name: "n".into(),
                hint: "lkp_abcdefgh…".into(),
                scopes: vec![],
                created_at: now,
                expires_at: now,
                last_used_at: None,
                expired: true,
            },
            token: "lkp_secret-value".into(),
        };
        assert!(!format!("{issued:?}").contains("secret-value"));
    }
}

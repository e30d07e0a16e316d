//! The scope registry: built-in scopes, and custom scopes an admin defines
//! with a consent-page description and, optionally, the groups whose
//! members may be granted them. A user is granted a custom scope only if
//! it is unrestricted or one of their groups permits it, and
//! `latchkey:admin` only if they are an admin: an app never gets more
//! than its user has.
//!
//! A client acting for itself (`client_credentials`) holds a custom scope
//! only if an admin marked it machine-grantable, and a dynamically
//! registered client never holds a group-restricted one (the rule is
//! `domain::scope::ScopeRegistry`; [`registry`] loads it).

use diesel::Connection;
use serde::Serialize;
use time::OffsetDateTime;

use super::{ServiceError, ServiceResult};
use crate::clock::to_db;
use crate::domain::Invalid;
use crate::domain::audit::Actor;
use crate::domain::scope::{
    ADMIN_SCOPE, BUILTIN_SCOPES, CustomScopeFlags, DESCRIPTION_MAX, STANDARD_SCOPES, Scope,
    ScopeRegistry, ScopeSet, builtin_description,
};
use crate::domain::text;
use crate::store::audit;
use crate::store::models::{ScopeRow, UserRow};
use crate::store::{DbConn, StoreError, repo};

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ScopeView {
    pub name: String,
    pub description: String,
    /// Groups whose members may be granted it; empty: any user.
    pub groups: Vec<String>,
    pub builtin: bool,
    /// Whether a client acting for itself (`client_credentials`) may hold
    /// it. Built-ins: `latchkey:admin` (admin-created clients only) yes,
    /// the user scopes no.
    pub machine_grantable: bool,
}

/// Every scope: built-ins first, then custom ones by name.
pub fn list(conn: &mut DbConn) -> ServiceResult<Vec<ScopeView>> {
    let restrictions = repo::scopes::group_names(conn)?;
    let groups_of = |name: &str| -> Vec<String> {
        restrictions
            .iter()
            .filter(|(s, _)| s == name)
            .map(|(_, g)| g.clone())
            .collect()
    };
    let mut out: Vec<ScopeView> = BUILTIN_SCOPES
        .iter()
        .map(|(name, description)| ScopeView {
            name: (*name).to_owned(),
            description: (*description).to_owned(),
            groups: Vec::new(),
            builtin: true,
            machine_grantable: !STANDARD_SCOPES.contains(name),
        })
        .collect();
    for row in repo::scopes::list(conn)? {
        out.push(ScopeView {
            groups: groups_of(&row.name),
            name: row.name,
            description: row.description,
            builtin: false,
            machine_grantable: row.machine_grantable,
        });
    }
    Ok(out)
}

pub fn show(conn: &mut DbConn, name: &str) -> ServiceResult<ScopeView> {
    list(conn)?
        .into_iter()
        .find(|s| s.name == name)
        .ok_or_else(|| ServiceError::NotFound {
            what: "scope",
            id: name.to_owned(),
        })
}

/// The registry the `client_credentials` rule reads: two queries.
pub fn registry(conn: &mut DbConn) -> ServiceResult<ScopeRegistry> {
    let restricted: std::collections::HashSet<String> = repo::scopes::group_names(conn)?
        .into_iter()
        .map(|(scope, _)| scope)
        .collect();
    Ok(ScopeRegistry::new(
        repo::scopes::list(conn)?.into_iter().map(|r| {
            let flags = CustomScopeFlags {
                machine_grantable: r.machine_grantable,
                group_restricted: restricted.contains(&r.name),
            };
            (r.name, flags)
        }),
    ))
}

/// The custom scopes, by name, with their consent-page text: one query.
fn custom(conn: &mut DbConn) -> ServiceResult<std::collections::HashMap<String, String>> {
    Ok(repo::scopes::list(conn)?
        .into_iter()
        .map(|r| (r.name, r.description))
        .collect())
}

/// The consent-page text for each scope in `set`, in order.
pub fn descriptions(conn: &mut DbConn, set: &ScopeSet) -> ServiceResult<Vec<(String, String)>> {
    let custom = custom(conn)?;
    Ok(set
        .iter()
        .map(|s| {
            let d = match builtin_description(s) {
                Some(d) => d.to_owned(),
                None => custom
                    .get(s)
                    .cloned()
                    .unwrap_or_else(|| format!("Use the \"{s}\" permission")),
            };
            (s.to_owned(), d)
        })
        .collect())
}

/// Fails with `invalid scope` naming the first scope in `set` that is
/// neither built in nor defined.
pub fn check_known(conn: &mut DbConn, set: &ScopeSet) -> ServiceResult<()> {
    let custom = custom(conn)?;
    match set
        .iter()
        .find(|s| builtin_description(s).is_none() && !custom.contains_key(*s))
    {
        None => Ok(()),
        Some(s) => Err(Invalid::new(
            "scope",
            format!("unknown scope {s:?}: define it first (latchkey scope add, or Scopes in the console)"),
        )
        .into()),
    }
}

/// The part of `requested` that `user` may be granted. Two queries (the
/// registry and its group limits), plus the user's groups when a limited
/// scope is asked for.
pub fn permitted_for_user(
    conn: &mut DbConn,
    user: &UserRow,
    requested: &ScopeSet,
) -> ServiceResult<ScopeSet> {
    Ok(permitted(conn, user, requested)?)
}

/// [`permitted_for_user`] with the store's error, for the paths that answer
/// a protocol request (a personal access token's use).
pub fn permitted(
    conn: &mut DbConn,
    user: &UserRow,
    requested: &ScopeSet,
) -> Result<ScopeSet, StoreError> {
    let kept = permitted_names(conn, user, requested.iter())?;
    Ok(requested.filter(|s| kept.iter().any(|k| k == s)))
}

/// The scopes among `names` that `user` may be granted, in order: no
/// bound on how many (the offer of every scope on a form).
pub fn permitted_names<'a>(
    conn: &mut DbConn,
    user: &UserRow,
    names: impl IntoIterator<Item = &'a str>,
) -> Result<Vec<String>, StoreError> {
    let custom: std::collections::HashSet<String> = repo::scopes::list(conn)?
        .into_iter()
        .map(|r| r.name)
        .collect();
    let restrictions = repo::scopes::group_names(conn)?;
    let mut mine: Option<Vec<String>> = None;
    let mut kept = Vec::new();
    for s in names {
        let ok = if s == ADMIN_SCOPE {
            user.is_admin
        } else if builtin_description(s).is_some() {
            true
        } else if !custom.contains(s) {
            // Not defined (any more): nobody is granted it.
            false
        } else {
            let allowed: Vec<&str> = restrictions
                .iter()
                .filter(|(scope, _)| scope == s)
                .map(|(_, g)| g.as_str())
                .collect();
            if allowed.is_empty() {
                true
            } else {
                if mine.is_none() {
                    mine = Some(repo::groups::names_for_user(conn, &user.id)?);
                }
                let mine = mine.as_deref().unwrap_or_default();
                allowed.iter().any(|g| mine.iter().any(|m| m == g))
            }
        };
        if ok {
            kept.push(s.to_owned());
        }
    }
    Ok(kept)
}

/// What an admin gives to define or change a custom scope.
#[derive(Debug, Clone, Default)]
pub struct ScopeInput {
    pub description: String,
    /// Group names; empty: any user may be granted it.
    pub groups: Vec<String>,
    /// Whether a client acting for itself may hold it; `None`: off for a
    /// new scope, unchanged on update.
    pub machine_grantable: Option<bool>,
}

fn group_ids(conn: &mut DbConn, names: &[String]) -> ServiceResult<Vec<String>> {
    let mut ids = Vec::new();
    for n in names.iter().map(|n| n.trim()).filter(|n| !n.is_empty()) {
        let g = super::groups::find(conn, n)?;
        if !ids.contains(&g.id) {
            ids.push(g.id);
        }
    }
    Ok(ids)
}

fn custom_name(name: &str) -> ServiceResult<String> {
    let scope = Scope::parse(name.trim())?;
    if builtin_description(scope.as_str()).is_some() {
        return Err(ServiceError::Conflict(format!(
            "{:?} is a built-in scope",
            scope.as_str()
        )));
    }
    Ok(scope.as_str().to_owned())
}

pub fn create(
    conn: &mut DbConn,
    name: &str,
    input: &ScopeInput,
    actor: &Actor,
    now: OffsetDateTime,
) -> ServiceResult<ScopeView> {
    let name = custom_name(name)?;
    let description = text::bounded("description", &input.description, DESCRIPTION_MAX)?;
    conn.transaction(|conn| {
        // Claim first (see store): the audit row is the first statement.
        let detail = format!(
            "machine_grantable={}",
            input.machine_grantable.unwrap_or(false)
        );
        audit::record(conn, actor, "scope.create", &name, Some(detail), now)?;
        if repo::scopes::get(conn, &name)?.is_some() {
            return Err(ServiceError::Conflict(format!(
                "scope {name:?} already exists"
            )));
        }
        let ids = group_ids(conn, &input.groups)?;
        repo::scopes::insert(
            conn,
            &ScopeRow {
                name: name.clone(),
                description,
                created_at: to_db(now),
                updated_at: to_db(now),
                machine_grantable: input.machine_grantable.unwrap_or(false),
            },
        )?;
        repo::scopes::set_groups(conn, &name, &ids)?;
        show(conn, &name)
    })
}

pub fn update(
    conn: &mut DbConn,
    name: &str,
    input: &ScopeInput,
    actor: &Actor,
    now: OffsetDateTime,
) -> ServiceResult<ScopeView> {
    let name = custom_name(name)?;
    let description = text::bounded("description", &input.description, DESCRIPTION_MAX)?;
    conn.transaction(|conn| {
        // Claim first: the update is the first statement.
        let changed = match input.machine_grantable {
            Some(m) => repo::scopes::set_fields(conn, &name, &description, m, to_db(now))?,
            None => repo::scopes::set_description(conn, &name, &description, to_db(now))?,
        };
        if changed == 0 {
            return Err(ServiceError::NotFound {
                what: "scope",
                id: name.clone(),
            });
        }
        let ids = group_ids(conn, &input.groups)?;
        repo::scopes::set_groups(conn, &name, &ids)?;
        let detail = input
            .machine_grantable
            .map(|m| format!("machine_grantable={m}"));
        audit::record(conn, actor, "scope.update", &name, detail, now)?;
        show(conn, &name)
    })
}

/// Deletes a custom scope. One that a client is still allowed is a
/// `Conflict`: remove it from those clients first.
pub fn delete(
    conn: &mut DbConn,
    name: &str,
    actor: &Actor,
    now: OffsetDateTime,
) -> ServiceResult<()> {
    let name = custom_name(name)?;
    conn.transaction(|conn| {
        audit::record(conn, actor, "scope.delete", &name, None, now)?;
        let users: Vec<String> = repo::clients::list(conn)?
            .into_iter()
            .filter(|c| c.allowed_scopes.split(' ').any(|s| s == name))
            .map(|c| c.name)
            .collect();
        if !users.is_empty() {
            return Err(ServiceError::Conflict(format!(
                "scope {name:?} is allowed for {}; remove it there first",
                users.join(", ")
            )));
        }
        if repo::scopes::delete(conn, &name)? == 0 {
            return Err(ServiceError::NotFound {
                what: "scope",
                id: name.clone(),
            });
        }
        Ok(())
    })
}

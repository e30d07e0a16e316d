//! Groups: named sets of users. A custom scope may be limited to groups,
//! and the `groups` claim lists a user's groups by name.

use diesel::Connection;
use serde::Serialize;
use time::OffsetDateTime;

use super::{ServiceError, ServiceResult};
use crate::clock::{from_db, to_db};
use crate::domain::audit::Actor;
use crate::domain::group::group_name;
use crate::store::audit;
use crate::store::models::GroupRow;
use crate::store::{DbConn, repo};

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct GroupView {
    pub name: String,
    pub members: i64,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

fn not_found(name: &str) -> ServiceError {
    ServiceError::NotFound {
        what: "group",
        id: name.to_owned(),
    }
}

pub fn find(conn: &mut DbConn, name: &str) -> ServiceResult<GroupRow> {
    repo::groups::by_name(conn, name)?.ok_or_else(|| not_found(name))
}

pub fn list(conn: &mut DbConn) -> ServiceResult<Vec<GroupView>> {
    Ok(repo::groups::list_with_counts(conn)?
        .into_iter()
        .map(|(g, members)| GroupView {
            name: g.name,
            members,
            created_at: from_db(g.created_at),
        })
        .collect())
}

pub fn create(
    conn: &mut DbConn,
    name: &str,
    actor: &Actor,
    now: OffsetDateTime,
) -> ServiceResult<GroupView> {
    let name = group_name(name)?;
    conn.transaction(|conn| {
        // Claim first (see store): the audit row is the transaction's
        // first statement, and goes away with it on failure.
        audit::record(conn, actor, "group.create", &name, None, now)?;
        if repo::groups::by_name(conn, &name)?.is_some() {
            return Err(ServiceError::Conflict(format!(
                "group {name:?} already exists"
            )));
        }
        repo::groups::insert(
            conn,
            &GroupRow {
                id: uuid::Uuid::new_v4().to_string(),
                name: name.clone(),
                created_at: to_db(now),
            },
        )?;
        Ok(GroupView {
            name: name.clone(),
            members: 0,
            created_at: from_db(to_db(now)),
        })
    })
}

pub fn rename(
    conn: &mut DbConn,
    name: &str,
    new_name: &str,
    actor: &Actor,
    now: OffsetDateTime,
) -> ServiceResult<()> {
    let new_name = group_name(new_name)?;
    conn.transaction(|conn| {
        audit::record(
            conn,
            actor,
            "group.rename",
            &new_name,
            Some(format!("from={name}")),
            now,
        )?;
        let g = find(conn, name)?;
        if new_name != g.name && repo::groups::by_name(conn, &new_name)?.is_some() {
            return Err(ServiceError::Conflict(format!(
                "group {new_name:?} already exists"
            )));
        }
        repo::groups::rename(conn, &g.id, &new_name)?;
        Ok(())
    })
}

/// Deletes a group. Its members lose the scopes it granted from their
/// next token on (refresh narrows to what the user still has). A group
/// that is the only one a scope is limited to cannot be deleted: the
/// scope would become open to everyone.
pub fn delete(
    conn: &mut DbConn,
    name: &str,
    actor: &Actor,
    now: OffsetDateTime,
) -> ServiceResult<()> {
    conn.transaction(|conn| {
        audit::record(conn, actor, "group.delete", name, None, now)?;
        let g = find(conn, name)?;
        // A scope with no group is open to every user: deleting the only
        // group a scope is limited to would widen it, so refuse.
        let restrictions = repo::scopes::group_names(conn)?;
        let only_here: Vec<&str> = restrictions
            .iter()
            .filter(|(_, group)| *group == g.name)
            .map(|(scope, _)| scope.as_str())
            .filter(|scope| restrictions.iter().filter(|(s, _)| s == scope).count() == 1)
            .collect();
        if !only_here.is_empty() {
            return Err(ServiceError::Conflict(format!(
                "scope(s) {} are limited to group {name:?} alone; change or delete them first",
                only_here.join(", ")
            )));
        }
        repo::groups::delete(conn, &g.id)?;
        Ok(())
    })
}

pub fn members(conn: &mut DbConn, name: &str) -> ServiceResult<Vec<String>> {
    let g = find(conn, name)?;
    Ok(repo::groups::member_names(conn, &g.id)?)
}

/// The names of the user's groups, sorted (for the `groups` claim).
pub fn of_user(conn: &mut DbConn, user_id: &str) -> ServiceResult<Vec<String>> {
    Ok(repo::groups::names_for_user(conn, user_id)?)
}

/// Makes `names` the user's groups, all or nothing: an unknown group name
/// is `NotFound` and changes nothing.
pub fn set_user_groups(
    conn: &mut DbConn,
    username: &str,
    names: &[String],
    actor: &Actor,
    now: OffsetDateTime,
) -> ServiceResult<Vec<String>> {
    conn.transaction(|conn| {
        audit::record(
            conn,
            actor,
            "user.groups",
            username,
            Some(format!("groups={}", names.join(","))),
            now,
        )?;
        let user = super::users::find(conn, username)?;
        let mut ids = Vec::with_capacity(names.len());
        let mut sorted: Vec<String> = Vec::with_capacity(names.len());
        for n in names {
            let g = find(conn, n.trim())?;
            if !ids.contains(&g.id) {
                ids.push(g.id);
                sorted.push(g.name);
            }
        }
        sorted.sort();
        repo::groups::set_for_user(conn, &user.id, &ids)?;
        Ok(sorted)
    })
}

//! Custom scopes and the groups that may be granted them.

use diesel::prelude::*;
use time::PrimitiveDateTime;

use crate::store::DbConn;
use crate::store::models::ScopeRow;
use crate::store::schema::{groups, scope_groups, scopes};

pub fn insert(conn: &mut DbConn, row: &ScopeRow) -> QueryResult<()> {
    diesel::insert_into(scopes::table)
        .values(row)
        .execute(conn)?;
    Ok(())
}

pub fn get(conn: &mut DbConn, name: &str) -> QueryResult<Option<ScopeRow>> {
    scopes::table
        .find(name)
        .select(ScopeRow::as_select())
        .first(conn)
        .optional()
}

pub fn list(conn: &mut DbConn) -> QueryResult<Vec<ScopeRow>> {
    scopes::table
        .order(scopes::name)
        .select(ScopeRow::as_select())
        .load(conn)
}

pub fn set_fields(
    conn: &mut DbConn,
    name: &str,
    description: &str,
    machine_grantable: bool,
    now: PrimitiveDateTime,
) -> QueryResult<usize> {
    diesel::update(scopes::table.find(name))
        .set((
            scopes::description.eq(description),
            scopes::machine_grantable.eq(machine_grantable),
            scopes::updated_at.eq(now),
        ))
        .execute(conn)
}

pub fn set_description(
    conn: &mut DbConn,
    name: &str,
    description: &str,
    now: PrimitiveDateTime,
) -> QueryResult<usize> {
    diesel::update(scopes::table.find(name))
        .set((
            scopes::description.eq(description),
            scopes::updated_at.eq(now),
        ))
        .execute(conn)
}

pub fn delete(conn: &mut DbConn, name: &str) -> QueryResult<usize> {
    diesel::delete(scope_groups::table.filter(scope_groups::scope_name.eq(name))).execute(conn)?;
    diesel::delete(scopes::table.find(name)).execute(conn)
}

/// `(scope name, group name)` for every restricted scope.
pub fn group_names(conn: &mut DbConn) -> QueryResult<Vec<(String, String)>> {
    scope_groups::table
        .inner_join(groups::table)
        .order((scope_groups::scope_name, groups::name))
        .select((scope_groups::scope_name, groups::name))
        .load(conn)
}

/// Replaces the groups that may be granted `name`.
pub fn set_groups(conn: &mut DbConn, name: &str, group_ids: &[String]) -> QueryResult<()> {
    diesel::delete(scope_groups::table.filter(scope_groups::scope_name.eq(name))).execute(conn)?;
    for g in group_ids {
        diesel::insert_into(scope_groups::table)
            .values((
                scope_groups::scope_name.eq(name),
                scope_groups::group_id.eq(g),
            ))
            .execute(conn)?;
    }
    Ok(())
}

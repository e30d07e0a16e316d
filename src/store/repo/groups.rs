//! Groups and their members.

use diesel::prelude::*;

use crate::store::DbConn;
use crate::store::models::GroupRow;
use crate::store::schema::{groups, user_groups};

pub fn insert(conn: &mut DbConn, row: &GroupRow) -> QueryResult<()> {
    diesel::insert_into(groups::table)
        .values(row)
        .execute(conn)?;
    Ok(())
}

pub fn by_name(conn: &mut DbConn, name: &str) -> QueryResult<Option<GroupRow>> {
    groups::table
        .filter(groups::name.eq(name))
        .select(GroupRow::as_select())
        .first(conn)
        .optional()
}

/// Every group, by name, with its member count.
pub fn list_with_counts(conn: &mut DbConn) -> QueryResult<Vec<(GroupRow, i64)>> {
    let all: Vec<GroupRow> = groups::table
        .order(groups::name)
        .select(GroupRow::as_select())
        .load(conn)?;
    let counts: Vec<(String, i64)> = user_groups::table
        .group_by(user_groups::group_id)
        .select((user_groups::group_id, diesel::dsl::count_star()))
        .load(conn)?;
    Ok(all
        .into_iter()
        .map(|g| {
            let n = counts
                .iter()
                .find(|(id, _)| *id == g.id)
                .map_or(0, |(_, n)| *n);
            (g, n)
        })
        .collect())
}

pub fn rename(conn: &mut DbConn, id: &str, name: &str) -> QueryResult<usize> {
    diesel::update(groups::table.find(id))
        .set(groups::name.eq(name))
        .execute(conn)
}

/// Deletes a group; memberships and scope permissions go with it.
pub fn delete(conn: &mut DbConn, id: &str) -> QueryResult<usize> {
    diesel::delete(user_groups::table.filter(user_groups::group_id.eq(id))).execute(conn)?;
    diesel::delete(
        crate::store::schema::scope_groups::table
            .filter(crate::store::schema::scope_groups::group_id.eq(id)),
    )
    .execute(conn)?;
    diesel::delete(groups::table.find(id)).execute(conn)
}

/// The names of the user's groups, sorted.
pub fn names_for_user(conn: &mut DbConn, user_id: &str) -> QueryResult<Vec<String>> {
    user_groups::table
        .inner_join(groups::table)
        .filter(user_groups::user_id.eq(user_id))
        .order(groups::name)
        .select(groups::name)
        .load(conn)
}

/// The usernames in a group, sorted.
pub fn member_names(conn: &mut DbConn, group_id: &str) -> QueryResult<Vec<String>> {
    use crate::store::schema::users;
    user_groups::table
        .inner_join(users::table)
        .filter(user_groups::group_id.eq(group_id))
        .order(users::username)
        .select(users::username)
        .load(conn)
}

/// Replaces the user's memberships with `group_ids`.
pub fn set_for_user(conn: &mut DbConn, user_id: &str, group_ids: &[String]) -> QueryResult<()> {
    diesel::delete(user_groups::table.filter(user_groups::user_id.eq(user_id))).execute(conn)?;
    for g in group_ids {
        diesel::insert_into(user_groups::table)
            .values((
                user_groups::user_id.eq(user_id),
                user_groups::group_id.eq(g),
            ))
            .execute(conn)?;
    }
    Ok(())
}

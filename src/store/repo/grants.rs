//! Grants (one per authorization: the refresh-token family), their
//! authorization codes and refresh tokens.

use diesel::prelude::*;
use time::PrimitiveDateTime;

use crate::store::DbConn;
use crate::store::models::{CodeRow, GrantRow, RefreshRow};
use crate::store::schema::{authorization_codes, grants, refresh_tokens};

pub fn insert_grant(conn: &mut DbConn, row: &GrantRow) -> QueryResult<()> {
    diesel::insert_into(grants::table)
        .values(row)
        .execute(conn)?;
    Ok(())
}

pub fn grant(conn: &mut DbConn, id: &str) -> QueryResult<Option<GrantRow>> {
    grants::table
        .find(id)
        .select(GrantRow::as_select())
        .first(conn)
        .optional()
}

/// Revokes a grant and deletes its refresh tokens and codes.
pub fn revoke_grant(conn: &mut DbConn, id: &str, now: PrimitiveDateTime) -> QueryResult<usize> {
    diesel::delete(refresh_tokens::table.filter(refresh_tokens::grant_id.eq(id))).execute(conn)?;
    diesel::update(grants::table.find(id).filter(grants::revoked_at.is_null()))
        .set(grants::revoked_at.eq(now))
        .execute(conn)
}

pub fn insert_code(conn: &mut DbConn, row: &CodeRow) -> QueryResult<()> {
    diesel::insert_into(authorization_codes::table)
        .values(row)
        .execute(conn)?;
    Ok(())
}

pub fn code(conn: &mut DbConn, code_hash: &str) -> QueryResult<Option<(CodeRow, GrantRow)>> {
    authorization_codes::table
        .inner_join(grants::table)
        .filter(authorization_codes::code_hash.eq(code_hash))
        .select((CodeRow::as_select(), GrantRow::as_select()))
        .first(conn)
        .optional()
}

/// Marks a code used, only if unused: returns 0 when it already was, so
/// two concurrent redemptions cannot both succeed.
pub fn use_code(conn: &mut DbConn, code_hash: &str, now: PrimitiveDateTime) -> QueryResult<usize> {
    diesel::update(
        authorization_codes::table
            .find(code_hash)
            .filter(authorization_codes::used_at.is_null()),
    )
    .set(authorization_codes::used_at.eq(now))
    .execute(conn)
}

pub fn delete_expired_codes(conn: &mut DbConn, before: PrimitiveDateTime) -> QueryResult<usize> {
    diesel::delete(authorization_codes::table.filter(authorization_codes::expires_at.lt(before)))
        .execute(conn)
}

pub fn insert_refresh(conn: &mut DbConn, row: &RefreshRow) -> QueryResult<()> {
    diesel::insert_into(refresh_tokens::table)
        .values(row)
        .execute(conn)?;
    Ok(())
}

pub fn refresh(conn: &mut DbConn, token_hash: &str) -> QueryResult<Option<(RefreshRow, GrantRow)>> {
    refresh_tokens::table
        .inner_join(grants::table)
        .filter(refresh_tokens::token_hash.eq(token_hash))
        .select((RefreshRow::as_select(), GrantRow::as_select()))
        .first(conn)
        .optional()
}

/// Locks the family of the refresh token with this hash, as a
/// transaction's first statement: a write, so SQLite takes its write lock
/// now (and waits for it under `busy_timeout`) instead of failing to
/// upgrade a read lock later; on PostgreSQL it locks the grant row, so
/// every change to one family (rotation, replay, revocation) runs one at a
/// time and takes its locks in one order: grant, then tokens. Returns 0
/// for an unknown token.
pub fn lock_family(conn: &mut DbConn, token_hash: &str) -> QueryResult<usize> {
    let family = refresh_tokens::table
        .filter(refresh_tokens::token_hash.eq(token_hash))
        .select(refresh_tokens::grant_id);
    diesel::update(grants::table.filter(grants::id.eq_any(family)))
        .set(grants::id.eq(grants::id))
        .execute(conn)
}

/// The live (not yet rotated) refresh token of a grant with this hash.
pub fn live_refresh_exists(conn: &mut DbConn, token_hash: &str) -> QueryResult<bool> {
    diesel::select(diesel::dsl::exists(
        refresh_tokens::table
            .filter(refresh_tokens::token_hash.eq(token_hash))
            .filter(refresh_tokens::rotated_at.is_null()),
    ))
    .get_result(conn)
}

/// Marks a refresh token rotated, only if it was not: 0 means reuse.
pub fn rotate_refresh(
    conn: &mut DbConn,
    token_hash: &str,
    now: PrimitiveDateTime,
) -> QueryResult<usize> {
    diesel::update(
        refresh_tokens::table
            .find(token_hash)
            .filter(refresh_tokens::rotated_at.is_null()),
    )
    .set(refresh_tokens::rotated_at.eq(now))
    .execute(conn)
}

pub fn delete_expired_refresh(conn: &mut DbConn, before: PrimitiveDateTime) -> QueryResult<usize> {
    diesel::delete(refresh_tokens::table.filter(refresh_tokens::expires_at.lt(before)))
        .execute(conn)
}

/// Deletes grants that ended: revoked before `revoked_before`, or started
/// before `started_before` (past any family's absolute lifetime). Their
/// codes and refresh tokens go with them (ON DELETE CASCADE).
pub fn purge_ended(
    conn: &mut DbConn,
    revoked_before: PrimitiveDateTime,
    started_before: PrimitiveDateTime,
) -> QueryResult<usize> {
    diesel::delete(
        grants::table.filter(
            grants::revoked_at
                .lt(revoked_before)
                .or(grants::created_at.lt(started_before)),
        ),
    )
    .execute(conn)
}

/// Revokes every live grant of `user_id` (to `client_id` only, if given)
/// and so their refresh tokens and codes; returns how many.
pub fn revoke_for_user(
    conn: &mut DbConn,
    user_id: &str,
    client_id: Option<&str>,
    now: PrimitiveDateTime,
) -> QueryResult<usize> {
    let mut q = grants::table
        .filter(grants::user_id.eq(user_id))
        .filter(grants::revoked_at.is_null())
        .select(grants::id)
        .into_boxed();
    if let Some(c) = client_id {
        q = q.filter(grants::client_id.eq(c));
    }
    let ids: Vec<String> = q.load(conn)?;
    let mut n = 0;
    for id in &ids {
        n += revoke_grant(conn, id, now)?;
    }
    Ok(n)
}

/// The distinct `(sid, client_id)` pairs of grants made in the sessions
/// with these `sid`s (revoked or not: the client took part either way).
pub fn participants(conn: &mut DbConn, sids: &[String]) -> QueryResult<Vec<(String, String)>> {
    let rows: Vec<(Option<String>, String)> = grants::table
        .filter(grants::sid.eq_any(sids))
        .select((grants::sid, grants::client_id))
        .distinct()
        .load(conn)?;
    Ok(rows
        .into_iter()
        .filter_map(|(sid, client)| Some((sid?, client)))
        .collect())
}

/// The live grants made in the sessions with these `sid`s.
pub fn live_in_sessions(conn: &mut DbConn, sids: &[String]) -> QueryResult<Vec<GrantRow>> {
    grants::table
        .filter(grants::sid.eq_any(sids))
        .filter(grants::revoked_at.is_null())
        .select(GrantRow::as_select())
        .load(conn)
}

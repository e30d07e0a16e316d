//! Personal access tokens: rows keyed by id, found by the hash of the
//! token. Revoking is a conditional UPDATE (`revoked_at` still empty, the
//! token the owner's), so its row count says whether it happened. The
//! per-use write (`last_used_at`) is conditional too and rare: only when
//! the stored time is older than the caller's threshold.

use diesel::prelude::*;
use time::PrimitiveDateTime;

use crate::store::DbConn;
use crate::store::models::{PersonalAccessTokenRow, UserRow};
use crate::store::schema::{personal_access_tokens as pat, users};

pub fn insert(conn: &mut DbConn, row: &PersonalAccessTokenRow) -> QueryResult<()> {
    diesel::insert_into(pat::table).values(row).execute(conn)?;
    Ok(())
}

/// The token with this hash and its user, in one query (revoked and
/// expired ones included: the caller judges).
pub fn by_hash_with_user(
    conn: &mut DbConn,
    token_hash: &str,
) -> QueryResult<Option<(PersonalAccessTokenRow, UserRow)>> {
    pat::table
        .inner_join(users::table)
        .filter(pat::token_hash.eq(token_hash))
        .select((PersonalAccessTokenRow::as_select(), UserRow::as_select()))
        .first(conn)
        .optional()
}

/// The user's tokens that are not revoked (expired ones included), newest
/// first.
pub fn list_for_user(conn: &mut DbConn, user_id: &str) -> QueryResult<Vec<PersonalAccessTokenRow>> {
    pat::table
        .filter(pat::user_id.eq(user_id))
        .filter(pat::revoked_at.is_null())
        .order((pat::created_at.desc(), pat::id.desc()))
        .select(PersonalAccessTokenRow::as_select())
        .load(conn)
}

/// The user's tokens neither revoked nor expired at `now`.
pub fn count_live(conn: &mut DbConn, user_id: &str, now: PrimitiveDateTime) -> QueryResult<i64> {
    pat::table
        .filter(pat::user_id.eq(user_id))
        .filter(pat::revoked_at.is_null())
        .filter(pat::expires_at.gt(now))
        .count()
        .get_result(conn)
}

/// The user's token `id`, if it is theirs and not revoked.
pub fn get_for_user(
    conn: &mut DbConn,
    user_id: &str,
    id: &str,
) -> QueryResult<Option<PersonalAccessTokenRow>> {
    pat::table
        .filter(pat::id.eq(id))
        .filter(pat::user_id.eq(user_id))
        .filter(pat::revoked_at.is_null())
        .select(PersonalAccessTokenRow::as_select())
        .first(conn)
        .optional()
}

/// Revokes the user's token `id`: 1 if it was theirs and not yet revoked.
pub fn revoke(
    conn: &mut DbConn,
    user_id: &str,
    id: &str,
    now: PrimitiveDateTime,
) -> QueryResult<usize> {
    diesel::update(
        pat::table
            .filter(pat::id.eq(id))
            .filter(pat::user_id.eq(user_id))
            .filter(pat::revoked_at.is_null()),
    )
    .set(pat::revoked_at.eq(Some(now)))
    .execute(conn)
}

/// Revokes every token of the user not yet revoked: how many.
pub fn revoke_all(conn: &mut DbConn, user_id: &str, now: PrimitiveDateTime) -> QueryResult<usize> {
    diesel::update(
        pat::table
            .filter(pat::user_id.eq(user_id))
            .filter(pat::revoked_at.is_null()),
    )
    .set(pat::revoked_at.eq(Some(now)))
    .execute(conn)
}

/// Records a use at `now`, only if the last recorded use is missing or
/// at or before `due_from`: of concurrent uses, one writes.
pub fn touch(
    conn: &mut DbConn,
    id: &str,
    now: PrimitiveDateTime,
    due_from: PrimitiveDateTime,
) -> QueryResult<usize> {
    diesel::update(
        pat::table.filter(pat::id.eq(id)).filter(
            pat::last_used_at
                .is_null()
                .or(pat::last_used_at.le(due_from)),
        ),
    )
    .set(pat::last_used_at.eq(Some(now)))
    .execute(conn)
}

/// Deletes tokens revoked or expired before `before`.
pub fn purge(conn: &mut DbConn, before: PrimitiveDateTime) -> QueryResult<usize> {
    diesel::delete(
        pat::table.filter(
            pat::expires_at.lt(before).or(pat::revoked_at
                .is_not_null()
                .and(pat::revoked_at.lt(before))),
        ),
    )
    .execute(conn)
}

use diesel::prelude::*;
use time::PrimitiveDateTime;

use crate::store::DbConn;
use crate::store::models::SigningKeyRow;
use crate::store::schema::signing_keys::dsl;

pub fn insert(conn: &mut DbConn, row: &SigningKeyRow) -> QueryResult<()> {
    diesel::insert_into(dsl::signing_keys)
        .values(row)
        .execute(conn)?;
    Ok(())
}

pub fn all(conn: &mut DbConn) -> QueryResult<Vec<SigningKeyRow>> {
    dsl::signing_keys
        .order((dsl::alg.asc(), dsl::created_at.asc(), dsl::kid.asc()))
        .select(SigningKeyRow::as_select())
        .load(conn)
}

pub fn by_kid(conn: &mut DbConn, kid: &str) -> QueryResult<Option<SigningKeyRow>> {
    dsl::signing_keys
        .find(kid)
        .select(SigningKeyRow::as_select())
        .first(conn)
        .optional()
}

pub fn count(conn: &mut DbConn) -> QueryResult<i64> {
    dsl::signing_keys.count().get_result(conn)
}

/// `next` -> `active`, only if still `next` (idempotent across instances).
pub fn activate(conn: &mut DbConn, kid: &str, now: PrimitiveDateTime) -> QueryResult<usize> {
    diesel::update(dsl::signing_keys.find(kid).filter(dsl::state.eq("next")))
        .set((dsl::state.eq("active"), dsl::activated_at.eq(now)))
        .execute(conn)
}

/// `next`/`active` -> `retired`, only if not already retired.
pub fn retire(conn: &mut DbConn, kid: &str, now: PrimitiveDateTime) -> QueryResult<usize> {
    diesel::update(dsl::signing_keys.find(kid).filter(dsl::state.ne("retired")))
        .set((dsl::state.eq("retired"), dsl::retired_at.eq(now)))
        .execute(conn)
}

pub fn delete(conn: &mut DbConn, kid: &str) -> QueryResult<usize> {
    diesel::delete(dsl::signing_keys.find(kid)).execute(conn)
}

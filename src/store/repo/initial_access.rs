//! Initial access tokens for dynamic client registration (RFC 7591 3).

use diesel::prelude::*;
use time::PrimitiveDateTime;

use crate::store::DbConn;
use crate::store::models::InitialAccessTokenRow;
use crate::store::schema::initial_access_tokens as iat;

pub fn insert(conn: &mut DbConn, row: &InitialAccessTokenRow) -> QueryResult<()> {
    diesel::insert_into(iat::table).values(row).execute(conn)?;
    Ok(())
}

/// Counts one use of the token if it is unexpired and has uses left; the
/// check and the increment are one statement, so two registrations
/// cannot both take the last use.
pub fn consume(conn: &mut DbConn, token_hash: &str, now: PrimitiveDateTime) -> QueryResult<bool> {
    let n = diesel::update(
        iat::table
            .find(token_hash)
            .filter(iat::expires_at.gt(now))
            .filter(iat::uses.lt(iat::max_uses)),
    )
    .set(iat::uses.eq(iat::uses + 1))
    .execute(conn)?;
    Ok(n == 1)
}

pub fn list(conn: &mut DbConn) -> QueryResult<Vec<InitialAccessTokenRow>> {
    iat::table
        .order(iat::created_at.desc())
        .select(InitialAccessTokenRow::as_select())
        .load(conn)
}

pub fn delete_expired(conn: &mut DbConn, now: PrimitiveDateTime) -> QueryResult<usize> {
    diesel::delete(iat::table.filter(iat::expires_at.le(now))).execute(conn)
}

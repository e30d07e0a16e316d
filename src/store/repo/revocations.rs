//! Access tokens revoked before their expiry, by `jti`.

use diesel::prelude::*;
use time::PrimitiveDateTime;

use crate::store::DbConn;
use crate::store::schema::revoked_tokens::dsl;

pub fn revoke(conn: &mut DbConn, jti: &str, expires_at: PrimitiveDateTime) -> QueryResult<()> {
    match diesel::insert_into(dsl::revoked_tokens)
        .values((dsl::jti.eq(jti), dsl::expires_at.eq(expires_at)))
        .execute(conn)
    {
        Ok(_) => Ok(()),
        Err(diesel::result::Error::DatabaseError(
            diesel::result::DatabaseErrorKind::UniqueViolation,
            _,
        )) => Ok(()),
        Err(e) => Err(e),
    }
}

pub fn is_revoked(conn: &mut DbConn, jti: &str) -> QueryResult<bool> {
    diesel::select(diesel::dsl::exists(dsl::revoked_tokens.find(jti))).get_result(conn)
}

pub fn purge(conn: &mut DbConn, now: PrimitiveDateTime) -> QueryResult<usize> {
    diesel::delete(dsl::revoked_tokens.filter(dsl::expires_at.lt(now))).execute(conn)
}

use diesel::prelude::*;
use time::PrimitiveDateTime;

use crate::store::DbConn;
use crate::store::models::UserRow;
use crate::store::schema::users::dsl;

pub fn insert(conn: &mut DbConn, row: &UserRow) -> QueryResult<()> {
    diesel::insert_into(dsl::users).values(row).execute(conn)?;
    Ok(())
}

pub fn by_username(conn: &mut DbConn, username: &str) -> QueryResult<Option<UserRow>> {
    dsl::users
        .filter(dsl::username.eq(username))
        .select(UserRow::as_select())
        .first(conn)
        .optional()
}

pub fn by_id(conn: &mut DbConn, id: &str) -> QueryResult<Option<UserRow>> {
    dsl::users
        .find(id)
        .select(UserRow::as_select())
        .first(conn)
        .optional()
}

pub fn list(conn: &mut DbConn, limit: i64, offset: i64) -> QueryResult<Vec<UserRow>> {
    dsl::users
        .order(dsl::username.asc())
        .limit(limit)
        .offset(offset)
        .select(UserRow::as_select())
        .load(conn)
}

pub fn count(conn: &mut DbConn) -> QueryResult<i64> {
    dsl::users.count().get_result(conn)
}

pub fn set_password_hash(
    conn: &mut DbConn,
    id: &str,
    hash: &str,
    now: PrimitiveDateTime,
) -> QueryResult<usize> {
    diesel::update(dsl::users.find(id))
        .set((dsl::password_hash.eq(hash), dsl::updated_at.eq(now)))
        .execute(conn)
}

pub fn set_disabled(
    conn: &mut DbConn,
    id: &str,
    disabled: bool,
    now: PrimitiveDateTime,
) -> QueryResult<usize> {
    diesel::update(dsl::users.find(id))
        .set((dsl::disabled.eq(disabled), dsl::updated_at.eq(now)))
        .execute(conn)
}

pub fn delete(conn: &mut DbConn, id: &str) -> QueryResult<usize> {
    diesel::delete(dsl::users.find(id)).execute(conn)
}

/// Sets the OIDC profile claims a user may edit themselves.
pub fn set_profile(
    conn: &mut DbConn,
    id: &str,
    profile: &crate::domain::user::Profile,
    now: PrimitiveDateTime,
) -> QueryResult<usize> {
    diesel::update(dsl::users.find(id))
        .set((
            dsl::name.eq(&profile.name),
            dsl::given_name.eq(&profile.given_name),
            dsl::family_name.eq(&profile.family_name),
            dsl::picture.eq(&profile.picture),
            dsl::locale.eq(&profile.locale),
            dsl::updated_at.eq(now),
        ))
        .execute(conn)
}

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

/// Users whose username, email or name contains `q` (case-insensitive on
/// both backends: usernames are stored lowercase, the rest is compared
/// lowercased), by username, with the total count.
pub fn search(
    conn: &mut DbConn,
    q: &str,
    limit: i64,
    offset: i64,
) -> QueryResult<(Vec<UserRow>, i64)> {
    use diesel::dsl::sql;
    use diesel::sql_types::{Bool, Text};
    let pattern = format!(
        "%{}%",
        q.to_lowercase()
            .replace('\\', "\\\\")
            .replace('%', "\\%")
            .replace('_', "\\_")
    );
    // LOWER() on both backends; the pattern is a bound parameter.
    let filter = || {
        sql::<Bool>("(LOWER(username) LIKE ")
            .bind::<Text, _>(pattern.clone())
            .sql(" ESCAPE '\\' OR LOWER(COALESCE(email, '')) LIKE ")
            .bind::<Text, _>(pattern.clone())
            .sql(" ESCAPE '\\' OR LOWER(COALESCE(name, '')) LIKE ")
            .bind::<Text, _>(pattern.clone())
            .sql(" ESCAPE '\\')")
    };
    let total = dsl::users.filter(filter()).count().get_result(conn)?;
    let rows = dsl::users
        .filter(filter())
        .order(dsl::username.asc())
        .limit(limit)
        .offset(offset)
        .select(UserRow::as_select())
        .load(conn)?;
    Ok((rows, total))
}

/// Email, verification and admin flag, as an admin sets them.
pub fn set_account(
    conn: &mut DbConn,
    id: &str,
    email: Option<&str>,
    email_verified: bool,
    is_admin: bool,
    now: PrimitiveDateTime,
) -> QueryResult<usize> {
    diesel::update(dsl::users.find(id))
        .set((
            dsl::email.eq(email),
            dsl::email_verified.eq(email_verified),
            dsl::is_admin.eq(is_admin),
            dsl::updated_at.eq(now),
        ))
        .execute(conn)
}

/// Enabled admins.
pub fn count_active_admins(conn: &mut DbConn) -> QueryResult<i64> {
    dsl::users
        .filter(dsl::is_admin.eq(true))
        .filter(dsl::disabled.eq(false))
        .count()
        .get_result(conn)
}

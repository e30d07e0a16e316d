use diesel::prelude::*;
use time::PrimitiveDateTime;

use crate::store::DbConn;
use crate::store::models::{SessionRow, UserRow};
use crate::store::schema::{sessions, users};

pub fn insert(conn: &mut DbConn, row: &SessionRow) -> QueryResult<()> {
    diesel::insert_into(sessions::table)
        .values(row)
        .execute(conn)?;
    Ok(())
}

/// The session and its user, in one query.
pub fn with_user(conn: &mut DbConn, id_hash: &str) -> QueryResult<Option<(SessionRow, UserRow)>> {
    sessions::table
        .inner_join(users::table)
        .filter(sessions::id_hash.eq(id_hash))
        .select((SessionRow::as_select(), UserRow::as_select()))
        .first(conn)
        .optional()
}

pub fn touch(conn: &mut DbConn, id_hash: &str, now: PrimitiveDateTime) -> QueryResult<usize> {
    diesel::update(sessions::table.find(id_hash))
        .set(sessions::last_seen_at.eq(now))
        .execute(conn)
}

/// Deletes one session without signing it out: for expiry only. A
/// sign-out goes through `service::logout::end_sessions`.
pub fn delete(conn: &mut DbConn, id_hash: &str) -> QueryResult<usize> {
    diesel::delete(sessions::table.find(id_hash)).execute(conn)
}

/// Removes sessions past their absolute expiry or idle since `idle_before`.
pub fn delete_expired(
    conn: &mut DbConn,
    now: PrimitiveDateTime,
    idle_before: PrimitiveDateTime,
) -> QueryResult<usize> {
    diesel::delete(
        sessions::table.filter(
            sessions::expires_at
                .le(now)
                .or(sessions::last_seen_at.le(idle_before)),
        ),
    )
    .execute(conn)
}

pub fn count_for_user(conn: &mut DbConn, user_id: &str) -> QueryResult<i64> {
    sessions::table
        .filter(sessions::user_id.eq(user_id))
        .count()
        .get_result(conn)
}

/// The user's sessions, newest first.
pub fn for_user(conn: &mut DbConn, user_id: &str) -> QueryResult<Vec<SessionRow>> {
    sessions::table
        .filter(sessions::user_id.eq(user_id))
        .order(sessions::created_at.desc())
        .select(SessionRow::as_select())
        .load(conn)
}

/// Which sessions a sign-out ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Matching<'a> {
    /// One session, by the SHA-256 of its cookie value.
    Hash(&'a str),
    /// The user's session with this public `sid`.
    Sid { user_id: &'a str, sid: &'a str },
    /// Every session of the user except the one with `keep_hash`.
    AllBut {
        user_id: &'a str,
        keep_hash: &'a str,
    },
    /// Every session of the user.
    All { user_id: &'a str },
}

type Backend = <DbConn as diesel::Connection>::Backend;
type SessionFilter<'a> = Box<
    dyn BoxableExpression<
            sessions::table,
            Backend,
            SqlType = diesel::sql_types::Nullable<diesel::sql_types::Bool>,
        > + 'a,
>;

fn matching(m: Matching<'_>) -> SessionFilter<'_> {
    match m {
        Matching::Hash(h) => Box::new(sessions::id_hash.eq(h).nullable()),
        Matching::Sid { user_id, sid } => Box::new(
            sessions::user_id
                .eq(user_id)
                .nullable()
                .and(sessions::sid.eq(sid)),
        ),
        Matching::AllBut { user_id, keep_hash } => Box::new(
            sessions::user_id
                .eq(user_id)
                .and(sessions::id_hash.ne(keep_hash))
                .nullable(),
        ),
        Matching::All { user_id } => Box::new(sessions::user_id.eq(user_id).nullable()),
    }
}

/// Locks the matching sessions as a transaction's first statement (a
/// write: SQLite takes its write lock now; PostgreSQL locks the rows, so a
/// concurrent sign-out of the same session waits, then finds it gone).
/// Returns how many match.
pub fn lock_matching(conn: &mut DbConn, m: Matching<'_>) -> QueryResult<usize> {
    diesel::update(sessions::table.filter(matching(m)))
        .set(sessions::last_seen_at.eq(sessions::last_seen_at))
        .execute(conn)
}

pub fn select_matching(conn: &mut DbConn, m: Matching<'_>) -> QueryResult<Vec<SessionRow>> {
    sessions::table
        .filter(matching(m))
        .select(SessionRow::as_select())
        .load(conn)
}

pub fn delete_many(conn: &mut DbConn, id_hashes: &[String]) -> QueryResult<usize> {
    diesel::delete(sessions::table.filter(sessions::id_hash.eq_any(id_hashes))).execute(conn)
}

/// Records a step-up: how the session has now signed in.
pub fn set_amr(conn: &mut DbConn, id_hash: &str, amr: &str) -> QueryResult<usize> {
    diesel::update(sessions::table.find(id_hash))
        .set(sessions::amr.eq(amr))
        .execute(conn)
}

/// A step-up: the session gets a new id (the SHA-256 of its new cookie
/// value; its public `sid` stays), a new `auth_time` and how it has now
/// signed in. Returns how many rows changed (0: the session is gone).
pub fn step_up(
    conn: &mut DbConn,
    id_hash: &str,
    new: (&str, &str),
    auth_time: PrimitiveDateTime,
    amr: &str,
) -> QueryResult<usize> {
    let (new_hash, sid) = new;
    diesel::update(sessions::table.find(id_hash))
        .set((
            sessions::id_hash.eq(new_hash),
            sessions::sid.eq(sid),
            sessions::auth_time.eq(auth_time),
            sessions::amr.eq(amr),
        ))
        .execute(conn)
}

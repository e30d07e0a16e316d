//! Failed-login counters per key (`user:NAME`, `ip:ADDR`) in fixed windows.
//! Kept in the database so every instance sees the same counts.

use diesel::prelude::*;
use time::PrimitiveDateTime;

use crate::store::DbConn;
use crate::store::schema::login_throttle::dsl;

/// Failures counted for `key` in a window that started after `window_start_cutoff`.
pub fn failures(
    conn: &mut DbConn,
    key: &str,
    window_start_cutoff: PrimitiveDateTime,
) -> QueryResult<i32> {
    Ok(dsl::login_throttle
        .find(key)
        .filter(dsl::window_started_at.gt(window_start_cutoff))
        .select(dsl::failures)
        .first(conn)
        .optional()?
        .unwrap_or(0))
}

/// Counts one failure: an expired window restarts at 1. Atomic increments,
/// so concurrent failures on any backend are all counted.
pub fn record_failure(
    conn: &mut DbConn,
    key: &str,
    now: PrimitiveDateTime,
    window_start_cutoff: PrimitiveDateTime,
) -> QueryResult<()> {
    diesel::delete(
        dsl::login_throttle
            .find(key)
            .filter(dsl::window_started_at.le(window_start_cutoff)),
    )
    .execute(conn)?;
    let bump = |conn: &mut DbConn| {
        diesel::update(dsl::login_throttle.find(key))
            .set(dsl::failures.eq(dsl::failures + 1))
            .execute(conn)
    };
    if bump(conn)? > 0 {
        return Ok(());
    }
    // In a savepoint: inside a caller's transaction, a unique violation
    // would otherwise abort the whole transaction on PostgreSQL.
    let inserted = conn.transaction(|conn| {
        diesel::insert_into(dsl::login_throttle)
            .values((
                dsl::key.eq(key),
                dsl::failures.eq(1),
                dsl::window_started_at.eq(now),
            ))
            .execute(conn)
    });
    match inserted {
        Ok(_) => Ok(()),
        // Another request inserted the row between our update and insert.
        Err(diesel::result::Error::DatabaseError(
            diesel::result::DatabaseErrorKind::UniqueViolation,
            _,
        )) => bump(conn).map(|_| ()),
        Err(e) => Err(e),
    }
}

/// Counts one attempt for `key` and returns the count including it and when
/// its window started. Run inside a transaction (see `service::login`): the
/// first statement is a write, so concurrent attempts on any backend see
/// distinct counts and a burst cannot slip past a limit.
pub fn claim(
    conn: &mut DbConn,
    key: &str,
    now: PrimitiveDateTime,
    window_start_cutoff: PrimitiveDateTime,
) -> QueryResult<(i32, PrimitiveDateTime)> {
    record_failure(conn, key, now, window_start_cutoff)?;
    dsl::login_throttle
        .find(key)
        .select((dsl::failures, dsl::window_started_at))
        .first(conn)
}

/// Counts one request for `key` against a limit of `max` per `window`
/// (the count is the first statement, a write: see [`claim`]); past the
/// limit, the whole seconds (at least 1) until the window ends.
pub fn over_limit(
    conn: &mut DbConn,
    key: &str,
    max: u32,
    window: time::Duration,
    now: time::OffsetDateTime,
) -> QueryResult<Option<u64>> {
    use crate::clock::{from_db, to_db};
    let (count, started) = claim(conn, key, to_db(now), to_db(now - window))?;
    if i64::from(count) <= i64::from(max) {
        return Ok(None);
    }
    let wait = (from_db(started) + window - now).whole_seconds();
    Ok(Some(u64::try_from(wait.max(1)).unwrap_or(1)))
}

/// Takes back one attempt (a sign-in that succeeded, or one refused
/// before any password work).
pub fn release(conn: &mut DbConn, key: &str) -> QueryResult<usize> {
    diesel::update(dsl::login_throttle.find(key).filter(dsl::failures.gt(0)))
        .set(dsl::failures.eq(dsl::failures - 1))
        .execute(conn)
}

pub fn clear(conn: &mut DbConn, key: &str) -> QueryResult<usize> {
    diesel::delete(dsl::login_throttle.find(key)).execute(conn)
}

/// Drops rows whose window has passed.
pub fn purge(conn: &mut DbConn, window_start_cutoff: PrimitiveDateTime) -> QueryResult<usize> {
    diesel::delete(dsl::login_throttle.filter(dsl::window_started_at.le(window_start_cutoff)))
        .execute(conn)
}

//! Device authorization requests (RFC 8628): created at the device
//! authorization endpoint, answered on the `/device` pages, polled and
//! redeemed at the token endpoint.
//!
//! Every state change is one conditional UPDATE whose row count says
//! whether it happened, so two polls, or a poll and an answer, never both
//! win: approve and deny only an unanswered, unexpired request; redeem
//! only an approved, unredeemed one; record a poll only if no other poll
//! came in since the one read.

use diesel::prelude::*;
use time::PrimitiveDateTime;

use crate::store::DbConn;
use crate::store::models::{DeviceCodeRow, GrantRow, UserRow};
use crate::store::schema::{device_codes, grants, users};

/// Seconds a `slow_down` adds to a device code's polling interval
/// (RFC 8628 3.5).
pub const SLOW_DOWN_STEP_SECS: i32 = 5;

/// Stores a new request. A user code already held by a row (live or not
/// yet purged) fails with a unique violation: the caller draws another.
pub fn insert(conn: &mut DbConn, row: &DeviceCodeRow) -> QueryResult<()> {
    diesel::insert_into(device_codes::table)
        .values(row)
        .execute(conn)?;
    Ok(())
}

/// What a poll needs, in one query: the request, and once approved its
/// grant and the grant's user.
pub type PollView = (DeviceCodeRow, Option<GrantRow>, Option<UserRow>);

pub fn poll_view(conn: &mut DbConn, device_code_hash: &str) -> QueryResult<Option<PollView>> {
    device_codes::table
        .left_join(grants::table)
        .left_join(users::table.on(users::id.eq(grants::user_id)))
        .filter(device_codes::device_code_hash.eq(device_code_hash))
        .select((
            DeviceCodeRow::as_select(),
            Option::<GrantRow>::as_select(),
            Option::<UserRow>::as_select(),
        ))
        .first(conn)
        .optional()
}

/// Records a poll of a pending request, only if no other poll was
/// recorded since `seen` (the `last_polled_at` the caller read): 0 means
/// another poll came in at the same time.
pub fn record_poll(
    conn: &mut DbConn,
    device_code_hash: &str,
    seen: Option<PrimitiveDateTime>,
    now: PrimitiveDateTime,
) -> QueryResult<usize> {
    let target = device_codes::table.find(device_code_hash);
    let set = device_codes::last_polled_at.eq(Some(now));
    match seen {
        Some(at) => diesel::update(target.filter(device_codes::last_polled_at.eq(at)))
            .set(set)
            .execute(conn),
        None => diesel::update(target.filter(device_codes::last_polled_at.is_null()))
            .set(set)
            .execute(conn),
    }
}

/// A poll that came too early: the interval grows by
/// [`SLOW_DOWN_STEP_SECS`] and counts from now.
pub fn slow_down(
    conn: &mut DbConn,
    device_code_hash: &str,
    now: PrimitiveDateTime,
) -> QueryResult<usize> {
    diesel::update(device_codes::table.find(device_code_hash))
        .set((
            device_codes::interval_secs.eq(device_codes::interval_secs + SLOW_DOWN_STEP_SECS),
            device_codes::last_polled_at.eq(Some(now)),
        ))
        .execute(conn)
}

/// Marks an approved request redeemed, only if it was not: 1 for the one
/// poll that gets the tokens, 0 for every other.
pub fn redeem(
    conn: &mut DbConn,
    device_code_hash: &str,
    now: PrimitiveDateTime,
) -> QueryResult<usize> {
    diesel::update(
        device_codes::table
            .find(device_code_hash)
            .filter(device_codes::grant_id.is_not_null())
            .filter(device_codes::redeemed_at.is_null()),
    )
    .set(device_codes::redeemed_at.eq(Some(now)))
    .execute(conn)
}

/// The unanswered, unexpired request with this user code.
pub fn pending_by_user_code(
    conn: &mut DbConn,
    user_code_hash: &str,
    now: PrimitiveDateTime,
) -> QueryResult<Option<DeviceCodeRow>> {
    device_codes::table
        .filter(device_codes::user_code_hash.eq(user_code_hash))
        .filter(device_codes::expires_at.gt(now))
        .filter(device_codes::grant_id.is_null())
        .filter(device_codes::denied_at.is_null())
        .select(DeviceCodeRow::as_select())
        .first(conn)
        .optional()
}

/// The request with this hash, if still unanswered and unexpired.
macro_rules! unanswered {
    ($hash:expr, $now:expr) => {
        device_codes::table
            .find($hash)
            .filter(device_codes::expires_at.gt($now))
            .filter(device_codes::grant_id.is_null())
            .filter(device_codes::denied_at.is_null())
    };
}

/// The person allowed the request: it now names `grant_id`. 0 when it was
/// answered meanwhile or expired.
pub fn approve(
    conn: &mut DbConn,
    device_code_hash: &str,
    grant_id: &str,
    now: PrimitiveDateTime,
) -> QueryResult<usize> {
    diesel::update(unanswered!(device_code_hash, now))
        .set(device_codes::grant_id.eq(Some(grant_id)))
        .execute(conn)
}

/// The person denied the request. 0 when it was answered meanwhile or
/// expired.
pub fn deny(
    conn: &mut DbConn,
    device_code_hash: &str,
    now: PrimitiveDateTime,
) -> QueryResult<usize> {
    diesel::update(unanswered!(device_code_hash, now))
        .set(device_codes::denied_at.eq(Some(now)))
        .execute(conn)
}

/// Deletes requests that expired before `before`, whatever their state
/// (a redeemed request's grant lives on without it).
pub fn purge_expired(conn: &mut DbConn, before: PrimitiveDateTime) -> QueryResult<usize> {
    diesel::delete(device_codes::table.filter(device_codes::expires_at.lt(before))).execute(conn)
}

//! The logout outbox (one row per ended session and participating client)
//! and the outcome of every delivery attempt.

use diesel::prelude::*;
use time::PrimitiveDateTime;

use crate::store::DbConn;
use crate::store::models::{LogoutDeliveryAttemptRow, LogoutOutboxRow};
use crate::store::schema::{logout_delivery_attempts as attempts, logout_outbox as outbox};

pub fn insert(conn: &mut DbConn, row: &LogoutOutboxRow) -> QueryResult<()> {
    diesel::insert_into(outbox::table)
        .values(row)
        .execute(conn)?;
    Ok(())
}

type Backend = <DbConn as diesel::Connection>::Backend;
type Claimable = Box<
    dyn BoxableExpression<
            outbox::table,
            Backend,
            SqlType = diesel::sql_types::Nullable<diesel::sql_types::Bool>,
        >,
>;

/// A row a worker may claim at `now`: neither delivered nor given up, due,
/// and held by no worker (or its claim ran out).
fn claimable(now: PrimitiveDateTime) -> Claimable {
    Box::new(
        outbox::delivered_at
            .is_null()
            .and(outbox::gave_up_at.is_null())
            .and(outbox::next_attempt_at.le(now))
            .nullable()
            .and(
                outbox::claimed_until
                    .is_null()
                    .nullable()
                    .or(outbox::claimed_until.lt(now)),
            ),
    )
}

/// Rows waiting for delivery: neither delivered nor given up (due or
/// not, claimed or not). `/metrics` reads it as the outbox backlog.
pub fn backlog(conn: &mut DbConn) -> QueryResult<i64> {
    outbox::table
        .filter(outbox::delivered_at.is_null())
        .filter(outbox::gave_up_at.is_null())
        .count()
        .get_result(conn)
}

/// Ids of rows due at `now` that no worker holds, oldest due first.
pub fn due(conn: &mut DbConn, now: PrimitiveDateTime, limit: i64) -> QueryResult<Vec<String>> {
    outbox::table
        .filter(claimable(now))
        .order((outbox::next_attempt_at.asc(), outbox::id.asc()))
        .select(outbox::id)
        .limit(limit)
        .load(conn)
}

/// Claims a due row for a worker until `until`: a conditional UPDATE, so
/// of two instances claiming the same row one gets 1 and the other 0.
pub fn claim(
    conn: &mut DbConn,
    id: &str,
    now: PrimitiveDateTime,
    until: PrimitiveDateTime,
) -> QueryResult<usize> {
    diesel::update(outbox::table.find(id).filter(claimable(now)))
        .set(outbox::claimed_until.eq(until))
        .execute(conn)
}

pub fn get(conn: &mut DbConn, id: &str) -> QueryResult<Option<LogoutOutboxRow>> {
    outbox::table
        .find(id)
        .select(LogoutOutboxRow::as_select())
        .first(conn)
        .optional()
}

/// What an attempt changes on its row.
#[derive(Debug, Clone, AsChangeset)]
#[diesel(table_name = outbox)]
#[diesel(treat_none_as_null = true)]
pub struct Outcome {
    pub attempts: i32,
    pub claimed_until: Option<PrimitiveDateTime>,
    pub next_attempt_at: PrimitiveDateTime,
    pub delivered_at: Option<PrimitiveDateTime>,
    pub gave_up_at: Option<PrimitiveDateTime>,
    pub last_error: Option<String>,
}

/// Writes an attempt's outcome and releases the claim, only while the
/// claim is still the worker's own (`lease`): 0 means another worker took
/// the row over after the lease ran out, and its outcome wins.
pub fn finish(
    conn: &mut DbConn,
    id: &str,
    lease: PrimitiveDateTime,
    outcome: &Outcome,
) -> QueryResult<usize> {
    diesel::update(
        outbox::table
            .find(id)
            .filter(outbox::claimed_until.eq(lease)),
    )
    .set(outcome)
    .execute(conn)
}

pub fn insert_attempt(conn: &mut DbConn, row: &LogoutDeliveryAttemptRow) -> QueryResult<()> {
    diesel::insert_into(attempts::table)
        .values(row)
        .execute(conn)?;
    Ok(())
}

/// A row's attempts, in order.
pub fn attempts_of(conn: &mut DbConn, id: &str) -> QueryResult<Vec<LogoutDeliveryAttemptRow>> {
    attempts::table
        .filter(attempts::outbox_id.eq(id))
        .order(attempts::attempt.asc())
        .select(LogoutDeliveryAttemptRow::as_select())
        .load(conn)
}

/// Deletes rows delivered or given up before `before` (their attempts go
/// with them: ON DELETE CASCADE).
pub fn purge(conn: &mut DbConn, before: PrimitiveDateTime) -> QueryResult<usize> {
    diesel::delete(
        outbox::table.filter(
            outbox::delivered_at
                .lt(before)
                .or(outbox::gave_up_at.lt(before)),
        ),
    )
    .execute(conn)
}

/// Rows still to deliver for a client.
pub fn pending_for_client(conn: &mut DbConn, client_id: &str) -> QueryResult<i64> {
    outbox::table
        .filter(outbox::client_id.eq(client_id))
        .filter(outbox::delivered_at.is_null())
        .filter(outbox::gave_up_at.is_null())
        .count()
        .get_result(conn)
}

/// Rows given up for a client (until housekeeping purges them).
pub fn given_up_for_client(conn: &mut DbConn, client_id: &str) -> QueryResult<i64> {
    outbox::table
        .filter(outbox::client_id.eq(client_id))
        .filter(outbox::gave_up_at.is_not_null())
        .count()
        .get_result(conn)
}

/// When a logout token last reached the client.
pub fn last_delivered(
    conn: &mut DbConn,
    client_id: &str,
) -> QueryResult<Option<PrimitiveDateTime>> {
    outbox::table
        .filter(outbox::client_id.eq(client_id))
        .select(diesel::dsl::max(outbox::delivered_at))
        .first(conn)
}

/// The client's latest failed attempt.
pub fn last_failure(
    conn: &mut DbConn,
    client_id: &str,
) -> QueryResult<Option<LogoutDeliveryAttemptRow>> {
    attempts::table
        .inner_join(outbox::table)
        .filter(outbox::client_id.eq(client_id))
        .filter(attempts::delivered.eq(false))
        .order((attempts::at.desc(), attempts::attempt.desc()))
        .select(LogoutDeliveryAttemptRow::as_select())
        .first(conn)
        .optional()
}

/// The client's latest rows, newest first.
pub fn recent_for_client(
    conn: &mut DbConn,
    client_id: &str,
    limit: i64,
) -> QueryResult<Vec<LogoutOutboxRow>> {
    outbox::table
        .filter(outbox::client_id.eq(client_id))
        .order((outbox::created_at.desc(), outbox::id.desc()))
        .select(LogoutOutboxRow::as_select())
        .limit(limit)
        .load(conn)
}

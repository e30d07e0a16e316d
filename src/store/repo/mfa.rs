//! Second factors: the TOTP authenticator, recovery codes, and sign-ins
//! waiting for their second factor.

use diesel::prelude::*;
use time::PrimitiveDateTime;

use crate::store::DbConn;
use crate::store::models::{ChallengeRow, RecoveryCodeRow, TotpRow};
use crate::store::schema::{mfa_challenges, mfa_enrol_deadlines, mfa_recovery_codes, mfa_totp};

pub fn totp(conn: &mut DbConn, user_id: &str) -> QueryResult<Option<TotpRow>> {
    mfa_totp::table.find(user_id).first(conn).optional()
}

/// Replaces the user's TOTP row (a new, unconfirmed enrolment).
pub fn put_totp(conn: &mut DbConn, row: &TotpRow) -> QueryResult<()> {
    diesel::delete(mfa_totp::table.find(&row.user_id)).execute(conn)?;
    diesel::insert_into(mfa_totp::table)
        .values(row)
        .execute(conn)?;
    Ok(())
}

/// Marks a pending enrolment confirmed, with the step its first code used.
pub fn confirm_totp(
    conn: &mut DbConn,
    user_id: &str,
    step: i32,
    now: PrimitiveDateTime,
) -> QueryResult<usize> {
    diesel::update(
        mfa_totp::table
            .find(user_id)
            .filter(mfa_totp::confirmed_at.is_null()),
    )
    .set((
        mfa_totp::confirmed_at.eq(now),
        mfa_totp::last_step.eq(step),
        mfa_totp::last_used_at.eq(now),
    ))
    .execute(conn)
}

/// Records a code's use, only if its step is later than the last one
/// used: of two requests with the same code, one changes the row (1), the
/// other nothing (0).
pub fn use_totp_step(
    conn: &mut DbConn,
    user_id: &str,
    step: i32,
    now: PrimitiveDateTime,
) -> QueryResult<usize> {
    diesel::update(
        mfa_totp::table
            .find(user_id)
            .filter(mfa_totp::confirmed_at.is_not_null())
            .filter(
                mfa_totp::last_step
                    .is_null()
                    .or(mfa_totp::last_step.lt(step)),
            ),
    )
    .set((mfa_totp::last_step.eq(step), mfa_totp::last_used_at.eq(now)))
    .execute(conn)
}

pub fn delete_totp(conn: &mut DbConn, user_id: &str) -> QueryResult<usize> {
    diesel::delete(mfa_totp::table.find(user_id)).execute(conn)
}

/// Whether the user holds a confirmed TOTP authenticator.
pub fn has_confirmed_totp(conn: &mut DbConn, user_id: &str) -> QueryResult<bool> {
    diesel::select(diesel::dsl::exists(
        mfa_totp::table
            .find(user_id)
            .filter(mfa_totp::confirmed_at.is_not_null()),
    ))
    .get_result(conn)
}

pub fn recovery_codes(conn: &mut DbConn, user_id: &str) -> QueryResult<Vec<RecoveryCodeRow>> {
    mfa_recovery_codes::table
        .filter(mfa_recovery_codes::user_id.eq(user_id))
        .order(mfa_recovery_codes::used_at.desc())
        .load(conn)
}

/// Replaces the user's recovery codes.
pub fn replace_recovery_codes(
    conn: &mut DbConn,
    user_id: &str,
    rows: &[RecoveryCodeRow],
) -> QueryResult<()> {
    delete_recovery_codes(conn, user_id)?;
    // One by one: the multi-backend connection has no batch insert.
    for row in rows {
        diesel::insert_into(mfa_recovery_codes::table)
            .values(row)
            .execute(conn)?;
    }
    Ok(())
}

pub fn delete_recovery_codes(conn: &mut DbConn, user_id: &str) -> QueryResult<usize> {
    diesel::delete(mfa_recovery_codes::table.filter(mfa_recovery_codes::user_id.eq(user_id)))
        .execute(conn)
}

/// Uses a recovery code of this user once: 1 if it was unused, else 0.
pub fn use_recovery_code(
    conn: &mut DbConn,
    user_id: &str,
    code_hash: &str,
    now: PrimitiveDateTime,
) -> QueryResult<usize> {
    diesel::update(
        mfa_recovery_codes::table
            .find(code_hash)
            .filter(mfa_recovery_codes::user_id.eq(user_id))
            .filter(mfa_recovery_codes::used_at.is_null()),
    )
    .set(mfa_recovery_codes::used_at.eq(now))
    .execute(conn)
}

pub fn insert_challenge(conn: &mut DbConn, row: &ChallengeRow) -> QueryResult<()> {
    diesel::insert_into(mfa_challenges::table)
        .values(row)
        .execute(conn)?;
    Ok(())
}

/// Counts one attempt on a live challenge (the first statement is the
/// write) and returns it as it is now; `None` if there is none, it
/// expired or it had no attempts left (`max`).
pub fn claim_challenge(
    conn: &mut DbConn,
    id_hash: &str,
    max: i32,
    now: PrimitiveDateTime,
) -> QueryResult<Option<ChallengeRow>> {
    let claimed = diesel::update(
        mfa_challenges::table
            .find(id_hash)
            .filter(mfa_challenges::expires_at.gt(now))
            .filter(mfa_challenges::attempts.lt(max)),
    )
    .set(mfa_challenges::attempts.eq(mfa_challenges::attempts + 1))
    .execute(conn)?;
    if claimed == 0 {
        return Ok(None);
    }
    mfa_challenges::table.find(id_hash).first(conn).optional()
}

pub fn delete_challenge(conn: &mut DbConn, id_hash: &str) -> QueryResult<usize> {
    diesel::delete(mfa_challenges::table.find(id_hash)).execute(conn)
}

pub fn delete_challenges_of(conn: &mut DbConn, user_id: &str) -> QueryResult<usize> {
    diesel::delete(mfa_challenges::table.filter(mfa_challenges::user_id.eq(user_id))).execute(conn)
}

/// Drops challenges past their expiry.
pub fn purge_challenges(conn: &mut DbConn, now: PrimitiveDateTime) -> QueryResult<usize> {
    diesel::delete(mfa_challenges::table.filter(mfa_challenges::expires_at.le(now))).execute(conn)
}

/// The user's enrolment deadline under a policy, set at the first ask
/// (`now + grace`) and kept after; returns it.
pub fn enrol_deadline(
    conn: &mut DbConn,
    user_id: &str,
    if_new: PrimitiveDateTime,
) -> QueryResult<PrimitiveDateTime> {
    // Insert first (a write, then the read): concurrent sign-ins agree.
    let inserted = conn.transaction(|conn| {
        diesel::insert_into(mfa_enrol_deadlines::table)
            .values((
                mfa_enrol_deadlines::user_id.eq(user_id),
                mfa_enrol_deadlines::deadline.eq(if_new),
            ))
            .execute(conn)
    });
    match inserted {
        Ok(_)
        | Err(diesel::result::Error::DatabaseError(
            diesel::result::DatabaseErrorKind::UniqueViolation,
            _,
        )) => {}
        Err(e) => return Err(e),
    }
    mfa_enrol_deadlines::table
        .find(user_id)
        .select(mfa_enrol_deadlines::deadline)
        .first(conn)
}

/// The deadline if one was set.
pub fn deadline_of(conn: &mut DbConn, user_id: &str) -> QueryResult<Option<PrimitiveDateTime>> {
    mfa_enrol_deadlines::table
        .find(user_id)
        .select(mfa_enrol_deadlines::deadline)
        .first(conn)
        .optional()
}

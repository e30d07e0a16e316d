//! The second step of a sign-in: after a right password, a user with a
//! second factor gets a pending challenge (a cookie value whose SHA-256 is
//! stored, valid a few minutes, a bounded number of attempts) instead of a
//! session; the right TOTP code or an unused recovery code completes it
//! and starts the session, recorded as `pwd otp mfa`. A signed-in session
//! with a password only steps up the same way (`/authorize` asked for a
//! second factor).
//!
//! Codes are guessed like passwords: every attempt counts on the sign-in
//! throttle of the account ([`FactorAttempt`]), a right one clears it as a
//! right password does. A TOTP code is accepted once (the step used is
//! stored with a conditional UPDATE), a recovery code once.

use std::net::IpAddr;

use diesel::Connection;
use time::{Duration, OffsetDateTime};
use zeroize::Zeroizing;

use super::MfaKey;
use crate::clock::to_db;
use crate::domain::audit::Actor;
use crate::domain::mfa::{self as rules, Amr};
use crate::domain::secret::{OpaqueSecret, hash_secret};
use crate::service::login::{FactorAttempt, ThrottlePolicy};
use crate::service::sessions::{self, ActiveSession, SessionMeta, SessionPolicy};
use crate::service::{ServiceError, ServiceResult};
use crate::store::models::{ChallengeRow, UserRow};
use crate::store::{Db, DbConn, audit, repo};

/// How long a right password waits for its second factor.
pub const CHALLENGE_TTL: Duration = Duration::minutes(5);
/// Codes one pending sign-in may try (the throttle counts them too).
pub const CHALLENGE_ATTEMPTS: i32 = 5;

/// Starts a pending sign-in for `user_id`; returns its cookie value.
pub fn start_challenge(
    conn: &mut DbConn,
    user_id: &str,
    now: OffsetDateTime,
) -> ServiceResult<OpaqueSecret> {
    let secret = OpaqueSecret::generate()?;
    repo::mfa::insert_challenge(
        conn,
        &ChallengeRow {
            id_hash: secret.hash(),
            user_id: user_id.to_owned(),
            created_at: to_db(now),
            expires_at: to_db(now + CHALLENGE_TTL),
            attempts: 0,
        },
    )?;
    Ok(secret)
}

/// Who is answering.
pub enum Subject {
    /// A pending sign-in: its cookie value.
    Challenge(String),
    /// A signed-in session stepping up.
    Session(Box<ActiveSession>),
}

/// A code as typed, and where the person is.
pub struct Answer {
    pub code: Zeroizing<String>,
    pub ip: Option<IpAddr>,
    pub meta: SessionMeta,
}

/// What answering needs besides the answer.
#[derive(Clone)]
pub struct FactorContext {
    pub key: MfaKey,
    pub throttle: ThrottlePolicy,
    pub session_policy: SessionPolicy,
    pub now: OffsetDateTime,
}

#[derive(Debug)]
pub enum Answered {
    /// The pending sign-in is complete: the new session's cookie value.
    SessionStarted(OpaqueSecret),
    /// The session now counts as signed in with a second factor, from now
    /// (`auth_time`), under a new cookie value (the old one no longer
    /// works).
    SteppedUp(OpaqueSecret),
}

#[derive(Debug, thiserror::Error)]
pub enum FactorError {
    #[error("that code is not right, or was already used")]
    WrongCode,
    #[error("too many failed attempts; try again later")]
    Throttled { retry_after_secs: u64 },
    /// No pending sign-in (expired, out of attempts, or none): sign in again.
    #[error("the sign-in expired; sign in again")]
    Expired,
    #[error(transparent)]
    Service(#[from] ServiceError),
}

impl From<diesel::result::Error> for FactorError {
    fn from(e: diesel::result::Error) -> Self {
        FactorError::Service(e.into())
    }
}

impl From<crate::store::StoreError> for FactorError {
    fn from(e: crate::store::StoreError) -> Self {
        FactorError::Service(e.into())
    }
}

/// Checks a second-factor code and completes the sign-in or the step-up.
/// One transaction, whose first write claims the attempt (on the challenge
/// and on the throttle), so parallel guesses are all counted; a wrong code
/// commits the counts.
pub async fn answer(
    db: &Db,
    ctx: FactorContext,
    subject: Subject,
    answer: Answer,
) -> Result<Answered, FactorError> {
    if let Subject::Challenge(v) = &subject
        && v.len() != 43
    {
        return Err(FactorError::Expired);
    }
    // A refused code commits its counted attempt; a storage failure
    // rolls everything back.
    db.run(move |conn| {
        conn.transaction(|conn| match answer_in(conn, &ctx, subject, answer) {
            Err(FactorError::Service(e)) => Err(FactorError::Service(e)),
            done => Ok(done),
        })
    })
    .await?
}

fn answer_in(
    conn: &mut DbConn,
    ctx: &FactorContext,
    subject: Subject,
    answer: Answer,
) -> Result<Answered, FactorError> {
    let now = ctx.now;
    let (user, challenge) = match &subject {
        Subject::Challenge(value) => {
            let hash = hash_secret(value);
            let claimed = repo::mfa::claim_challenge(conn, &hash, CHALLENGE_ATTEMPTS, to_db(now))?;
            let user = match claimed {
                Some(row) => repo::users::by_id(conn, &row.user_id)?,
                None => None,
            };
            match user {
                Some(u) if !u.disabled => (u, Some(hash)),
                _ => return Err(FactorError::Expired),
            }
        }
        Subject::Session(s) => (s.user.clone(), None),
    };
    let attempt = FactorAttempt::claim(conn, &user.username, answer.ip, now, &ctx.throttle)?
        .map_err(|retry_after_secs| FactorError::Throttled { retry_after_secs })?;
    let actor = Actor {
        name: format!("user:{}", user.username),
        ip: answer.ip.map(|ip| ip.to_string()),
    };
    if !code_accepted(conn, &ctx.key, &user, &answer.code, &actor, now)? {
        return Err(FactorError::WrongCode);
    }
    attempt.succeeded(conn)?;
    let amr = Amr::password_and_otp();
    match (subject, challenge) {
        (Subject::Challenge(_), Some(hash)) => {
            repo::mfa::delete_challenge(conn, &hash)?;
            let secret =
                sessions::create_with(conn, &user.id, answer.meta, now, ctx.session_policy, &amr)?;
            Ok(Answered::SessionStarted(secret))
        }
        (Subject::Session(s), _) => {
            let secret = OpaqueSecret::generate().map_err(|e| FactorError::Service(e.into()))?;
            let new = (secret.hash(), s.sid.clone());
            let changed = repo::sessions::step_up(
                conn,
                &s.id_hash,
                (&new.0, &new.1),
                to_db(now),
                &amr.to_string(),
            )?;
            if changed == 0 {
                return Err(FactorError::Expired);
            }
            Ok(Answered::SteppedUp(secret))
        }
        (Subject::Challenge(_), None) => Err(FactorError::Expired),
    }
}

/// Whether `code` is the user's current TOTP code (not used before) or one
/// of their unused recovery codes; either is then used up. A recovery
/// code's use is audited.
fn code_accepted(
    conn: &mut DbConn,
    key: &MfaKey,
    user: &UserRow,
    code: &str,
    actor: &Actor,
    now: OffsetDateTime,
) -> ServiceResult<bool> {
    if rules::totp_shape(code).is_some() {
        let Some(row) = repo::mfa::totp(conn, &user.id)? else {
            return Ok(false);
        };
        if row.confirmed_at.is_none() {
            return Ok(false);
        }
        let seed = key.open(&row.secret_enc, &user.id)?;
        let last = row.last_step.map(i64::from);
        let Some(step) = rules::verify_totp(&seed, code, now.unix_timestamp(), last) else {
            return Ok(false);
        };
        let step = i32::try_from(step).map_err(|e| ServiceError::Internal(e.to_string()))?;
        // Conditional: of two requests with the same code, one wins.
        return Ok(repo::mfa::use_totp_step(conn, &user.id, step, to_db(now))? == 1);
    }
    let Some(hash) = key.recovery_hash(code) else {
        return Ok(false);
    };
    if repo::mfa::use_recovery_code(conn, &user.id, &hash, to_db(now))? == 0 {
        return Ok(false);
    }
    audit::record(
        conn,
        actor,
        "mfa.recovery_code_used",
        &user.username,
        None,
        now,
    )?;
    Ok(true)
}

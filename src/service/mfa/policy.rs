//! `[mfa]` policies: a second factor required of everyone or of members of
//! chosen groups. A covered user without one is sent to set it up at each
//! sign-in (the grace period starts at the first); past the deadline no
//! app gets a code for them until they have. A covered user with one is
//! asked for it by `/authorize` whenever the session has not used it.

use time::{Duration, OffsetDateTime};

use super::has_factor;
use crate::clock::{from_db, to_db};
use crate::config::MfaConfig;
use crate::domain::mfa::{self as rules, Enrolment};
use crate::service::ServiceResult;
use crate::store::{DbConn, repo};

/// Whether any policy is set (else nothing here needs the database).
pub fn any(cfg: &MfaConfig) -> bool {
    cfg.required || !cfg.required_groups.is_empty()
}

/// Whether a policy covers the user.
pub fn covers(conn: &mut DbConn, cfg: &MfaConfig, user_id: &str) -> ServiceResult<bool> {
    if !any(cfg) {
        return Ok(false);
    }
    let mine = if cfg.required {
        Vec::new()
    } else {
        repo::groups::names_for_user(conn, user_id)?
    };
    Ok(rules::policy_covers(
        cfg.required,
        &cfg.required_groups,
        &mine,
    ))
}

/// The user's deadline (set now, `now + grace`, the first time).
fn deadline(
    conn: &mut DbConn,
    cfg: &MfaConfig,
    user_id: &str,
    now: OffsetDateTime,
) -> ServiceResult<Enrolment> {
    let grace = Duration::days(i64::from(cfg.enrol_grace_days));
    let d = repo::mfa::enrol_deadline(conn, user_id, to_db(now + grace))?;
    Ok(rules::enrolment_due(from_db(d), now))
}

/// At a password sign-in of a user without a second factor: `None` when
/// no policy covers them, else when they must have set one up.
pub fn at_sign_in(
    conn: &mut DbConn,
    cfg: &MfaConfig,
    user_id: &str,
    now: OffsetDateTime,
) -> ServiceResult<Option<Enrolment>> {
    if !covers(conn, cfg, user_id)? {
        return Ok(None);
    }
    deadline(conn, cfg, user_id, now).map(Some)
}

/// What `/authorize` must see first, for a session that has not used a
/// second factor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    Nothing,
    /// Ask for the user's second factor (step-up).
    SecondFactor,
    /// One is needed and the user has none.
    NoFactor,
    /// A policy covers the user, who has none, past the deadline: set one
    /// up first.
    Enrol,
}

/// `asked`: the request itself needs a second factor (`acr_values`, a
/// client that requires it).
pub fn at_authorize(
    conn: &mut DbConn,
    cfg: &MfaConfig,
    user_id: &str,
    asked: bool,
    now: OffsetDateTime,
) -> ServiceResult<Need> {
    let has = has_factor(conn, user_id)?;
    let covered = covers(conn, cfg, user_id)?;
    if covered && !has && deadline(conn, cfg, user_id, now)? == Enrolment::Overdue {
        return Ok(Need::Enrol);
    }
    Ok(match (asked || (covered && has), has) {
        (false, _) => Need::Nothing,
        (true, true) => Need::SecondFactor,
        (true, false) => Need::NoFactor,
    })
}

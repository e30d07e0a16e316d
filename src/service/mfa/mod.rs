//! Second factors of a user: enrolling a TOTP authenticator (sealed seed,
//! confirmed by a first code), recovery codes (shown once, stored hashed),
//! what My account and admins see (never a secret), removing and
//! resetting them. Answering the second-factor step of a sign-in (or a
//! step-up) is [`verify`].
//!
//! Seeds are sealed with [`MfaKey`], a key derived from the KEK for this
//! purpose only, bound to the user id.

use std::sync::Arc;

use diesel::Connection;
use time::OffsetDateTime;
use zeroize::Zeroizing;

use super::login::{self, Reauth};
use super::logout::{self, LogoutPolicy, Which};
use super::sessions::ActiveSession;
use super::{ServiceError, ServiceResult};
use crate::clock::{from_db, to_db};
use crate::domain::Invalid;
use crate::domain::audit::Actor;
use crate::domain::mfa::{self as rules, Amr, RecoveryCode};
use crate::domain::secret::ct_eq;
use crate::keys::Kek;
use crate::store::audit;
use crate::store::models::{RecoveryCodeRow, TotpRow, UserRow};
use crate::store::{Db, DbConn, repo};

pub mod policy;
pub mod verify;

pub use verify::{Answer, Answered, FactorContext, FactorError, Subject, answer, start_challenge};

/// What TOTP seeds are sealed with, and what recovery codes are hashed
/// with (HMAC-SHA-256): keys derived from the KEK (so every instance has
/// them), used for nothing else.
#[derive(Clone)]
pub struct MfaKey(Arc<Kek>, Arc<Zeroizing<[u8; 32]>>);

impl MfaKey {
    pub fn from_kek(kek: &Kek) -> Self {
        let key = kek.derive("latchkey mfa totp seeds v1");
        MfaKey(
            Arc::new(Kek::from_bytes(*key, "kek-derived mfa key")),
            Arc::new(kek.derive("latchkey mfa recovery codes v1")),
        )
    }

    /// What the database keeps of a recovery code (`None`: not one).
    fn recovery_hash(&self, presented: &str) -> Option<String> {
        rules::recovery_hash(&self.1, presented)
    }

    fn seal(&self, seed: &[u8], user_id: &str) -> ServiceResult<String> {
        self.0
            .seal(seed, &aad(user_id))
            .map_err(|e| ServiceError::Internal(e.to_string()))
    }

    fn open(&self, sealed: &str, user_id: &str) -> ServiceResult<Zeroizing<Vec<u8>>> {
        self.0
            .open(sealed, &aad(user_id))
            .map_err(|e| ServiceError::Internal(e.to_string()))
    }
}

impl std::fmt::Debug for MfaKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MfaKey(<redacted>)")
    }
}

fn aad(user_id: &str) -> String {
    format!("mfa-totp:{user_id}")
}

/// Whether the user holds a second factor (asked for after the password).
pub fn has_factor(conn: &mut DbConn, user_id: &str) -> ServiceResult<bool> {
    Ok(repo::mfa::has_confirmed_totp(conn, user_id)?)
}

/// A user's factors as shown to them and to admins: no secret.
#[derive(Debug, Clone, Default, serde::Serialize, PartialEq)]
pub struct Factors {
    pub totp: Option<TotpInfo>,
    /// Recovery codes in the current set, and how many are left.
    pub recovery_codes: usize,
    pub recovery_codes_left: usize,
    /// When codes of the current set were used, latest first.
    #[serde(with = "rfc3339_list")]
    pub recovery_codes_used: Vec<OffsetDateTime>,
}

#[derive(Debug, Clone, serde::Serialize, PartialEq)]
pub struct TotpInfo {
    pub confirmed: bool,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_used_at: Option<OffsetDateTime>,
}

mod rfc3339_list {
    use serde::Serializer;
    use time::OffsetDateTime;
    use time::format_description::well_known::Rfc3339;

    pub fn serialize<S: Serializer>(v: &[OffsetDateTime], s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(v.iter().map(|t| t.format(&Rfc3339).unwrap_or_default()))
    }
}

impl Factors {
    /// Holds a second factor (a confirmed authenticator).
    pub fn enrolled(&self) -> bool {
        self.totp.as_ref().is_some_and(|t| t.confirmed)
    }
}

pub fn factors(conn: &mut DbConn, user_id: &str) -> ServiceResult<Factors> {
    let totp = repo::mfa::totp(conn, user_id)?.map(|t| TotpInfo {
        confirmed: t.confirmed_at.is_some(),
        created_at: from_db(t.created_at),
        last_used_at: t.last_used_at.map(from_db),
    });
    let codes = repo::mfa::recovery_codes(conn, user_id)?;
    let used: Vec<OffsetDateTime> = codes
        .iter()
        .filter_map(|c| c.used_at.map(from_db))
        .collect();
    Ok(Factors {
        totp,
        recovery_codes: codes.len(),
        recovery_codes_left: codes.len() - used.len(),
        recovery_codes_used: used,
    })
}

/// An enrolment in progress: what the person copies into their app.
pub struct Enrolment {
    /// The seed in base32 (shown as text, and inside the QR code's URI).
    pub secret_b32: Zeroizing<String>,
    /// The `otpauth://` URI for the QR code.
    pub uri: Zeroizing<String>,
}

impl std::fmt::Debug for Enrolment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Enrolment(<redacted>)")
    }
}

fn enrolment(seed: &[u8], issuer_label: &str, user: &UserRow) -> Enrolment {
    let secret_b32 = Zeroizing::new(rules::base32(seed));
    let uri = Zeroizing::new(rules::otpauth_uri(
        issuer_label,
        &user.username,
        &secret_b32,
    ));
    Enrolment { secret_b32, uri }
}

/// The enrolment to show: the pending one this session started, or a new
/// one (which replaces a pending one another session started: a seed is
/// shown only to the session that made it). A user who already holds a
/// confirmed authenticator gets `None`: they remove it first.
pub fn begin_totp(
    conn: &mut DbConn,
    key: &MfaKey,
    issuer_label: &str,
    session: &ActiveSession,
    now: OffsetDateTime,
) -> ServiceResult<Option<Enrolment>> {
    let user = &session.user;
    conn.transaction(|conn| {
        match repo::mfa::totp(conn, &user.id)? {
            Some(t) if t.confirmed_at.is_some() => return Ok(None),
            Some(t) if started_here(&t, session) => {
                let seed = key.open(&t.secret_enc, &user.id)?;
                return Ok(Some(enrolment(&seed, issuer_label, user)));
            }
            _ => {}
        }
        let seed = rules::new_seed()?;
        repo::mfa::put_totp(
            conn,
            &TotpRow {
                user_id: user.id.clone(),
                secret_enc: key.seal(&seed, &user.id)?,
                created_at: to_db(now),
                confirmed_at: None,
                last_step: None,
                last_used_at: None,
                started_by: Some(session.id_hash.clone()),
            },
        )?;
        Ok(Some(enrolment(&seed, issuer_label, user)))
    })
}

/// Whether `session` started this pending enrolment.
fn started_here(row: &TotpRow, session: &ActiveSession) -> bool {
    row.started_by
        .as_deref()
        .is_some_and(|h| ct_eq(h.as_bytes(), session.id_hash.as_bytes()))
}

/// Confirms the pending enrolment this session started with a first code
/// from the app (which then counts as used). The user's other sessions
/// end (as a sign-out: whoever signed in with the password alone before
/// is out), and this one counts as signed in with both factors. The first
/// time, the recovery codes are made and returned, to be shown this once.
/// Audited.
pub fn confirm_totp(
    conn: &mut DbConn,
    key: &MfaKey,
    session: &ActiveSession,
    code: &str,
    actor: &Actor,
    (policy, now): (LogoutPolicy, OffsetDateTime),
) -> ServiceResult<Vec<RecoveryCode>> {
    const FIELD: &str = "code";
    let user = &session.user;
    if rules::totp_shape(code).is_none() {
        return Err(Invalid::new(FIELD, "must be the 6 digits your app shows").into());
    }
    audit::audited(
        conn,
        actor,
        Some(("mfa.totp_enrolled", &user.username)),
        now,
        |conn| {
            let row = match repo::mfa::totp(conn, &user.id)? {
                Some(row) if row.confirmed_at.is_some() => {
                    return Err(ServiceError::Conflict(
                        "an authenticator app is already set up".into(),
                    ));
                }
                Some(row) if started_here(&row, session) => row,
                _ => {
                    return Err(Invalid::new(FIELD, "no enrolment is waiting: start again").into());
                }
            };
            let seed = key.open(&row.secret_enc, &user.id)?;
            let Some(step) = rules::verify_totp(&seed, code, now.unix_timestamp(), None) else {
                return Err(Invalid::new(
                    FIELD,
                    "is not the current code: check the app and your device's clock",
                )
                .into());
            };
            let step = i32::try_from(step).map_err(|e| ServiceError::Internal(e.to_string()))?;
            repo::mfa::confirm_totp(conn, &user.id, step, to_db(now))?;
            let others = Which::AllBut {
                user_id: &user.id,
                keep_hash: &session.id_hash,
            };
            logout::end_sessions(conn, others, policy, now)?;
            repo::sessions::set_amr(conn, &session.id_hash, &Amr::password_and_otp().to_string())?;
            if repo::mfa::recovery_codes(conn, &user.id)?.is_empty() {
                return new_recovery_codes(conn, key, &user.id, now);
            }
            Ok(Vec::new())
        },
    )
}

fn new_recovery_codes(
    conn: &mut DbConn,
    key: &MfaKey,
    user_id: &str,
    now: OffsetDateTime,
) -> ServiceResult<Vec<RecoveryCode>> {
    let codes = rules::new_recovery_codes()?;
    let rows: Vec<RecoveryCodeRow> = codes
        .iter()
        .map(|c| RecoveryCodeRow {
            code_hash: c.hash(&key.1),
            user_id: user_id.to_owned(),
            created_at: to_db(now),
            used_at: None,
        })
        .collect();
    repo::mfa::replace_recovery_codes(conn, user_id, &rows)?;
    Ok(codes)
}

fn themselves(user: &UserRow, reauth: &Reauth) -> Actor {
    Actor {
        name: format!("user:{}", user.username),
        ip: reauth.ip.map(|ip| ip.to_string()),
    }
}

/// Refuses a session that did not sign in (or step up) with its second
/// factor: the password alone does not change a second factor.
fn needs_mfa_session(session: &ActiveSession) -> ServiceResult<()> {
    if session.amr.is_mfa() {
        return Ok(());
    }
    Err(ServiceError::Forbidden(
        "sign in with your second factor first".into(),
    ))
}

/// A new set of recovery codes (the old ones stop working), from a
/// session signed in with the second factor, after the current password.
/// Only for a user with a second factor. Audited.
pub async fn regenerate_recovery_codes(
    db: &Db,
    key: &MfaKey,
    reauth: &Reauth,
    session: &ActiveSession,
    password: Zeroizing<String>,
    now: OffsetDateTime,
) -> ServiceResult<Vec<RecoveryCode>> {
    needs_mfa_session(session)?;
    let user = &session.user;
    let actor = themselves(user, reauth);
    let key = key.clone();
    login::confirm_password(db, reauth, user, password, now, move |conn, user| {
        if !has_factor(conn, &user.id)? {
            return Err(ServiceError::Conflict(
                "set up an authenticator app first".into(),
            ));
        }
        audit::record(
            conn,
            &actor,
            "mfa.recovery_codes_regenerated",
            &user.username,
            None,
            now,
        )?;
        new_recovery_codes(conn, &key, &user.id, now)
    })
    .await
}

/// Removes the user's authenticator and recovery codes (their last
/// factor), from a session signed in with the second factor, after the
/// current password. Audited.
pub async fn remove_own(
    db: &Db,
    reauth: &Reauth,
    session: &ActiveSession,
    password: Zeroizing<String>,
    now: OffsetDateTime,
) -> ServiceResult<()> {
    needs_mfa_session(session)?;
    let user = &session.user;
    let actor = themselves(user, reauth);
    login::confirm_password(db, reauth, user, password, now, move |conn, user| {
        audit::record(conn, &actor, "mfa.removed", &user.username, None, now)?;
        delete_all(conn, &user.id)
    })
    .await
}

fn delete_all(conn: &mut DbConn, user_id: &str) -> ServiceResult<()> {
    repo::mfa::delete_totp(conn, user_id)?;
    repo::mfa::delete_recovery_codes(conn, user_id)?;
    repo::mfa::delete_challenges_of(conn, user_id)?;
    Ok(())
}

/// A user's factors by username, for admins (never a secret).
pub fn factors_of(conn: &mut DbConn, username: &str) -> ServiceResult<Factors> {
    let user = super::users::find(conn, username)?;
    factors(conn, &user.id)
}

/// What an admin's reset would do, for its confirmation page: the
/// factors that go and how many sessions end.
#[derive(Debug, Clone, serde::Serialize, PartialEq)]
pub struct ResetPreview {
    pub factors: Factors,
    pub sessions: i64,
}

pub fn reset_preview(conn: &mut DbConn, username: &str) -> ServiceResult<ResetPreview> {
    let user = super::users::find(conn, username)?;
    Ok(ResetPreview {
        factors: factors(conn, &user.id)?,
        sessions: repo::sessions::count_for_user(conn, &user.id)?,
    })
}

/// What an admin's reset did.
#[derive(Debug, Clone, serde::Serialize, PartialEq)]
pub struct ResetDone {
    /// The user had a second factor (now gone).
    pub had_factor: bool,
    /// Sessions ended (with back-channel logout).
    pub sessions_ended: usize,
}

/// An admin's reset: the user's factors go, and their sessions end (as a
/// sign-out: see `service::logout`), so the next sign-in is with the
/// password alone. Run inside the audited-change runner
/// (`service::admin`).
pub fn reset(
    conn: &mut DbConn,
    username: &str,
    policy: LogoutPolicy,
    now: OffsetDateTime,
) -> ServiceResult<ResetDone> {
    let user = super::users::find(conn, username)?;
    let had_factor = has_factor(conn, &user.id)?;
    delete_all(conn, &user.id)?;
    let ended = logout::end_sessions(conn, Which::All { user_id: &user.id }, policy, now)?;
    Ok(ResetDone {
        had_factor,
        sessions_ended: ended.sessions,
    })
}

/// A refused confirmation, to show the enrolment again with the reason
/// beside the code (`None`: nothing to show again, it was set up already).
pub type Retry = (Invalid, Option<Enrolment>);

/// [`confirm_totp`] for the enrolment page: a wrong code gives the pending
/// enrolment back with the reason, so the page shows again as it was.
pub fn confirm_totp_or_again(
    conn: &mut DbConn,
    (key, issuer_label): (&MfaKey, &str),
    session: &ActiveSession,
    code: &str,
    actor: &Actor,
    (policy, now): (LogoutPolicy, OffsetDateTime),
) -> ServiceResult<Result<Vec<RecoveryCode>, Retry>> {
    match confirm_totp(conn, key, session, code, actor, (policy, now)) {
        Ok(codes) => Ok(Ok(codes)),
        Err(ServiceError::Invalid(i)) => {
            let again = begin_totp(conn, key, issuer_label, session, now)?;
            Ok(Err((i, again)))
        }
        Err(ServiceError::Conflict(msg)) => Ok(Err((Invalid::new("code", msg), None))),
        Err(e) => Err(e),
    }
}

//! My account's two-step sign-in (`/account/mfa`): what is set up (never
//! a secret), setting up an authenticator app (QR code rendered here as
//! inline SVG, no JavaScript, plus the secret as text; confirmed by a
//! first code), recovery codes (shown once; a new set after the current
//! password), and removing it all (a confirmation page, the current
//! password). Each handler reads the form, calls one `service::mfa`
//! function and renders.

use actix_web::http::StatusCode;
use actix_web::http::header::LOCATION;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;
use tera::Context;
use zeroize::Zeroizing;

use super::account::{reauth, signed_in, when};
use super::account_tokens::user_actor;
use crate::domain::mfa::{RecoveryCode, grouped};
use crate::http::error::AppError;
use crate::http::form::Form;
use crate::http::{csrf, extract};
use crate::service::ServiceError;
use crate::service::mfa::{self, Enrolment, Factors};
use crate::service::sessions::ActiveSession;
use crate::state::AppState;

#[derive(Deserialize)]
pub struct CsrfOnly {
    csrf_token: String,
}

#[derive(Deserialize)]
pub struct CodeForm {
    csrf_token: String,
    code: String,
}

#[derive(Deserialize)]
pub struct PasswordForm {
    csrf_token: String,
    current_password: String,
}

/// Notices by fixed code, so nothing from the URL is echoed.
fn notice(code: &str) -> Option<&'static str> {
    Some(match code {
        "enrolled" => "Your authenticator app is set up. Sign-ins now ask for its code.",
        "removed" => "Two-step sign-in is off. Sign-ins ask for your password only.",
        "required" => {
            "Your organisation requires two-step sign-in for your account. Set it up now: \
             after a short grace period, apps will not let you in until you have."
        }
        _ => return None,
    })
}

fn done(code: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((LOCATION, format!("/account/mfa?done={code}")))
        .finish()
}

/// A session signed in with the password alone (from before the app was
/// set up) changes no second factor: it is sent for its code first.
fn step_up() -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((LOCATION, "/login/mfa?return_to=%2Faccount%2Fmfa"))
        .finish()
}

/// The name authenticator apps show for this server: the issuer's host.
fn issuer_label(state: &AppState) -> String {
    url::Url::parse(&state.config.issuer)
        .ok()
        .and_then(|u| u.host_str().map(str::to_owned))
        .unwrap_or_else(|| "Latchkey".into())
}

/// The QR code of `uri` as inline SVG (no XML prolog), or `None` if it
/// does not fit in a QR code (the secret in text still works).
fn qr_svg(uri: &str) -> Option<String> {
    let code = qrcode::QrCode::new(uri.as_bytes()).ok()?;
    let svg = code
        .render::<qrcode::render::svg::Color<'_>>()
        .min_dimensions(232, 232)
        .quiet_zone(true)
        .build();
    svg.find("<svg").map(|at| svg[at..].to_owned())
}

fn factors_context(f: &Factors) -> serde_json::Value {
    serde_json::json!({
        "enrolled": f.enrolled(),
        "totp_since": f.totp.as_ref().filter(|t| t.confirmed).map(|t| when(t.created_at)),
        "totp_last_used": f.totp.as_ref().and_then(|t| t.last_used_at).map(when),
        "codes": f.recovery_codes,
        "codes_left": f.recovery_codes_left,
        "codes_used": f.recovery_codes_used.iter().map(|t| when(*t)).collect::<Vec<_>>(),
    })
}

/// The signed-in person posting a form with a valid CSRF token, or the
/// way to the sign-in page.
async fn signed_in_form(
    req: &HttpRequest,
    state: &AppState,
    csrf_token: &str,
) -> Result<Result<ActiveSession, HttpResponse>, AppError> {
    let session = match signed_in(req, state).await {
        Ok(s) => s,
        Err(redirect) => return Ok(Err(redirect)),
    };
    csrf::verify(req, state, csrf_token)?;
    Ok(Ok(session))
}

/// [`signed_in_form`] for changes that need a two-factor session: a
/// password-only one is sent to the second step first.
async fn two_factor_form(
    req: &HttpRequest,
    state: &AppState,
    csrf_token: &str,
) -> Result<Result<ActiveSession, HttpResponse>, AppError> {
    Ok(match signed_in_form(req, state, csrf_token).await? {
        Ok(s) if !s.amr.is_mfa() => Err(step_up()),
        other => other,
    })
}

/// GET /account/mfa
pub async fn show(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, AppError> {
    overview(&req, &state, StatusCode::OK, None).await
}

async fn overview(
    req: &HttpRequest,
    state: &AppState,
    status: StatusCode,
    password_error: Option<&str>,
) -> Result<HttpResponse, AppError> {
    let session = match signed_in(req, state).await {
        Ok(s) => s,
        Err(redirect) => return Ok(redirect),
    };
    let user_id = session.user.id.clone();
    let factors = state
        .db
        .run(move |conn| mfa::factors(conn, &user_id))
        .await?;
    let mut ctx = Context::new();
    ctx.insert("mfa", &factors_context(&factors));
    let shown = url::form_urlencoded::parse(req.query_string().as_bytes())
        .find(|(k, _)| k == "done")
        .and_then(|(_, v)| notice(&v));
    ctx.insert("notice", &shown);
    ctx.insert("password_error", &password_error);
    csrf::form_page(req, state, status, "account_mfa.html", ctx)
}

fn enrol_page(
    req: &HttpRequest,
    state: &AppState,
    status: StatusCode,
    e: &Enrolment,
    error: Option<&str>,
) -> Result<HttpResponse, AppError> {
    let mut ctx = Context::new();
    ctx.insert("qr_svg", &qr_svg(&e.uri));
    ctx.insert("secret", &grouped(&e.secret_b32));
    ctx.insert("error", &error);
    let mut resp = csrf::form_page(req, state, status, "account_mfa_enrol.html", ctx)?;
    no_store(&mut resp);
    Ok(resp)
}

/// Pages that show a secret (a seed, recovery codes) are not cached.
fn no_store(resp: &mut HttpResponse) {
    resp.headers_mut().insert(
        actix_web::http::header::CACHE_CONTROL,
        actix_web::http::header::HeaderValue::from_static("no-store"),
    );
}

fn codes_page(
    req: &HttpRequest,
    state: &AppState,
    codes: &[RecoveryCode],
) -> Result<HttpResponse, AppError> {
    let mut ctx = Context::new();
    let shown: Vec<&str> = codes.iter().map(RecoveryCode::expose).collect();
    ctx.insert("codes", &shown);
    let mut resp = csrf::form_page(req, state, StatusCode::OK, "account_mfa_codes.html", ctx)?;
    no_store(&mut resp);
    Ok(resp)
}

/// POST /account/mfa/totp: shows the QR code of a new (or the pending)
/// enrolment.
pub async fn begin(
    req: HttpRequest,
    state: web::Data<AppState>,
    form: Form<CsrfOnly>,
) -> Result<HttpResponse, AppError> {
    let session = match signed_in_form(&req, &state, &form.csrf_token).await? {
        Ok(s) => s,
        Err(redirect) => return Ok(redirect),
    };
    let (key, label, now) = (
        state.mfa_key.clone(),
        issuer_label(&state),
        state.clock.now(),
    );
    let enrolment = state
        .db
        .run(move |conn| mfa::begin_totp(conn, &key, &label, &session, now))
        .await?;
    match enrolment {
        Some(e) => enrol_page(&req, &state, StatusCode::OK, &e, None),
        None => Ok(done("enrolled")),
    }
}

/// POST /account/mfa/totp/confirm: the first code from the app. The first
/// time, the recovery codes are shown (this once).
pub async fn confirm(
    req: HttpRequest,
    state: web::Data<AppState>,
    form: Form<CodeForm>,
) -> Result<HttpResponse, AppError> {
    let form = form.into_inner();
    let session = match signed_in_form(&req, &state, &form.csrf_token).await? {
        Ok(s) => s,
        Err(redirect) => return Ok(redirect),
    };
    let (key, label, now) = (
        state.mfa_key.clone(),
        issuer_label(&state),
        state.clock.now(),
    );
    let actor = user_actor(
        &session.user.username,
        extract::client_ip(&req, &state).map(|ip| ip.to_string()),
    );
    let code = Zeroizing::new(form.code);
    let policy = state.logout_policy;
    let confirmed = state
        .db
        .run(move |conn| {
            mfa::confirm_totp_or_again(conn, (&key, &label), &session, &code, &actor, (policy, now))
        })
        .await?;
    match confirmed {
        Ok(codes) if codes.is_empty() => Ok(done("enrolled")),
        Ok(codes) => codes_page(&req, &state, &codes),
        Err((invalid, Some(e))) => enrol_page(
            &req,
            &state,
            StatusCode::BAD_REQUEST,
            &e,
            Some(&invalid.problem),
        ),
        Err((_, None)) => Ok(done("enrolled")),
    }
}

/// POST /account/mfa/recovery: a new set of recovery codes, after the
/// current password.
pub async fn regenerate(
    req: HttpRequest,
    state: web::Data<AppState>,
    form: Form<PasswordForm>,
) -> Result<HttpResponse, AppError> {
    let form = form.into_inner();
    let session = match two_factor_form(&req, &state, &form.csrf_token).await? {
        Ok(s) => s,
        Err(redirect) => return Ok(redirect),
    };
    let password = Zeroizing::new(form.current_password);
    let made = mfa::regenerate_recovery_codes(
        &state.db,
        &state.mfa_key,
        &reauth(&req, &state),
        &session,
        password,
        state.clock.now(),
    )
    .await;
    match made {
        Ok(codes) => codes_page(&req, &state, &codes),
        Err(ServiceError::Invalid(i)) => {
            overview(&req, &state, StatusCode::BAD_REQUEST, Some(&i.problem)).await
        }
        Err(e) => Err(e.into()),
    }
}

fn remove_page(
    req: &HttpRequest,
    state: &AppState,
    status: StatusCode,
    error: Option<&str>,
) -> Result<HttpResponse, AppError> {
    let mut ctx = Context::new();
    ctx.insert("error", &error);
    csrf::form_page(req, state, status, "account_mfa_remove.html", ctx)
}

/// GET /account/mfa/remove: the confirmation page.
pub async fn confirm_remove(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    match signed_in(&req, &state).await {
        Err(redirect) => return Ok(redirect),
        Ok(session) if !session.amr.is_mfa() => return Ok(step_up()),
        Ok(_) => {}
    }
    remove_page(&req, &state, StatusCode::OK, None)
}

/// POST /account/mfa/remove: removes the app and the recovery codes,
/// after the current password.
pub async fn remove(
    req: HttpRequest,
    state: web::Data<AppState>,
    form: Form<PasswordForm>,
) -> Result<HttpResponse, AppError> {
    let form = form.into_inner();
    let session = match two_factor_form(&req, &state, &form.csrf_token).await? {
        Ok(s) => s,
        Err(redirect) => return Ok(redirect),
    };
    let removed = mfa::remove_own(
        &state.db,
        &reauth(&req, &state),
        &session,
        Zeroizing::new(form.current_password),
        state.clock.now(),
    )
    .await;
    match removed {
        Ok(()) => Ok(done("removed")),
        Err(ServiceError::Invalid(i)) => {
            remove_page(&req, &state, StatusCode::BAD_REQUEST, Some(&i.problem))
        }
        Err(e) => Err(e.into()),
    }
}

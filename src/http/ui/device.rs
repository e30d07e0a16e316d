//! `/device`, where a person connects a device (RFC 8628 3.3): sign in
//! first (the login page's `return_to` brings them back, the code kept),
//! enter or confirm the code (`verification_uri_complete` only prefills
//! it), then Allow or Deny on a consent page that names the app, the
//! scopes and the code. Nothing is approved without both steps, and no
//! GET changes anything.

use actix_web::http::StatusCode;
use actix_web::http::header::{HeaderValue, LOCATION, RETRY_AFTER};
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;
use tera::Context;

use crate::domain::device::{USER_CODE_INPUT_MAX, UserCode};
use crate::http::error::AppError;
use crate::http::form::Form;
use crate::http::oidc::authorize::consent_context;
use crate::http::{csrf, extract, templates};
use crate::oidc::device::VERIFICATION_PATH;
use crate::service::device::{self, AnswerContext, CodeAttempt, DevicePrompt, Entry};
use crate::service::sessions::ActiveSession;
use crate::state::AppState;

#[derive(Debug, Deserialize)]
pub struct DeviceQuery {
    user_code: Option<String>,
}

#[derive(Deserialize)]
pub struct CodeForm {
    csrf_token: String,
    #[serde(default)]
    user_code: String,
}

#[derive(Deserialize)]
pub struct AnswerForm {
    csrf_token: String,
    #[serde(default)]
    user_code: String,
    decision: String,
}

/// What to show in the code field: a well-formed code as `XXXX-XXXX`,
/// anything else as typed (bounded), so the person sees what came in.
fn shown(raw: Option<&str>) -> String {
    let raw = raw.unwrap_or_default();
    match UserCode::parse(raw) {
        Some(code) => code.display(),
        None => raw.chars().take(USER_CODE_INPUT_MAX).collect(),
    }
}

/// To the login page, and back to `/device` with the code kept.
fn sign_in_first(code: &str) -> HttpResponse {
    then_back("/login", code)
}

/// To the second step of sign-in (a step-up of this session), and back to
/// `/device` with the code kept.
fn second_factor_first(code: &str) -> HttpResponse {
    then_back("/login/mfa", code)
}

fn then_back(page: &str, code: &str) -> HttpResponse {
    let back = if code.is_empty() {
        VERIFICATION_PATH.to_owned()
    } else {
        let q = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("user_code", code)
            .finish();
        format!("{VERIFICATION_PATH}?{q}")
    };
    let to = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("return_to", &back)
        .finish();
    HttpResponse::SeeOther()
        .insert_header((LOCATION, format!("{page}?{to}")))
        .finish()
}

fn entry_page(
    req: &HttpRequest,
    state: &AppState,
    status: StatusCode,
    session: &ActiveSession,
    code: &str,
    error: Option<&str>,
) -> Result<HttpResponse, AppError> {
    let mut ctx = Context::new();
    ctx.insert("username", &session.user.username);
    ctx.insert("user_code", code);
    ctx.insert("error", &error);
    csrf::form_page(req, state, status, "device.html", ctx)
}

/// GET /device: the code form, prefilled from `?user_code=`.
pub async fn show(
    req: HttpRequest,
    state: web::Data<AppState>,
    query: web::Query<DeviceQuery>,
) -> Result<HttpResponse, AppError> {
    let code = shown(query.user_code.as_deref());
    match extract::current_session(&req, &state).await? {
        None => Ok(sign_in_first(&code)),
        Some(session) => entry_page(&req, &state, StatusCode::OK, &session, &code, None),
    }
}

/// POST /device: the code as entered; the consent page if it is right.
pub async fn enter(
    req: HttpRequest,
    state: web::Data<AppState>,
    form: Form<CodeForm>,
) -> Result<HttpResponse, AppError> {
    let form = form.into_inner();
    handle(&req, &state, &form.csrf_token, form.user_code, None).await
}

/// POST /device/consent: Allow or Deny; the code is checked again.
pub async fn answer(
    req: HttpRequest,
    state: web::Data<AppState>,
    form: Form<AnswerForm>,
) -> Result<HttpResponse, AppError> {
    let form = form.into_inner();
    let allow = crate::http::form::allow_or_deny(&form.decision)?;
    handle(&req, &state, &form.csrf_token, form.user_code, Some(allow)).await
}

/// A code typed (`allow` is `None`) or answered, by a signed-in person.
async fn handle(
    req: &HttpRequest,
    state: &AppState,
    csrf_token: &str,
    user_code: String,
    allow: Option<bool>,
) -> Result<HttpResponse, AppError> {
    csrf::verify(req, state, csrf_token)?;
    let code = shown(Some(&user_code));
    let Some(session) = extract::current_session(req, state).await? else {
        return Ok(sign_in_first(&code));
    };
    let attempt = CodeAttempt {
        session: session.clone(),
        user_code,
        ip: extract::client_ip(req, state),
    };
    let ctx = AnswerContext::new(&state.config, state.clock.now());
    let entry = device::enter(&state.db, attempt, allow, ctx).await?;
    render(req, state, &session, &code, entry)
}

fn render(
    req: &HttpRequest,
    state: &AppState,
    session: &ActiveSession,
    code: &str,
    entry: Entry,
) -> Result<HttpResponse, AppError> {
    match entry {
        Entry::Prompt(prompt) => consent_page(req, state, &prompt),
        Entry::Unknown => {
            tracing::info!("device code not recognized");
            entry_page(
                req,
                state,
                StatusCode::BAD_REQUEST,
                session,
                code,
                Some(
                    "That code is not valid. Check it against the one your device shows: \
                     a code works once, and only for a few minutes.",
                ),
            )
        }
        Entry::Throttled { retry_after_secs } => {
            tracing::warn!("device code entry throttled");
            let minutes = retry_after_secs.div_ceil(60);
            let plural = if minutes == 1 { "" } else { "s" };
            let message = format!("Too many wrong codes. Try again in {minutes} minute{plural}.");
            let mut resp = entry_page(
                req,
                state,
                StatusCode::TOO_MANY_REQUESTS,
                session,
                code,
                Some(&message),
            )?;
            resp.headers_mut()
                .insert(RETRY_AFTER, HeaderValue::from(retry_after_secs));
            Ok(resp)
        }
        Entry::NothingGrantable { client_name } => Ok(templates::error_page(
            StatusCode::FORBIDDEN,
            "Cannot connect this device",
            &format!(
                "{client_name} asks only for permissions your account may not be given. \
                 The device was told that access was denied."
            ),
        )),
        Entry::NeedsSecondFactor => Ok(second_factor_first(code)),
        Entry::NoSecondFactor { client_name } => Ok(templates::error_page(
            StatusCode::FORBIDDEN,
            "Two-step sign-in needed",
            &format!(
                "{client_name} requires two-step sign-in, and your account has none. \
                 The device was told that access was denied. Set up an authenticator \
                 app in My account, then start again on the device."
            ),
        )),
        Entry::Approved { client_name } => Ok(done(
            "Device connected",
            &format!("You allowed {client_name}. Go back to your device: it continues on its own."),
        )),
        Entry::Denied { client_name } => Ok(done(
            "Access denied",
            &format!("{client_name} was not given access. You can close this page."),
        )),
    }
}

fn done(title: &str, message: &str) -> HttpResponse {
    let mut ctx = Context::new();
    ctx.insert("title", title);
    ctx.insert("message", message);
    templates::page(StatusCode::OK, "device_done.html", &ctx)
}

/// The `/authorize` consent page, for a device: it shows the code to
/// check, and its form posts the code back with the answer.
fn consent_page(
    req: &HttpRequest,
    state: &AppState,
    prompt: &DevicePrompt,
) -> Result<HttpResponse, AppError> {
    let mut ctx = consent_context(
        &prompt.client_name,
        &prompt.username,
        prompt.unverified,
        &prompt.descriptions,
    );
    ctx.insert("user_code", &prompt.user_code);
    ctx.insert("action", "/device/consent");
    ctx.insert(
        "params",
        &[("user_code".to_owned(), prompt.user_code.clone())],
    );
    csrf::form_page(req, state, StatusCode::OK, "consent.html", ctx)
}

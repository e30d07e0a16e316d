//! `/login/mfa`: the second step of a sign-in (after a right password,
//! with the pending-challenge cookie), or a step-up of a signed-in session
//! that `/authorize` sent here. The code is a TOTP code or a recovery
//! code; `service::mfa::answer` checks it and starts (or upgrades) the
//! session.

use actix_web::http::StatusCode;
use actix_web::http::header::{LOCATION, RETRY_AFTER};
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;
use tera::Context;
use zeroize::Zeroizing;

use super::safe_return_to;
use crate::domain::secret::OpaqueSecret;
use crate::http::error::AppError;
use crate::http::form::Form;
use crate::http::{csrf, extract};
use crate::service::mfa::{self, Answer, Answered, FactorContext, FactorError, Subject};
use crate::state::AppState;

#[derive(Debug, Deserialize)]
pub struct MfaQuery {
    return_to: Option<String>,
}

#[derive(Deserialize)]
pub struct MfaForm {
    code: String,
    csrf_token: String,
    return_to: Option<String>,
}

fn render(
    req: &HttpRequest,
    state: &AppState,
    status: StatusCode,
    return_to: Option<&str>,
    error: Option<&str>,
) -> Result<HttpResponse, AppError> {
    let mut ctx = Context::new();
    ctx.insert("return_to", &return_to);
    ctx.insert("error", &error);
    csrf::form_page(req, state, status, "login_mfa.html", ctx)
}

fn to_login(return_to: Option<&str>) -> HttpResponse {
    let mut q = url::form_urlencoded::Serializer::new(String::new());
    if let Some(to) = return_to {
        q.append_pair("return_to", to);
    }
    HttpResponse::SeeOther()
        .insert_header((LOCATION, format!("/login?{}", q.finish())))
        .finish()
}

/// To `back`, with the session cookie set to `secret`.
fn with_session(
    state: &AppState,
    back: String,
    secret: &OpaqueSecret,
) -> Result<HttpResponse, AppError> {
    let mut resp = HttpResponse::SeeOther()
        .insert_header((LOCATION, back))
        .finish();
    resp.add_cookie(&state.cookies.session(secret.expose()))
        .map_err(|e| AppError::Internal(e.to_string()))?;
    Ok(resp)
}

/// Who is answering: the pending sign-in of the cookie, else the session.
async fn subject(req: &HttpRequest, state: &AppState) -> Result<Option<Subject>, AppError> {
    if let Some(c) = req.cookie(state.cookies.mfa_challenge_name()) {
        return Ok(Some(Subject::Challenge(c.value().to_owned())));
    }
    Ok(extract::current_session(req, state)
        .await?
        .map(|s| Subject::Session(Box::new(s))))
}

/// GET /login/mfa: the code form, for a pending sign-in or a session.
pub async fn show(
    req: HttpRequest,
    state: web::Data<AppState>,
    query: web::Query<MfaQuery>,
) -> Result<HttpResponse, AppError> {
    let return_to = safe_return_to(query.return_to.as_deref());
    let has_challenge = req.cookie(state.cookies.mfa_challenge_name()).is_some();
    if !has_challenge && extract::current_session(&req, &state).await?.is_none() {
        return Ok(to_login(return_to.as_deref()));
    }
    render(&req, &state, StatusCode::OK, return_to.as_deref(), None)
}

/// POST /login/mfa: check the code; on success start (or step up) the
/// session and go where asked.
pub async fn submit(
    req: HttpRequest,
    state: web::Data<AppState>,
    form: Form<MfaForm>,
) -> Result<HttpResponse, AppError> {
    let form = form.into_inner();
    csrf::verify(&req, &state, &form.csrf_token)?;
    let return_to = safe_return_to(form.return_to.as_deref());
    let Some(subject) = subject(&req, &state).await? else {
        return Ok(to_login(return_to.as_deref()));
    };
    let ctx = FactorContext {
        key: state.mfa_key.clone(),
        throttle: state.throttle_policy,
        session_policy: state.session_policy,
        now: state.clock.now(),
    };
    let answer = Answer {
        code: Zeroizing::new(form.code),
        ip: extract::client_ip(&req, &state),
        meta: extract::session_meta(&req, &state),
    };
    let back = return_to.clone().unwrap_or_else(|| "/".into());
    match mfa::answer(&state.db, ctx, subject, answer).await {
        Ok(Answered::SessionStarted(secret)) => {
            let mut resp = with_session(&state, back, &secret)?;
            resp.add_cookie(&state.cookies.clear_mfa_challenge())
                .map_err(|e| AppError::Internal(e.to_string()))?;
            Ok(resp)
        }
        // A new cookie value: the one from before the step-up is void.
        Ok(Answered::SteppedUp(secret)) => with_session(&state, back, &secret),
        Err(FactorError::WrongCode) => render(
            &req,
            &state,
            StatusCode::UNAUTHORIZED,
            return_to.as_deref(),
            Some("That code is not right, or was already used."),
        ),
        Err(FactorError::Throttled { retry_after_secs }) => {
            let mut resp = render(
                &req,
                &state,
                StatusCode::TOO_MANY_REQUESTS,
                return_to.as_deref(),
                Some("Too many failed attempts. Please wait a few minutes and try again."),
            )?;
            resp.headers_mut().insert(
                RETRY_AFTER,
                actix_web::http::header::HeaderValue::from(retry_after_secs),
            );
            Ok(resp)
        }
        Err(FactorError::Expired) => {
            let mut resp = to_login(return_to.as_deref());
            resp.add_cookie(&state.cookies.clear_mfa_challenge())
                .map_err(|e| AppError::Internal(e.to_string()))?;
            Ok(resp)
        }
        Err(FactorError::Service(e)) => Err(e.into()),
    }
}

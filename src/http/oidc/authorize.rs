//! `/authorize` (GET and POST) and the consent form: the session from the
//! cookie, the decision from `service::authorize`, rendered here as a
//! login redirect, the consent page, or the code (or error) sent back the
//! way the client asked.

use actix_web::http::StatusCode;
use actix_web::http::header::{CONTENT_SECURITY_POLICY, LOCATION};
use actix_web::{HttpRequest, HttpResponse, web};
use base64::Engine;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use tera::Context;

use crate::http::error::AppError;
use crate::http::form::Form;
use crate::http::{csrf, extract, templates};
use crate::oidc::OAuthError;
use crate::oidc::authorize::{self, AuthorizeParams, ResponseMode, ReturnTo};
use crate::service::authorize::{
    self as authz, AuthorizeContext, ConsentPrompt, Decision, IssuedCode,
};
use crate::service::token::TokenContext;
use crate::state::AppState;

pub async fn get(
    req: HttpRequest,
    state: web::Data<AppState>,
    params: web::Query<AuthorizeParams>,
) -> Result<HttpResponse, AppError> {
    handle(&req, &state, params.into_inner()).await
}

pub async fn post(
    req: HttpRequest,
    state: web::Data<AppState>,
    params: Form<AuthorizeParams>,
) -> Result<HttpResponse, AppError> {
    handle(&req, &state, params.into_inner()).await
}

fn context(state: &AppState) -> AuthorizeContext<'_> {
    let now = state.clock.now();
    AuthorizeContext {
        db: &state.db,
        keys: state.keys.current(),
        issuer: &state.config.issuer,
        now,
        code_ttl_secs: i64::try_from(state.config.tokens.code_ttl_secs).unwrap_or(60),
        implicit: TokenContext::implicit(&state.config, &state.keys, now),
        mfa: &state.config.mfa,
    }
}

async fn handle(
    req: &HttpRequest,
    state: &AppState,
    params: AuthorizeParams,
) -> Result<HttpResponse, AppError> {
    let session = extract::current_session(req, state).await?;
    let decision = authz::decide(&context(state), &params, session).await?;
    render(req, state, &params, decision)
}

/// Turns the service's decision into a page or a redirect.
fn render(
    req: &HttpRequest,
    state: &AppState,
    params: &AuthorizeParams,
    decision: Decision,
) -> Result<HttpResponse, AppError> {
    match decision {
        Decision::ErrorPage(msg) => Ok(templates::error_page(
            StatusCode::BAD_REQUEST,
            "Cannot sign in",
            &msg,
        )),
        Decision::Error(to, e) => Ok(respond_error(state, &to, &e)),
        Decision::Login {
            login_hint,
            asked_at,
        } => Ok(redirect_to_login(params, login_hint.as_deref(), asked_at)),
        Decision::SecondFactor => Ok(redirect_to_second_factor(params)),
        Decision::Enrol => Ok(HttpResponse::SeeOther()
            .insert_header((LOCATION, "/account/mfa?done=required"))
            .finish()),
        Decision::Consent(prompt) => consent_page(req, state, &prompt, params),
        Decision::Code(issued) => Ok(code_response(state, &issued)),
        Decision::Tokens(issued) => {
            let params: Vec<(&str, &str)> = issued
                .params
                .iter()
                .map(|(k, v)| (*k, v.as_str()))
                .collect();
            Ok(respond(state, &issued.request.return_to, &params))
        }
    }
}

/// Sends the browser to the login page and back here. The way back keeps
/// the request whole: `max_age` is met by the sign-in about to happen, and
/// `prompt=login` by the marker that it happened after `asked_at`, so
/// opening the return URL again without signing in asks again.
fn redirect_to_login(
    params: &AuthorizeParams,
    login_hint: Option<&str>,
    asked_at: time::OffsetDateTime,
) -> HttpResponse {
    let mut back = params.clone();
    let wants_login = back
        .prompt
        .as_deref()
        .is_some_and(|p| p.split(' ').any(|v| v == "login" || v == "select_account"));
    back.latchkey_login_after =
        (wants_login || back.max_age.is_some()).then(|| asked_at.unix_timestamp().to_string());
    let query = serde_urlencoded::to_string(&back).unwrap_or_default();
    let return_to = format!("/authorize?{query}");
    let mut login = url::form_urlencoded::Serializer::new(String::new());
    login.append_pair("return_to", &return_to);
    if let Some(h) = login_hint {
        login.append_pair("login_hint", h);
    }
    HttpResponse::SeeOther()
        .insert_header((LOCATION, format!("/login?{}", login.finish())))
        .finish()
}

/// Sends the browser to the second-factor page and back here with the
/// same request.
fn redirect_to_second_factor(params: &AuthorizeParams) -> HttpResponse {
    let query = serde_urlencoded::to_string(params).unwrap_or_default();
    let mut to = url::form_urlencoded::Serializer::new(String::new());
    to.append_pair("return_to", &format!("/authorize?{query}"));
    HttpResponse::SeeOther()
        .insert_header((LOCATION, format!("/login/mfa?{}", to.finish())))
        .finish()
}

fn consent_page(
    req: &HttpRequest,
    state: &AppState,
    prompt: &ConsentPrompt,
    params: &AuthorizeParams,
) -> Result<HttpResponse, AppError> {
    let hidden: Vec<(String, String)> = serde_urlencoded::to_string(params)
        .ok()
        .map(|q| {
            url::form_urlencoded::parse(q.as_bytes())
                .into_owned()
                .collect()
        })
        .unwrap_or_default();
    let mut ctx = consent_context(
        &prompt.request.client.settings.name,
        &prompt.username,
        prompt.unverified,
        &prompt.descriptions,
    );
    ctx.insert("destination", &prompt.destination);
    ctx.insert("params", &hidden);
    csrf::form_page(req, state, StatusCode::OK, "consent.html", ctx)
}

/// What every consent page (`consent.html`) shows: the app (and whether
/// it registered itself), who is signed in, and each scope with its text.
pub(crate) fn consent_context(
    client_name: &str,
    username: &str,
    unverified: bool,
    descriptions: &[(String, String)],
) -> Context {
    let scopes: Vec<serde_json::Value> = descriptions
        .iter()
        .map(|(name, description)| serde_json::json!({ "name": name, "description": description }))
        .collect();
    let mut ctx = Context::new();
    ctx.insert("client_name", client_name);
    ctx.insert("username", username);
    ctx.insert("unverified", &unverified);
    ctx.insert("scopes", &scopes);
    ctx
}

#[derive(Deserialize)]
pub struct ConsentForm {
    csrf_token: String,
    decision: String,
    #[serde(flatten)]
    params: AuthorizeParams,
}

/// POST /authorize/consent: Allow records consent and issues the code;
/// Deny answers `access_denied`. The request is validated again.
pub async fn consent(
    req: HttpRequest,
    state: web::Data<AppState>,
    form: Form<ConsentForm>,
) -> Result<HttpResponse, AppError> {
    let form = form.into_inner();
    csrf::verify(&req, &state, &form.csrf_token)?;
    let allow = crate::http::form::allow_or_deny(&form.decision)?;
    let session = extract::current_session(&req, &state).await?;
    let decision = authz::answer_consent(&context(&state), &form.params, session, allow).await?;
    render(&req, &state, &form.params, decision)
}

/// The code, back to the client (or shown, for the out-of-band URI).
fn code_response(state: &AppState, issued: &IssuedCode) -> HttpResponse {
    if issued.request.is_oob() {
        let mut ctx = Context::new();
        ctx.insert("client_name", &issued.request.client.settings.name);
        ctx.insert("code", issued.code.expose());
        ctx.insert("ttl", &issued.ttl_secs);
        return templates::page(StatusCode::OK, "oob.html", &ctx);
    }
    respond(
        state,
        &issued.request.return_to,
        &[("code", issued.code.expose())],
    )
}

fn respond_error(state: &AppState, to: &ReturnTo, e: &OAuthError) -> HttpResponse {
    if to.redirect_uri == crate::domain::client::OOB_REDIRECT_URI {
        return templates::error_page(
            StatusCode::BAD_REQUEST,
            "Cannot sign in",
            &e.error_description,
        );
    }
    respond(
        state,
        to,
        &[
            ("error", e.error.as_str()),
            ("error_description", &e.error_description),
        ],
    )
}

/// Sends result parameters to the client by redirect or form_post.
fn respond(state: &AppState, to: &ReturnTo, params: &[(&str, &str)]) -> HttpResponse {
    let issuer = &state.config.issuer;
    if to.mode != ResponseMode::FormPost {
        return HttpResponse::SeeOther()
            .insert_header((LOCATION, authorize::redirect_url(to, issuer, params)))
            .insert_header((actix_web::http::header::CACHE_CONTROL, "no-store"))
            .finish();
    }
    let mut ctx = Context::new();
    ctx.insert("action", &to.redirect_uri);
    ctx.insert("params", &authorize::result_params(to, issuer, params));
    let body = match templates::render("form_post.html", &ctx) {
        Ok(b) => b,
        Err(e) => {
            tracing::error!(error = %e, "form_post rendering failed");
            return templates::error_page(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Something went wrong",
                "An internal error occurred.",
            );
        }
    };
    let script_hash = base64::engine::general_purpose::STANDARD
        .encode(Sha256::digest(templates::FORM_POST_SCRIPT.as_bytes()));
    let target = url::Url::parse(&to.redirect_uri)
        .map(|u| u.origin().ascii_serialization())
        .unwrap_or_else(|_| "'none'".into());
    HttpResponse::Ok()
        .insert_header((actix_web::http::header::CONTENT_TYPE, "text/html; charset=utf-8"))
        .insert_header((actix_web::http::header::CACHE_CONTROL, "no-store"))
        .insert_header((
            CONTENT_SECURITY_POLICY,
            format!("default-src 'none'; script-src 'sha256-{script_hash}'; form-action {target}; frame-ancestors 'none'; base-uri 'none'"),
        ))
        .body(body)
}

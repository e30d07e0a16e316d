//! `/authorize` (GET and POST) and the consent form: validate, make sure
//! the person is signed in (recently enough), ask consent when needed,
//! then send the code (or the error) back the way the client asked.

use actix_web::http::StatusCode;
use actix_web::http::header::{CONTENT_SECURITY_POLICY, LOCATION};
use actix_web::{HttpRequest, HttpResponse, web};
use base64::Engine;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use tera::Context;

use crate::app::AppState;
use crate::error::AppError;
use crate::http::form::Form;
use crate::http::{csrf, extract, templates};
use crate::oidc::OAuthError;
use crate::oidc::authorize::{
    self, AuthorizeParams, Rejection, ResponseMode, ReturnTo, ValidRequest,
};
use crate::service::authorize as authz;
use crate::service::clients::{self, Client};
use crate::service::sessions::ActiveSession;

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

async fn load_client(
    state: &AppState,
    client_id: Option<&str>,
) -> Result<Option<Client>, AppError> {
    let Some(id) = client_id.filter(|id| id.len() <= crate::domain::client::CLIENT_ID_MAX) else {
        return Ok(None);
    };
    let id = id.to_owned();
    state
        .db
        .run(move |conn| clients::find_optional(conn, &id))
        .await
        .map_err(AppError::from)
}

async fn validated(
    state: &AppState,
    params: &AuthorizeParams,
) -> Result<Result<ValidRequest, HttpResponse>, AppError> {
    let client = load_client(state, params.client_id.as_deref()).await?;
    Ok(match authorize::validate(params, client) {
        Ok(v) => Ok(v),
        Err(Rejection::Page(msg)) => Err(templates::error_page(
            StatusCode::BAD_REQUEST,
            "Cannot sign in",
            &msg,
        )),
        Err(Rejection::Redirect(to, e)) => Err(respond_error(state, &to, &e)),
    })
}

async fn handle(
    req: &HttpRequest,
    state: &AppState,
    params: AuthorizeParams,
) -> Result<HttpResponse, AppError> {
    let valid = match validated(state, &params).await? {
        Ok(v) => v,
        Err(resp) => return Ok(resp),
    };
    let session = extract::current_session(req, state).await?;
    let now = state.clock.now();
    let fresh_enough = |s: &ActiveSession| {
        valid
            .max_age
            .is_none_or(|max| (now - s.auth_time).whole_seconds() <= max)
    };
    let hinted = params
        .id_token_hint
        .as_deref()
        .and_then(|h| hinted_subject(state, h));
    let same_user = |s: &ActiveSession| hinted.as_deref().is_none_or(|sub| sub == s.user.id);
    let session = match session {
        Some(s) if !valid.prompt.login && fresh_enough(&s) && same_user(&s) => s,
        _ if valid.prompt.none => {
            return Ok(respond_error(
                state,
                &valid.return_to,
                &OAuthError::login_required("the user is not signed in"),
            ));
        }
        _ => return Ok(redirect_to_login(&params, valid.login_hint.as_deref())),
    };
    let prepared = match for_user(state, valid, &session).await? {
        Ok(p) => p,
        Err(resp) => return Ok(resp),
    };
    let valid = prepared.request;
    if prepared.needs_consent {
        if valid.prompt.none {
            return Ok(respond_error(
                state,
                &valid.return_to,
                &OAuthError::consent_required("consent is required"),
            ));
        }
        return consent_page(
            req,
            state,
            &valid,
            &prepared.descriptions,
            &session,
            &params,
        );
    }
    issue(state, valid, session).await
}

/// The request narrowed to what this user may be granted, or the
/// `invalid_scope` answer when that is nothing.
async fn for_user(
    state: &AppState,
    valid: ValidRequest,
    session: &ActiveSession,
) -> Result<Result<authz::ForUser, HttpResponse>, AppError> {
    let return_to = valid.return_to.clone();
    let user = session.user.clone();
    let prepared = state
        .db
        .run(move |conn| authz::for_user(conn, valid, &user))
        .await?;
    Ok(prepared.ok_or_else(|| {
        respond_error(
            state,
            &return_to,
            &OAuthError::invalid_scope("none of the requested scopes may be granted to this user"),
        )
    }))
}

/// The subject of an `id_token_hint` we issued (expired ones count: it is
/// only a hint). Hints we cannot verify are ignored.
fn hinted_subject(state: &AppState, hint: &str) -> Option<String> {
    let (payload, _) = state.keys.current().verify(hint).ok()?;
    let claims = payload.claims_set();
    if claims.get("iss").and_then(|v| v.as_str()) != Some(state.config.issuer.as_str()) {
        return None;
    }
    claims
        .get("sub")
        .and_then(|v| v.as_str())
        .map(str::to_owned)
}

/// Sends the browser to the login page and back here. `prompt=login` and
/// `max_age` are dropped from the way back: they are satisfied by the
/// sign-in that is about to happen.
fn redirect_to_login(params: &AuthorizeParams, login_hint: Option<&str>) -> HttpResponse {
    let mut back = params.clone();
    back.prompt = back
        .prompt
        .map(|p| {
            p.split(' ')
                .filter(|v| *v != "login" && *v != "select_account")
                .collect::<Vec<_>>()
                .join(" ")
        })
        .filter(|p| !p.is_empty());
    back.max_age = None;
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

fn consent_page(
    req: &HttpRequest,
    state: &AppState,
    valid: &ValidRequest,
    descriptions: &[(String, String)],
    session: &ActiveSession,
    params: &AuthorizeParams,
) -> Result<HttpResponse, AppError> {
    let scopes: Vec<serde_json::Value> = descriptions
        .iter()
        .map(|(name, description)| serde_json::json!({ "name": name, "description": description }))
        .collect();
    let hidden: Vec<(String, String)> = serde_urlencoded::to_string(params)
        .ok()
        .map(|q| {
            url::form_urlencoded::parse(q.as_bytes())
                .into_owned()
                .collect()
        })
        .unwrap_or_default();
    let mut ctx = Context::new();
    ctx.insert("client_name", &valid.client.settings.name);
    ctx.insert("username", &session.user.username);
    ctx.insert("scopes", &scopes);
    ctx.insert("params", &hidden);
    csrf::form_page(req, state, StatusCode::OK, "consent.html", ctx)
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
    let valid = match validated(&state, &form.params).await? {
        Ok(v) => v,
        Err(resp) => return Ok(resp),
    };
    let Some(session) = extract::current_session(&req, &state).await? else {
        return Ok(redirect_to_login(&form.params, None));
    };
    let valid = match for_user(&state, valid, &session).await? {
        Ok(p) => p.request,
        Err(resp) => return Ok(resp),
    };
    match form.decision.as_str() {
        "allow" => {
            let (user_id, client_id, scope, now) = (
                session.user.id.clone(),
                valid.client.client_id.clone(),
                valid.scope.clone(),
                state.clock.now(),
            );
            state
                .db
                .run(move |conn| authz::record_consent(conn, &user_id, &client_id, &scope, now))
                .await?;
            issue(&state, valid, session).await
        }
        "deny" => Ok(respond_error(
            &state,
            &valid.return_to,
            &OAuthError::access_denied("the user denied access"),
        )),
        _ => Err(AppError::BadRequest("Choose Allow or Deny.".into())),
    }
}

async fn issue(
    state: &AppState,
    valid: ValidRequest,
    session: ActiveSession,
) -> Result<HttpResponse, AppError> {
    let now = state.clock.now();
    let ttl = i64::try_from(state.config.tokens.code_ttl_secs).unwrap_or(60);
    let v = valid.clone();
    let code = state
        .db
        .run(move |conn| authz::issue_code(conn, &v, &session, now, ttl))
        .await?;
    if valid.is_oob() {
        let mut ctx = Context::new();
        ctx.insert("client_name", &valid.client.settings.name);
        ctx.insert("code", code.expose());
        ctx.insert("ttl", &ttl);
        return Ok(templates::page(StatusCode::OK, "oob.html", &ctx));
    }
    Ok(respond(state, &valid.return_to, &[("code", code.expose())]))
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
            ("error", e.error),
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

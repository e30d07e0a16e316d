//! Dynamic client registration endpoints: `POST /register` (RFC 7591) and
//! `GET/PUT/DELETE /register/{client_id}` (RFC 7592). Errors are RFC 7591
//! 3.2.2 JSON; token problems are 401 with a Bearer challenge.

use actix_web::http::StatusCode;
use actix_web::http::header::WWW_AUTHENTICATE;
use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::json;

use super::response::{no_store_json, with_retry_after};
use crate::domain::audit::Actor;
use crate::http::extract;
use crate::service::registration::{self, ClientMetadata, RegistrationError, RegistrationPolicy};
use crate::state::AppState;
use crate::telemetry::metrics::RegistrationResult;

fn error(e: &RegistrationError) -> HttpResponse {
    let (status, description) = match e {
        RegistrationError::InvalidToken(m) => (StatusCode::UNAUTHORIZED, (*m).to_owned()),
        RegistrationError::Service(inner) => {
            tracing::error!(error = %inner, "registration failed");
            let status = match inner {
                crate::service::ServiceError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
                _ => StatusCode::INTERNAL_SERVER_ERROR,
            };
            (status, "the registration could not be stored".to_owned())
        }
        RegistrationError::TooMany { .. } => (StatusCode::TOO_MANY_REQUESTS, e.to_string()),
        other => (StatusCode::BAD_REQUEST, other.to_string()),
    };
    let mut resp = no_store_json(
        status,
        &json!({ "error": e.code(), "error_description": description }),
    );
    if status == StatusCode::UNAUTHORIZED
        && let Ok(v) = "Bearer error=\"invalid_token\"".parse()
    {
        resp.headers_mut().insert(WWW_AUTHENTICATE, v);
    }
    if let RegistrationError::TooMany { retry_after_secs } = e {
        return with_retry_after(resp, *retry_after_secs);
    }
    resp
}

/// The bearer token; a malformed header counts as none (401 either way).
fn bearer(req: &HttpRequest) -> Option<String> {
    extract::bearer_token(req).ok().flatten()
}

fn metadata(body: &[u8]) -> Result<ClientMetadata, RegistrationError> {
    serde_json::from_slice(body).map_err(|e| {
        RegistrationError::InvalidClientMetadata(format!(
            "the body must be a JSON object of client metadata: {e}"
        ))
    })
}

fn policy(req: &HttpRequest, state: &AppState) -> RegistrationPolicy {
    let window = i64::try_from(state.config.login.throttle_window_secs).unwrap_or(i64::MAX);
    RegistrationPolicy {
        issuer: state.config.issuer.clone(),
        open: state.config.registration.open,
        signing_algs: state.config.keys.algorithms.clone(),
        max_per_network: state.config.registration.max_per_network,
        window: time::Duration::seconds(window),
        network: extract::client_ip(req, state).map(crate::domain::net::throttle_key),
    }
}

fn actor(req: &HttpRequest, state: &AppState) -> Actor {
    Actor {
        name: "registration".into(),
        ip: extract::client_ip(req, state).map(|ip| ip.to_string()),
    }
}

/// POST /register
pub async fn register(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: web::Bytes,
) -> HttpResponse {
    let m = match metadata(&body) {
        Ok(m) => m,
        Err(e) => {
            state.metrics.registration(registration_result(&e));
            return error(&e);
        }
    };
    let token = bearer(&req);
    let (policy, now, actor) = (policy(&req, &state), state.clock.now(), actor(&req, &state));
    let result = state
        .db
        .run(move |conn| registration::register(conn, &m, token.as_deref(), &policy, &actor, now))
        .await;
    state.metrics.registration(match &result {
        Ok(_) => RegistrationResult::Created,
        Err(e) => registration_result(e),
    });
    match result {
        Ok(info) => no_store_json(StatusCode::CREATED, &info),
        Err(e) => error(&e),
    }
}

/// The metrics label of a refused registration.
fn registration_result(e: &RegistrationError) -> RegistrationResult {
    match e {
        RegistrationError::InvalidRedirectUri(_) => RegistrationResult::InvalidRedirectUri,
        RegistrationError::InvalidClientMetadata(_) => RegistrationResult::InvalidClientMetadata,
        RegistrationError::InvalidToken(_) => RegistrationResult::InvalidToken,
        RegistrationError::TooMany { .. } => RegistrationResult::Throttled,
        RegistrationError::Service(_) => RegistrationResult::Error,
    }
}

fn missing_token() -> HttpResponse {
    error(&RegistrationError::InvalidToken(
        "a registration access token is required",
    ))
}

/// GET /register/{client_id}
pub async fn read(
    req: HttpRequest,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> HttpResponse {
    let Some(token) = bearer(&req) else {
        return missing_token();
    };
    let (id, issuer) = (id.into_inner(), state.config.issuer.clone());
    match state
        .db
        .run(move |conn| registration::read(conn, &id, &token, &issuer))
        .await
    {
        Ok(info) => no_store_json(StatusCode::OK, &info),
        Err(e) => error(&e),
    }
}

/// PUT /register/{client_id}
pub async fn update(
    req: HttpRequest,
    state: web::Data<AppState>,
    id: web::Path<String>,
    body: web::Bytes,
) -> HttpResponse {
    let Some(token) = bearer(&req) else {
        return missing_token();
    };
    let m = match metadata(&body) {
        Ok(m) => m,
        Err(e) => return error(&e),
    };
    let (id, policy, now) = (id.into_inner(), policy(&req, &state), state.clock.now());
    let cache_id = id.clone();
    let result = state
        .db
        .run(move |conn| registration::update(conn, &id, &token, &m, &policy, now))
        .await;
    state.clients.forget(&cache_id);
    match result {
        Ok(info) => no_store_json(StatusCode::OK, &info),
        Err(e) => error(&e),
    }
}

/// DELETE /register/{client_id}
pub async fn delete(
    req: HttpRequest,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> HttpResponse {
    let Some(token) = bearer(&req) else {
        return missing_token();
    };
    let (id, now, actor) = (id.into_inner(), state.clock.now(), actor(&req, &state));
    let cache_id = id.clone();
    let result = state
        .db
        .run(move |conn| registration::delete(conn, &id, &token, &actor, now))
        .await;
    state.clients.forget(&cache_id);
    match result {
        Ok(()) => HttpResponse::NoContent().finish(),
        Err(e) => error(&e),
    }
}

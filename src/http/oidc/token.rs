//! `POST /token` (RFC 6749 3.2): reads the form or JSON body and the
//! client's credentials, then hands over to `service::token::token`.

use actix_web::http::StatusCode;
use actix_web::http::header::CONTENT_TYPE;
use actix_web::{HttpRequest, HttpResponse, web};

use super::credentials;
use super::response::{no_store_json, oauth_error};
use crate::oidc::OAuthError;
use crate::service::token::{self, PasswordLogin, TokenContext, TokenRequest};
use crate::state::AppState;
use crate::telemetry::metrics::grant_label;

/// Reads a protocol request body: `application/x-www-form-urlencoded`
/// (strict UTF-8) or, for the token endpoint, `application/json`.
pub fn parse_body<T: serde::de::DeserializeOwned>(
    req: &HttpRequest,
    body: &[u8],
    json_ok: bool,
) -> Result<T, OAuthError> {
    let ctype = req
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|v| v.trim().to_ascii_lowercase())
        .unwrap_or_default();
    match ctype.as_str() {
        "application/x-www-form-urlencoded" => crate::http::form::parse(body)
            .map_err(|e| OAuthError::invalid_request(format!("malformed body: {e}"))),
        "application/json" if json_ok => serde_json::from_slice(body)
            .map_err(|_| OAuthError::invalid_request("malformed JSON body")),
        _ => Err(OAuthError::invalid_request(
            "expected an application/x-www-form-urlencoded body",
        )),
    }
}

pub async fn token(req: HttpRequest, state: web::Data<AppState>, body: web::Bytes) -> HttpResponse {
    match run(&req, &state, &body).await {
        Ok(resp) => no_store_json(StatusCode::OK, &resp),
        Err(e) => oauth_error(&e),
    }
}

async fn run(
    req: &HttpRequest,
    state: &AppState,
    body: &[u8],
) -> Result<token::TokenResponse, OAuthError> {
    // Refused before the service sees it: counted here (the service
    // counts everything else).
    let rejected = |grant: Option<&str>, e: OAuthError| {
        state
            .metrics
            .token_error(grant_label(grant), e.error.as_str(), None);
        e
    };
    let tr: TokenRequest = parse_body(req, body, true).map_err(|e| rejected(None, e))?;
    let presented =
        credentials::presented(req, tr.client_id.as_deref(), tr.client_secret.as_deref())
            .map_err(|e| rejected(tr.grant_type.as_deref(), e))?;
    let ctx = TokenContext::new(&state.config, &state.keys, state.clock.now());
    let password = state.config.legacy.password_grant.then(|| PasswordLogin {
        gate: state.password_gate.clone(),
        throttle: state.throttle_policy,
        ip: crate::http::extract::client_ip(req, state),
    });
    token::token(
        &state.db,
        &state.clients,
        &state.scopes,
        presented,
        tr,
        ctx,
        password,
    )
    .await
}

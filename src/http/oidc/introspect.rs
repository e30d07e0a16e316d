//! `POST /introspect` (RFC 7662) and `POST /revoke` (RFC 7009): read the
//! form and the client's credentials, call `service::introspection`.

use actix_web::http::StatusCode;
use actix_web::http::header::CACHE_CONTROL;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;

use super::credentials;
use super::response::{no_store_json, oauth_error};
use crate::oidc::OAuthError;
use crate::service::introspection;
use crate::service::token::{PresentedClient, TokenContext};
use crate::state::AppState;

#[derive(Deserialize)]
pub struct TokenParam {
    token: Option<String>,
    #[allow(dead_code)]
    token_type_hint: Option<String>,
    client_id: Option<String>,
    client_secret: Option<String>,
}

fn read(req: &HttpRequest, body: &[u8]) -> Result<(PresentedClient, Option<String>), OAuthError> {
    let p: TokenParam = super::token::parse_body(req, body, false)?;
    let presented =
        credentials::presented(req, p.client_id.as_deref(), p.client_secret.as_deref())?;
    Ok((presented, p.token))
}

pub async fn introspect(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: web::Bytes,
) -> HttpResponse {
    let (presented, token) = match read(&req, &body) {
        Ok(v) => v,
        Err(e) => return oauth_error(&e),
    };
    let ctx = TokenContext::new(&state.config, &state.keys, state.clock.now());
    match introspection::introspect(&state.db, &state.clients, presented, token, ctx).await {
        Ok(answer) => no_store_json(StatusCode::OK, &answer),
        Err(e) => oauth_error(&e),
    }
}

pub async fn revoke(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: web::Bytes,
) -> HttpResponse {
    let (presented, token) = match read(&req, &body) {
        Ok(v) => v,
        Err(e) => return oauth_error(&e),
    };
    let ctx = TokenContext::new(&state.config, &state.keys, state.clock.now());
    match introspection::revoke(&state.db, &state.clients, presented, token, ctx).await {
        Ok(()) => HttpResponse::Ok()
            .insert_header((CACHE_CONTROL, "no-store"))
            .finish(),
        Err(e) => oauth_error(&e),
    }
}

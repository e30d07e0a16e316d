//! `GET/POST /userinfo` (OIDC Core 5.3): reads the bearer token (header,
//! or form body per RFC 6750 2.2) and calls `service::userinfo`.

use actix_web::http::StatusCode;
use actix_web::http::header::AUTHORIZATION;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;

use super::response::{bearer_error, no_store_json};
use crate::oidc::{ErrorCode, OAuthError};
use crate::service::token::TokenContext;
use crate::service::userinfo;
use crate::state::AppState;

#[derive(Deserialize)]
pub struct BodyToken {
    access_token: Option<String>,
}

fn bearer(req: &HttpRequest) -> Result<Option<String>, OAuthError> {
    let Some(h) = req.headers().get(AUTHORIZATION) else {
        return Ok(None);
    };
    let v = h
        .to_str()
        .map_err(|_| OAuthError::invalid_request("malformed Authorization header"))?;
    match v.split_once(' ') {
        Some((scheme, token))
            if scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty() =>
        {
            Ok(Some(token.trim().to_owned()))
        }
        _ => Err(OAuthError::invalid_request("expected a Bearer token")),
    }
}

pub async fn show(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: web::Bytes,
    query: web::Query<BodyToken>,
) -> HttpResponse {
    let header_token = match bearer(&req) {
        Ok(t) => t,
        Err(e) => return bearer_error(Some(&e), None),
    };
    let body_token = if body.is_empty() {
        None
    } else {
        match super::token::parse_body::<BodyToken>(&req, &body, false) {
            Ok(b) => b.access_token,
            Err(e) => return bearer_error(Some(&e), None),
        }
    };
    let query_token = match query.into_inner().access_token {
        Some(_) if !state.config.tokens.allow_query_access_token => {
            let e = OAuthError::invalid_request(
                "access tokens in the URL are not accepted; use the Authorization header",
            );
            return bearer_error(Some(&e), None);
        }
        t => t,
    };
    let body_token = match (body_token, query_token) {
        (Some(_), Some(_)) => {
            return bearer_error(
                Some(&OAuthError::invalid_request("send the token one way only")),
                None,
            );
        }
        (b, q) => b.or(q),
    };
    let token = match (header_token, body_token) {
        (Some(_), Some(_)) => {
            return bearer_error(
                Some(&OAuthError::invalid_request("send the token one way only")),
                None,
            );
        }
        (Some(t), None) | (None, Some(t)) => t,
        (None, None) => return bearer_error(None, None),
    };
    let ctx = TokenContext::new(&state.config, &state.keys, state.clock.now());
    match userinfo::userinfo(&state.db, &token, ctx).await {
        Ok(claims) => no_store_json(StatusCode::OK, &claims),
        Err(e) if e.error == ErrorCode::InsufficientScope => {
            bearer_error(Some(&e), Some(userinfo::REQUIRED_SCOPE))
        }
        Err(e)
            if matches!(
                e.error,
                ErrorCode::ServerError | ErrorCode::TemporarilyUnavailable
            ) =>
        {
            super::response::oauth_error(&e)
        }
        Err(e) => bearer_error(Some(&e), None),
    }
}

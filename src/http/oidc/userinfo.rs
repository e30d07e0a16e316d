//! `GET/POST /userinfo` (OIDC Core 5.3): claims by granted scope for the
//! bearer of a valid access token (header, or form body per RFC 6750 2.2).

use actix_web::http::StatusCode;
use actix_web::http::header::AUTHORIZATION;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;

use super::response::{bearer_error, no_store_json};
use crate::app::AppState;
use crate::oidc::OAuthError;
use crate::oidc::claims::user_claims;
use crate::service::access;
use crate::store::repo;

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

pub async fn userinfo(
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
    let now = state.clock.now();
    let claims = match access::verify(&state.keys.current(), &token, &state.config.issuer, now) {
        Ok(c) => c,
        Err(e) => return bearer_error(Some(&e), None),
    };
    if !claims.is_for_this_server(state.config.default_audience(), &state.config.issuer) {
        return bearer_error(
            Some(&OAuthError::invalid_token(
                "the token is not for this audience",
            )),
            None,
        );
    }
    if !claims.scope.contains("openid") {
        return bearer_error(
            Some(&OAuthError::insufficient_scope(
                "the openid scope is required",
            )),
            Some("openid"),
        );
    }
    let c = claims.clone();
    let user = state
        .db
        .run(move |conn| {
            if access::is_revoked(conn, &c)? {
                return Ok(None);
            }
            let Some(user) = repo::users::by_id(conn, &c.sub)?.filter(|u| !u.disabled) else {
                return Ok(None);
            };
            let groups = if c.scope.contains("groups") {
                repo::groups::names_for_user(conn, &user.id)?
            } else {
                Vec::new()
            };
            Ok::<_, crate::store::StoreError>(Some((user, groups)))
        })
        .await;
    match user {
        Ok(Some((user, groups))) => {
            no_store_json(StatusCode::OK, &user_claims(&user, &claims.scope, &groups))
        }
        Ok(None) => bearer_error(
            Some(&OAuthError::invalid_token("the access token was revoked")),
            None,
        ),
        Err(e) => super::response::oauth_error(&OAuthError::from(e)),
    }
}

//! Protocol responses: JSON with `Cache-Control: no-store`, OAuth error
//! bodies with the spec's status and `WWW-Authenticate` where required.

use actix_web::HttpResponse;
use actix_web::http::StatusCode;
use actix_web::http::header::{CACHE_CONTROL, PRAGMA, WWW_AUTHENTICATE};
use serde::Serialize;

use crate::oidc::{ErrorCode, OAuthError};

/// What a 503 tells clients to wait before trying again (RFC 9110 10.2.3).
pub const RETRY_AFTER_SECS: &str = "5";

pub fn no_store_json<T: Serialize>(status: StatusCode, body: &T) -> HttpResponse {
    HttpResponse::build(status)
        .insert_header((CACHE_CONTROL, "no-store"))
        .insert_header((PRAGMA, "no-cache"))
        .json(body)
}

/// An RFC 6749 5.2 error from the token, introspection or revocation
/// endpoint. `invalid_client` carries a Basic challenge (RFC 6749 5.2).
/// `resp` with `Retry-After: secs` (a limit was reached: 429, or 503).
pub fn with_retry_after(mut resp: HttpResponse, secs: u64) -> HttpResponse {
    resp.headers_mut().insert(
        actix_web::http::header::RETRY_AFTER,
        actix_web::http::header::HeaderValue::from(secs),
    );
    resp
}

pub fn oauth_error(e: &OAuthError) -> HttpResponse {
    let status = StatusCode::from_u16(e.status()).unwrap_or(StatusCode::BAD_REQUEST);
    let mut resp = no_store_json(status, e);
    if e.error == ErrorCode::TemporarilyUnavailable {
        resp.headers_mut().insert(
            actix_web::http::header::RETRY_AFTER,
            actix_web::http::header::HeaderValue::from_static(RETRY_AFTER_SECS),
        );
    }
    if e.error == ErrorCode::InvalidClient {
        resp.headers_mut().insert(
            WWW_AUTHENTICATE,
            actix_web::http::header::HeaderValue::from_static("Basic realm=\"latchkey\""),
        );
    }
    resp
}

fn quote(s: &str) -> String {
    s.chars()
        .filter(|c| *c != '"' && *c != '\\' && !c.is_control())
        .collect()
}

/// An RFC 6750 3.1 error from a protected resource (userinfo).
pub fn bearer_error(e: Option<&OAuthError>, required_scope: Option<&str>) -> HttpResponse {
    let mut challenge = String::from("Bearer realm=\"latchkey\"");
    let status = match e {
        None => StatusCode::UNAUTHORIZED,
        Some(e) => {
            challenge.push_str(&format!(
                ", error=\"{}\", error_description=\"{}\"",
                e.error.as_str(),
                quote(&e.error_description)
            ));
            if let Some(s) = required_scope {
                challenge.push_str(&format!(", scope=\"{}\"", quote(s)));
            }
            StatusCode::from_u16(e.status()).unwrap_or(StatusCode::UNAUTHORIZED)
        }
    };
    let mut resp = match e {
        Some(e) => no_store_json(status, e),
        None => HttpResponse::build(status)
            .insert_header((CACHE_CONTROL, "no-store"))
            .finish(),
    };
    if let Ok(v) = actix_web::http::header::HeaderValue::from_str(&challenge) {
        resp.headers_mut().insert(WWW_AUTHENTICATE, v);
    }
    resp
}

//! Request helpers shared by handlers: the client IP, the browser session,
//! and the answer to unreadable forms.

use std::net::IpAddr;

use actix_web::HttpRequest;

use crate::domain::net;
use crate::http::error::AppError;
use crate::service::sessions::{self, ActiveSession, SessionMeta};
use crate::state::AppState;

/// The client's IP: the socket peer, or, with `server.trust_forwarded_for`,
/// the right-most `X-Forwarded-For` entry not from a trusted proxy
/// (`domain::net::client_behind_proxies`).
pub fn client_ip(req: &HttpRequest, state: &AppState) -> Option<IpAddr> {
    let peer = req.peer_addr()?.ip();
    if !state.config.server.trust_forwarded_for {
        return Some(peer);
    }
    let forwarded: Vec<&str> = req
        .headers()
        .get_all("x-forwarded-for")
        .filter_map(|v| v.to_str().ok())
        .collect();
    Some(net::client_behind_proxies(
        peer,
        &forwarded,
        &state.trusted_proxies,
    ))
}

pub fn session_meta(req: &HttpRequest, state: &AppState) -> SessionMeta {
    SessionMeta {
        ip: client_ip(req, state).map(|ip| ip.to_string()),
        user_agent: req
            .headers()
            .get(actix_web::http::header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
    }
}

/// The token of an `Authorization: Bearer …` header (RFC 6750 2.1; the
/// scheme is case-insensitive). `Ok(None)`: no header, another scheme or
/// an empty token, i.e. no bearer credentials. `Err`: a header that is not
/// visible ASCII.
pub fn bearer_token(req: &HttpRequest) -> Result<Option<String>, MalformedAuthorization> {
    let Some(h) = req.headers().get(actix_web::http::header::AUTHORIZATION) else {
        return Ok(None);
    };
    let v = h.to_str().map_err(|_| MalformedAuthorization)?;
    Ok(match v.split_once(' ') {
        Some((scheme, token))
            if scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty() =>
        {
            Some(token.trim().to_owned())
        }
        _ => None,
    })
}

/// An `Authorization` header that is not visible ASCII.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MalformedAuthorization;

/// The signed-in session for this request, if any (expired ones read as none).
pub async fn current_session(
    req: &HttpRequest,
    state: &AppState,
) -> Result<Option<ActiveSession>, AppError> {
    let Some(cookie) = req.cookie(state.cookies.session_name()) else {
        return Ok(None);
    };
    let value = cookie.value().to_owned();
    if value.len() != 43 {
        return Ok(None);
    }
    let now = state.clock.now();
    let policy = state.session_policy;
    state
        .db
        .run(move |conn| sessions::resolve(conn, &value, now, policy))
        .await
        .map_err(AppError::from)
}

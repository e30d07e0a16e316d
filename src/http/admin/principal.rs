//! Who is administering: for the JSON API, the bearer of a Latchkey access
//! token with the `latchkey:admin` scope (a client via `client_credentials`,
//! or an admin user's own authorization); for the console, a signed-in
//! admin's browser session. Either way an [`Actor`] for the audit log.

use actix_web::HttpRequest;

use super::error::ApiError;
use crate::domain::audit::Actor;
use crate::domain::scope::ADMIN_SCOPE;
use crate::http::extract;
use crate::service::access;
use crate::state::AppState;
use crate::store::{StoreError, repo};

fn bearer(req: &HttpRequest) -> Result<String, ApiError> {
    match extract::bearer_token(req) {
        Ok(Some(token)) => Ok(token),
        Ok(None) => Err(ApiError::unauthenticated(None)),
        Err(_) => Err(ApiError::invalid_request("malformed Authorization header")),
    }
}

/// Checks the API caller: a valid, unrevoked access token for this issuer
/// carrying `latchkey:admin`; for a user's token, the user must still be
/// an enabled admin.
pub async fn api_caller(req: &HttpRequest, state: &AppState) -> Result<Actor, ApiError> {
    let token = bearer(req)?;
    let now = state.clock.now();
    let claims = access::verify(&state.keys.current(), &token, &state.config.issuer, now)
        .map_err(|_| ApiError::unauthenticated(Some("the access token is invalid or expired")))?;
    if !claims.is_for_this_server(state.config.default_audience(), &state.config.issuer) {
        return Err(ApiError::unauthenticated(Some(
            "the access token is not for this server",
        )));
    }
    if !claims.scope.contains(ADMIN_SCOPE) {
        return Err(ApiError::insufficient_scope());
    }
    let ip = extract::client_ip(req, state);
    let c = claims.clone();
    let who = state
        .db
        .run(move |conn| {
            if access::is_revoked(conn, &c)? {
                return Ok::<_, StoreError>(Err(ApiError::unauthenticated(Some(
                    "the access token was revoked",
                ))));
            }
            if c.auth_time.is_none() && c.sub == c.client_id {
                return Ok(Ok(format!("client:{}", c.client_id)));
            }
            Ok(match repo::users::by_id(conn, &c.sub)? {
                Some(u) if u.is_admin && !u.disabled => Ok(format!("user:{}", u.username)),
                _ => Err(ApiError::forbidden(
                    "this token no longer grants admin rights",
                )),
            })
        })
        .await
        .map_err(ApiError::from_store)?;
    who.map(|name| Actor { name, ip })
}

/// The caller [`require_admin`](super) authenticated for this request.
pub fn authenticated(req: &HttpRequest) -> Result<Actor, ApiError> {
    use actix_web::HttpMessage;
    req.extensions()
        .get::<Actor>()
        .cloned()
        .ok_or_else(|| ApiError::unauthenticated(None))
}

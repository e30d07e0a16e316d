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
use crate::service::admin::{self, TokenHolder};
use crate::state::AppState;

fn bearer(req: &HttpRequest) -> Result<String, ApiError> {
    match extract::bearer_token(req) {
        Ok(Some(token)) => Ok(token),
        Ok(None) => Err(ApiError::unauthenticated(None)),
        Err(_) => Err(ApiError::invalid_request("malformed Authorization header")),
    }
}

/// Checks the API caller: a valid, unrevoked access token for this issuer
/// carrying `latchkey:admin`; for a user's token, the user must still be
/// an enabled admin; for a client's own token, the client must still exist,
/// hold `latchkey:admin`, and not have changed its secret since.
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
    let ip = extract::client_ip(req, state).map(|ip| ip.to_string());
    let holder = state
        .db
        .run(move |conn| admin::token_holder(conn, &claims))
        .await?;
    match holder {
        TokenHolder::Admin(name) => Ok(Actor { name, ip }),
        TokenHolder::Revoked(why) => Err(ApiError::unauthenticated(Some(why))),
        TokenHolder::NoLongerAdmin => Err(ApiError::forbidden(
            "this token no longer grants admin rights",
        )),
    }
}

/// The caller [`require_admin`](super) authenticated for this request.
pub fn authenticated(req: &HttpRequest) -> Result<Actor, ApiError> {
    use actix_web::HttpMessage;
    req.extensions()
        .get::<Actor>()
        .cloned()
        .ok_or_else(|| ApiError::unauthenticated(None))
}

//! Reading client credentials from a request: HTTP Basic (RFC 6749 2.3.1,
//! both parts form-urlencoded) or `client_id`/`client_secret` in the body.
//! Using both methods at once is an error.

use actix_web::HttpRequest;
use actix_web::http::header::AUTHORIZATION;
use base64::Engine;

use crate::app::AppState;
use crate::oidc::OAuthError;
use crate::service::ServiceError;
use crate::service::clients::{self, Client};
use crate::service::token::PresentedClient;
use crate::service::token::client_auth::authenticate;

pub fn presented(
    req: &HttpRequest,
    body_client_id: Option<&str>,
    body_secret: Option<&str>,
) -> Result<PresentedClient, OAuthError> {
    let bad = || OAuthError::invalid_client("malformed client credentials");
    if let Some(h) = req.headers().get(AUTHORIZATION) {
        let v = h.to_str().map_err(|_| bad())?;
        let Some(b64) = v
            .strip_prefix("Basic ")
            .or_else(|| v.strip_prefix("basic "))
        else {
            return Err(bad());
        };
        let raw = base64::engine::general_purpose::STANDARD
            .decode(b64.trim())
            .map_err(|_| bad())?;
        let raw = String::from_utf8(raw).map_err(|_| bad())?;
        let (id, secret) = raw.split_once(':').ok_or_else(bad)?;
        let decode = |s: &str| {
            percent_encoding::percent_decode_str(&s.replace('+', " "))
                .decode_utf8()
                .map(|c| c.into_owned())
                .map_err(|_| bad())
        };
        let (id, secret) = (decode(id)?, decode(secret)?);
        if body_secret.is_some() {
            return Err(OAuthError::invalid_request(
                "use one client authentication method, not two",
            ));
        }
        if body_client_id.is_some_and(|b| b != id) {
            return Err(OAuthError::invalid_request(
                "client_id does not match the Authorization header",
            ));
        }
        return Ok(PresentedClient {
            client_id: id,
            secret: Some(secret),
        });
    }
    match body_client_id {
        Some(id) => Ok(PresentedClient {
            client_id: id.to_owned(),
            secret: body_secret.map(str::to_owned),
        }),
        None => Err(OAuthError::invalid_client(
            "client authentication is required",
        )),
    }
}

/// Looks the client up (cache first) and checks its credentials.
pub async fn authenticated(
    state: &AppState,
    presented: &PresentedClient,
) -> Result<std::sync::Arc<Client>, OAuthError> {
    if presented.client_id.is_empty()
        || presented.client_id.len() > crate::domain::client::CLIENT_ID_MAX
    {
        return Err(OAuthError::invalid_client("client authentication failed"));
    }
    let client = match state.clients.get(&presented.client_id) {
        Some(c) => Some(c),
        None => {
            let id = presented.client_id.clone();
            let found = state
                .db
                .run(move |conn| clients::find_optional(conn, &id))
                .await
                .map_err(|e| match e {
                    ServiceError::Unavailable(_) => {
                        OAuthError::temporarily_unavailable("storage unavailable")
                    }
                    _ => OAuthError::server_error("storage error"),
                })?;
            found.map(|c| state.clients.put(c))
        }
    };
    authenticate(presented, client.as_deref())?;
    client.ok_or_else(|| OAuthError::invalid_client("client authentication failed"))
}

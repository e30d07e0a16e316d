//! Reading client credentials from a request: HTTP Basic (RFC 6749 2.3.1,
//! both parts form-urlencoded) or `client_id`/`client_secret` in the body.
//! Using both methods at once is an error. Checking them is
//! `service::token::authenticate_client`.

use actix_web::HttpRequest;
use actix_web::http::header::AUTHORIZATION;
use base64::Engine;

use crate::oidc::OAuthError;
use crate::service::token::PresentedClient;

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

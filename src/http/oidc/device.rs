//! `POST /device/authorize`, the device authorization endpoint (RFC 8628
//! 3.1): reads the form and the client's credentials, then hands over to
//! `service::device::start`. Errors are RFC 6749 5.2 answers.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};

use super::credentials;
use super::response::{no_store_json, oauth_error, with_retry_after};
use super::token::parse_body;
use crate::http::extract;
use crate::oidc::device::{DeviceAuthorizationRequest, DeviceAuthorizationResponse};
use crate::service::device::{self, StartContext, StartError};
use crate::state::AppState;

pub async fn authorize(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: web::Bytes,
) -> HttpResponse {
    match run(&req, &state, &body).await {
        Ok(resp) => no_store_json(StatusCode::OK, &resp),
        Err(StartError::OAuth(e)) => oauth_error(&e),
        Err(StartError::TooMany { retry_after_secs }) => with_retry_after(
            no_store_json(
                StatusCode::TOO_MANY_REQUESTS,
                &serde_json::json!({
                    "error": "temporarily_unavailable",
                    "error_description": format!(
                        "too many device authorizations from this network; retry in {retry_after_secs} s"
                    ),
                }),
            ),
            retry_after_secs,
        ),
    }
}

async fn run(
    req: &HttpRequest,
    state: &AppState,
    body: &[u8],
) -> Result<DeviceAuthorizationResponse, StartError> {
    let dr: DeviceAuthorizationRequest = parse_body(req, body, false)?;
    let presented =
        credentials::presented(req, dr.client_id.as_deref(), dr.client_secret.as_deref())?;
    let network = extract::client_ip(req, state).map(crate::domain::net::throttle_key);
    let ctx =
        StartContext::new(&state.config, &state.keys, state.clock.now()).from_network(network);
    device::start(&state.db, &state.clients, presented, dr, ctx).await
}

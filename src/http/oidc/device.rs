//! `POST /device/authorize`, the device authorization endpoint (RFC 8628
//! 3.1): reads the form and the client's credentials, then hands over to
//! `service::device::start`. Errors are RFC 6749 5.2 answers.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};

use super::credentials;
use super::response::{no_store_json, oauth_error};
use super::token::parse_body;
use crate::oidc::OAuthError;
use crate::oidc::device::{DeviceAuthorizationRequest, DeviceAuthorizationResponse};
use crate::service::device::{self, StartContext};
use crate::state::AppState;

pub async fn authorize(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: web::Bytes,
) -> HttpResponse {
    match run(&req, &state, &body).await {
        Ok(resp) => no_store_json(StatusCode::OK, &resp),
        Err(e) => oauth_error(&e),
    }
}

async fn run(
    req: &HttpRequest,
    state: &AppState,
    body: &[u8],
) -> Result<DeviceAuthorizationResponse, OAuthError> {
    let dr: DeviceAuthorizationRequest = parse_body(req, body, false)?;
    let presented =
        credentials::presented(req, dr.client_id.as_deref(), dr.client_secret.as_deref())?;
    let ctx = StartContext::new(&state.config, &state.keys, state.clock.now());
    device::start(&state.db, &state.clients, presented, dr, ctx).await
}

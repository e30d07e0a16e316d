//! The `end_session_endpoint` (OpenID Connect RP-Initiated Logout 1.0),
//! GET and POST: read the parameters strictly (each at most once), ask
//! `service::end_session`, render with the sign-out pages of
//! `http::ui::logout`.

use actix_web::{HttpRequest, HttpResponse, ResponseError, web};

use crate::http::error::AppError;
use crate::http::form::{self, Form};
use crate::http::ui::logout;
use crate::oidc::end_session::EndSessionParams;
use crate::state::AppState;

/// Where the endpoint is mounted (and advertised in discovery).
pub const PATH: &str = "/logout/end";

pub async fn get(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, AppError> {
    match form::parse::<Vec<(String, String)>>(req.query_string().as_bytes()) {
        Ok(pairs) => handle(&req, &state, &pairs).await,
        Err(e) => Ok(e.error_response()),
    }
}

pub async fn post(
    req: HttpRequest,
    state: web::Data<AppState>,
    form: Form<Vec<(String, String)>>,
) -> Result<HttpResponse, AppError> {
    handle(&req, &state, &form).await
}

async fn handle(
    req: &HttpRequest,
    state: &AppState,
    pairs: &[(String, String)],
) -> Result<HttpResponse, AppError> {
    let params = match EndSessionParams::from_pairs(pairs) {
        Ok(p) => p,
        Err(e) => return Ok(logout::refused(&e)),
    };
    let ctx = logout::context(state);
    let outcome =
        crate::service::end_session::request(&ctx, params, logout::session_cookie(req, state))
            .await?;
    logout::render(req, state, outcome)
}

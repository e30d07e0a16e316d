use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;
use tera::Context;

use crate::http::error::AppError;
use crate::http::form::Form;
use crate::http::{csrf, extract, templates};
use crate::service::sessions;
use crate::state::AppState;

#[derive(Deserialize)]
pub struct LogoutForm {
    csrf_token: String,
}

/// GET /logout: a confirmation form (a GET never signs anyone out, so a
/// link or image on another site cannot).
pub async fn show(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, AppError> {
    let Some(session) = extract::current_session(&req, &state).await? else {
        return Ok(templates::page(
            StatusCode::OK,
            "signed_out.html",
            &Context::new(),
        ));
    };
    let mut ctx = Context::new();
    ctx.insert("username", &session.user.username);
    csrf::form_page(&req, &state, StatusCode::OK, "logout.html", ctx)
}

/// POST /logout: end the session and clear its cookie.
pub async fn submit(
    req: HttpRequest,
    state: web::Data<AppState>,
    form: Form<LogoutForm>,
) -> Result<HttpResponse, AppError> {
    csrf::verify(&req, &state, &form.csrf_token)?;
    if let Some(cookie) = req.cookie(state.cookies.session_name()) {
        let value = cookie.value().to_owned();
        let (policy, now) = (state.logout_policy, state.clock.now());
        let ended = state
            .db
            .run(move |conn| sessions::end_with(conn, &value, policy, now))
            .await?;
        tracing::info!(logout_tokens = ended.logout_tokens, "signed out");
    }
    let mut resp = templates::page(StatusCode::OK, "signed_out.html", &Context::new());
    resp.add_cookie(&state.cookies.clear_session())
        .map_err(|e| AppError::Internal(e.to_string()))?;
    Ok(resp)
}

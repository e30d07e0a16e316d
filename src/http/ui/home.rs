use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use tera::Context;

use crate::http::error::AppError;
use crate::http::{csrf, extract, templates};
use crate::state::AppState;

/// The start page: who is signed in, with a sign-out button.
pub async fn show(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, AppError> {
    let session = extract::current_session(&req, &state).await?;
    let mut ctx = Context::new();
    let mut new_csrf = None;
    if let Some(s) = &session {
        let (token, fresh) = csrf::token_for_form(&req, &state)?;
        ctx.insert("username", &s.user.username);
        ctx.insert(
            "display_name",
            s.user.name.as_deref().unwrap_or(&s.user.username),
        );
        ctx.insert("csrf_token", &token);
        new_csrf = fresh.then_some(token);
    }
    let mut resp = templates::page(StatusCode::OK, "home.html", &ctx);
    if let Some(token) = new_csrf {
        resp.add_cookie(&state.cookies.csrf(&token))
            .map_err(|e| AppError::Internal(e.to_string()))?;
    }
    Ok(resp)
}

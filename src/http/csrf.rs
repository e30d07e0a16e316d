//! CSRF protection for every form: a random token in an HttpOnly cookie,
//! echoed in a hidden form field and compared in constant time (double
//! submit). A cross-site page can neither read the cookie nor set it, and
//! the SameSite=Lax cookie is not sent on cross-site POSTs anyway. As a
//! second check, a present `Origin` header must be the issuer's origin.

use actix_web::HttpRequest;
use actix_web::http::header::ORIGIN;

use crate::domain::secret::{OpaqueSecret, ct_eq};
use crate::http::error::AppError;
use crate::state::AppState;

/// The token for a form being rendered: the current cookie's, or a new one
/// that the caller must set as a cookie (`Some` second value).
pub fn token_for_form(req: &HttpRequest, state: &AppState) -> Result<(String, bool), AppError> {
    if let Some(c) = req.cookie(state.cookies.csrf_name())
        && c.value().len() == 43
    {
        return Ok((c.value().to_owned(), false));
    }
    let fresh = OpaqueSecret::generate().map_err(|e| AppError::Internal(e.to_string()))?;
    Ok((fresh.expose().to_owned(), true))
}

const REJECTED: &str =
    "This form expired or was sent from another site. Go back, reload the page and try again.";

/// Checks a submitted form token against the cookie and the request origin.
pub fn verify(req: &HttpRequest, state: &AppState, submitted: &str) -> Result<(), AppError> {
    if let Some(origin) = req.headers().get(ORIGIN)
        && origin.as_bytes() != state.issuer_origin.as_bytes()
    {
        return Err(AppError::Forbidden(REJECTED.into()));
    }
    let cookie = req.cookie(state.cookies.csrf_name());
    match cookie {
        Some(c) if c.value().len() == 43 && ct_eq(c.value().as_bytes(), submitted.as_bytes()) => {
            Ok(())
        }
        _ => Err(AppError::Forbidden(REJECTED.into())),
    }
}

/// Renders a page that holds a form: puts `csrf_token` into the context and
/// sets the CSRF cookie when this browser has none yet.
pub fn form_page(
    req: &HttpRequest,
    state: &AppState,
    status: actix_web::http::StatusCode,
    template: &str,
    mut ctx: tera::Context,
) -> Result<actix_web::HttpResponse, AppError> {
    let (token, fresh) = token_for_form(req, state)?;
    ctx.insert("csrf_token", &token);
    let mut resp = crate::http::templates::page(status, template, &ctx);
    if fresh {
        resp.add_cookie(&state.cookies.csrf(&token))
            .map_err(|e| AppError::Internal(e.to_string()))?;
    }
    Ok(resp)
}

//! Signing out: `GET /logout` (Latchkey's own sign-out page: RP-initiated
//! logout without parameters), `POST /logout` (the confirmation form, also
//! the start page's "Sign out" button), and the pages and redirects every
//! sign-out answer is rendered as (`http::oidc::end_session` uses them).

use actix_web::http::StatusCode;
use actix_web::http::header::LOCATION;
use actix_web::{HttpRequest, HttpResponse, web};
use tera::Context;

use crate::http::error::AppError;
use crate::http::form::Form;
use crate::http::{csrf, templates};
use crate::oidc::OAuthError;
use crate::oidc::end_session::{EndSessionParams, single_values};
use crate::service::end_session::{self, Answer, EndSessionContext, Outcome};
use crate::state::AppState;

pub fn context(state: &AppState) -> EndSessionContext<'_> {
    EndSessionContext {
        db: &state.db,
        keys: state.keys.current(),
        issuer: &state.config.issuer,
        now: state.clock.now(),
        policy: state.session_policy,
        logout: state.logout_policy,
    }
}

/// The session cookie's value, if the browser sent one.
pub fn session_cookie(req: &HttpRequest, state: &AppState) -> Option<String> {
    req.cookie(state.cookies.session_name())
        .map(|c| c.value().to_owned())
}

/// The error page for a request that cannot be honoured (never a
/// redirect: the redirect URI is not trusted). Logged without the request's
/// values (a hint is a token).
pub fn refused(e: &OAuthError) -> HttpResponse {
    tracing::info!(error = %e.error, reason = %e.error_description, "sign-out request refused");
    templates::error_page(
        StatusCode::BAD_REQUEST,
        "Cannot sign out",
        &format!(
            "This sign-out request was refused: {} ({}).",
            e.error_description, e.error
        ),
    )
}

fn see_other(location: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((LOCATION, location))
        .finish()
}

/// Turns the service's outcome into a page or a redirect.
pub fn render(
    req: &HttpRequest,
    state: &AppState,
    outcome: Outcome,
) -> Result<HttpResponse, AppError> {
    match outcome {
        Outcome::Error(e) => Ok(refused(&e)),
        Outcome::Confirm(c) => {
            let mut ctx = Context::new();
            ctx.insert("username", &c.username);
            ctx.insert("app_name", &c.app_name);
            ctx.insert("unverified", &c.unverified);
            ctx.insert("params", &c.carried);
            csrf::form_page(req, state, StatusCode::OK, "logout.html", ctx)
        }
        Outcome::SignedOut(to) => {
            let mut resp = match to {
                Some(r) => see_other(&r.location()),
                None => templates::page(StatusCode::OK, "signed_out.html", &Context::new()),
            };
            resp.add_cookie(&state.cookies.clear_session())
                .map_err(|e| AppError::Internal(e.to_string()))?;
            Ok(resp)
        }
        Outcome::StayedSignedIn(to) => Ok(see_other(
            &to.map_or_else(|| "/".to_owned(), |r| r.location()),
        )),
    }
}

/// GET /logout: the confirmation form (a GET never signs anyone out
/// without a hint from this session, so a link or image on another site
/// cannot), or the signed-out page when nobody is signed in.
pub async fn show(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, AppError> {
    let outcome = end_session::request(
        &context(&state),
        EndSessionParams::default(),
        session_cookie(&req, &state),
    )
    .await?;
    render(&req, &state, outcome)
}

/// POST /logout: the confirmation form's answer (`decision=signout`, the
/// default, or `decision=stay`) with the sign-out request's parameters
/// carried along, validated again.
pub async fn submit(
    req: HttpRequest,
    state: web::Data<AppState>,
    form: Form<Vec<(String, String)>>,
) -> Result<HttpResponse, AppError> {
    let (csrf_token, answer, params) = match read_form(&form) {
        Ok(read) => read,
        Err(e) => return Ok(refused(&e)),
    };
    csrf::verify(&req, &state, &csrf_token)?;
    let outcome = end_session::confirm(
        &context(&state),
        params,
        session_cookie(&req, &state),
        answer,
    )
    .await?;
    render(&req, &state, outcome)
}

/// The form's CSRF token (empty if missing: refused), the answer and the
/// carried parameters.
fn read_form(pairs: &[(String, String)]) -> Result<(String, Answer, EndSessionParams), OAuthError> {
    let fields = single_values(pairs, &["csrf_token", "decision"])?;
    let answer = match fields.get("decision").copied() {
        None | Some("signout") => Answer::SignOut,
        Some("stay") => Answer::StaySignedIn,
        Some(_) => return Err(OAuthError::invalid_request("unknown decision")),
    };
    let csrf_token = fields.get("csrf_token").copied().unwrap_or_default();
    Ok((
        csrf_token.to_owned(),
        answer,
        EndSessionParams::from_pairs(pairs)?,
    ))
}

//! My account's personal access tokens: the section of `/account` (list
//! and new-token form), `POST /account/tokens` (needs the current
//! password; answers with the token, shown this once, or the page again
//! with the form as sent, but never the password, and the reason), and
//! revoking with a confirmation step (`GET` shows it, `POST`
//! revokes). Handlers read the form, call one `service::pat` function and
//! render.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};
use tera::Context;
use zeroize::Zeroizing;

use super::account::{self, Back, View, act, signed_in, when};
use crate::domain::audit::Actor;
use crate::http::error::AppError;
use crate::http::form::Form;
use crate::http::{csrf, extract, templates};
use crate::service::ServiceError;
use crate::service::account::create_token;
use crate::service::pat::{self, NewPat, Overview, PatView};
use crate::state::AppState;

/// The lifetime the new-token form suggests, in days (or the most
/// allowed, if less).
const SUGGESTED_DAYS: u32 = 30;

/// The new-token form as it was sent, shown again with the reason when it
/// is refused. The password is not part of it: it is never shown again.
#[derive(Debug, Clone, Default, Serialize)]
pub struct PatForm {
    name: String,
    scopes: Vec<String>,
    days: String,
    error: Option<String>,
}

#[derive(Serialize)]
struct TokenRow {
    id: String,
    name: String,
    hint: String,
    scopes: Vec<String>,
    created: String,
    expires: String,
    expired: bool,
    last_used: String,
}

impl From<PatView> for TokenRow {
    fn from(t: PatView) -> Self {
        Self {
            created: when(t.created_at),
            expires: when(t.expires_at),
            last_used: t.last_used_at.map_or_else(|| "never".into(), when),
            expired: t.expired,
            id: t.id,
            name: t.name,
            hint: t.hint,
            scopes: t.scopes,
        }
    }
}

/// Puts the section's data into the account page's context: `pat` (what
/// the user may do, their tokens, the scopes on offer) and `pat_form`.
pub(super) fn insert_section(ctx: &mut Context, o: Overview, form: Option<PatForm>) {
    let form = form.unwrap_or_else(|| PatForm {
        days: SUGGESTED_DAYS.min(o.max_ttl_days).to_string(),
        ..PatForm::default()
    });
    let tokens: Vec<TokenRow> = o.tokens.into_iter().map(TokenRow::from).collect();
    ctx.insert(
        "pat",
        &serde_json::json!({
            "availability": o.availability,
            "tokens": tokens,
            "offered": o.offered,
            "max_ttl_days": o.max_ttl_days,
        }),
    );
    ctx.insert("pat_form", &form);
}

/// The CSRF token, the form's fields (`scope` may repeat: one per ticked
/// box) and the current password.
fn read_form(pairs: Vec<(String, String)>) -> (String, PatForm, Zeroizing<String>) {
    let mut csrf_token = String::new();
    let mut form = PatForm::default();
    let mut password = Zeroizing::new(String::new());
    for (k, v) in pairs {
        match k.as_str() {
            "csrf_token" => csrf_token = v,
            "name" => form.name = v,
            "scope" => form.scopes.push(v),
            "expires_in_days" => form.days = v,
            "current_password" => password = Zeroizing::new(v),
            _ => {}
        }
    }
    (csrf_token, form, password)
}

/// The person acting on their own account, for the audit log.
pub(super) fn user_actor(username: &str, ip: Option<String>) -> Actor {
    Actor {
        name: format!("user:{username}"),
        ip,
    }
}

fn client_ip(req: &HttpRequest, state: &AppState) -> Option<String> {
    extract::client_ip(req, state).map(|ip| ip.to_string())
}

/// POST /account/tokens
pub async fn create(
    req: HttpRequest,
    state: web::Data<AppState>,
    form: Form<Vec<(String, String)>>,
) -> Result<HttpResponse, AppError> {
    let session = match signed_in(&req, &state).await {
        Ok(s) => s,
        Err(redirect) => return Ok(redirect),
    };
    let (csrf_token, sent, password) = read_form(form.into_inner());
    csrf::verify(&req, &state, &csrf_token)?;
    let input = NewPat {
        name: sent.name.clone(),
        scopes: sent.scopes.clone(),
        // Not a number: 0, refused with the allowed range.
        expires_in_days: sent.days.trim().parse().unwrap_or(0),
    };
    let created = create_token(
        &state.db,
        &account::reauth(&req, &state),
        state.config.pat.clone(),
        &session.user,
        password,
        input,
        state.clock.now(),
    )
    .await;
    // Refusals of the account (shown at the top, even when the section is
    // hidden) or of the input (shown at the form, which keeps it).
    let (status, refusal, problem) = match created {
        Ok(issued) => {
            let mut ctx = Context::new();
            ctx.insert("name", &issued.view.name);
            ctx.insert("expires", &when(issued.view.expires_at));
            ctx.insert("scopes", &issued.view.scopes);
            ctx.insert("token", &issued.token);
            return Ok(templates::page(StatusCode::OK, "account_token.html", &ctx));
        }
        Err(ServiceError::Forbidden(m)) => (StatusCode::FORBIDDEN, Some(m), None),
        Err(e @ (ServiceError::Invalid(_) | ServiceError::Conflict(_))) => {
            (StatusCode::BAD_REQUEST, None, Some(e.to_string()))
        }
        Err(e) => return Err(e.into()),
    };
    let view = View {
        status,
        notice: None,
        error: refusal.as_deref(),
        apps_page: 1,
        pat_form: Some(PatForm {
            error: problem,
            ..sent
        }),
        keep_tokens: false,
    };
    account::render(&req, &state, session, view).await
}

/// GET /account/tokens/{id}/revoke: the confirmation. Another user's (or
/// an unknown) token is "not found".
pub async fn confirm_revoke(
    req: HttpRequest,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let session = match signed_in(&req, &state).await {
        Ok(s) => s,
        Err(redirect) => return Ok(redirect),
    };
    let (id, user_id, now) = (id.into_inner(), session.user.id, state.clock.now());
    let token = state
        .db
        .run(move |conn| pat::find(conn, &user_id, &id, now))
        .await?;
    let mut ctx = Context::new();
    ctx.insert("token", &TokenRow::from(token));
    csrf::form_page(
        &req,
        &state,
        StatusCode::OK,
        "account_token_revoke.html",
        ctx,
    )
}

#[derive(Deserialize)]
pub struct RevokeForm {
    csrf_token: String,
}

/// POST /account/tokens/{id}/revoke
pub async fn revoke(
    req: HttpRequest,
    state: web::Data<AppState>,
    id: web::Path<String>,
    form: Form<RevokeForm>,
) -> Result<HttpResponse, AppError> {
    let id = id.into_inner();
    let ip = client_ip(&req, &state);
    let token = form.into_inner().csrf_token;
    act(
        req,
        state,
        &token,
        Back::to("token_revoked"),
        move |conn, s, now| pat::revoke(conn, &s.user, &id, &user_actor(&s.user.username, ip), now),
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_form_keeps_every_ticked_scope() {
        let pairs = [
            ("csrf_token", "c"),
            ("name", "deploy"),
            ("scope", "read:notes"),
            ("scope", "profile"),
            ("expires_in_days", "7"),
            ("current_password", "secret"),
            ("other", "ignored"),
        ]
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .to_vec();
        let (csrf, form, password) = read_form(pairs);
        assert_eq!(csrf, "c");
        assert_eq!(*password, "secret");
        assert_eq!(form.name, "deploy");
        assert_eq!(form.scopes, ["read:notes", "profile"]);
        assert_eq!(form.days, "7");
        assert!(form.error.is_none());
    }
}

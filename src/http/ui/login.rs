use actix_web::http::StatusCode;
use actix_web::http::header::{LOCATION, RETRY_AFTER};
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;
use tera::Context;
use zeroize::Zeroizing;

use super::safe_return_to;
use crate::http::error::AppError;
use crate::http::form::Form;
use crate::http::{csrf, extract};
use crate::service::login::{self, LoginError, SignedIn};
use crate::state::AppState;

#[derive(Debug, Deserialize)]
pub struct LoginQuery {
    return_to: Option<String>,
    login_hint: Option<String>,
}

#[derive(Deserialize)]
pub struct LoginForm {
    username: String,
    password: String,
    csrf_token: String,
    return_to: Option<String>,
}

fn render(
    req: &HttpRequest,
    state: &AppState,
    status: StatusCode,
    username: &str,
    return_to: Option<&str>,
    error: Option<&str>,
) -> Result<HttpResponse, AppError> {
    let mut ctx = Context::new();
    ctx.insert("username", username);
    ctx.insert("return_to", &return_to);
    ctx.insert("error", &error);
    csrf::form_page(req, state, status, "login.html", ctx)
}

/// GET /login: the sign-in form (`login_hint` prefills the username).
pub async fn show(
    req: HttpRequest,
    state: web::Data<AppState>,
    query: web::Query<LoginQuery>,
) -> Result<HttpResponse, AppError> {
    let return_to = safe_return_to(query.return_to.as_deref());
    let hint: String = query
        .login_hint
        .as_deref()
        .unwrap_or_default()
        .chars()
        .take(crate::domain::user::USERNAME_MAX)
        .collect();
    render(
        &req,
        &state,
        StatusCode::OK,
        &hint,
        return_to.as_deref(),
        None,
    )
}

/// POST /login: check credentials, start a session, go where asked.
pub async fn submit(
    req: HttpRequest,
    state: web::Data<AppState>,
    form: Form<LoginForm>,
) -> Result<HttpResponse, AppError> {
    let form = form.into_inner();
    csrf::verify(&req, &state, &form.csrf_token)?;
    let return_to = safe_return_to(form.return_to.as_deref());
    let username = form.username.clone();
    let attempt = login::Attempt {
        username: form.username,
        password: Zeroizing::new(form.password),
        ip: extract::client_ip(&req, &state),
    };
    let result = login::sign_in(
        &state.db,
        &state.password_gate,
        attempt,
        extract::session_meta(&req, &state),
        state.clock.now(),
        login::SignInPolicies {
            throttle: state.throttle_policy,
            session: state.session_policy,
            mfa: state.config.mfa.clone(),
        },
        &state.metrics,
    )
    .await;
    let shown_name: String = username
        .chars()
        .take(crate::domain::user::USERNAME_MAX)
        .collect();
    match result {
        Ok((user, SignedIn::Session(secret))) => {
            tracing::info!(user_id = %user.id, "signed in");
            let mut resp = HttpResponse::SeeOther()
                .insert_header((LOCATION, return_to.unwrap_or_else(|| "/".into())))
                .finish();
            resp.add_cookie(&state.cookies.session(secret.expose()))
                .map_err(|e| AppError::Internal(e.to_string()))?;
            Ok(resp)
        }
        Ok((user, SignedIn::MustEnrol(secret))) => {
            tracing::info!(user_id = %user.id, "signed in; a second factor is required");
            let mut resp = HttpResponse::SeeOther()
                .insert_header((LOCATION, "/account/mfa?done=required"))
                .finish();
            resp.add_cookie(&state.cookies.session(secret.expose()))
                .map_err(|e| AppError::Internal(e.to_string()))?;
            Ok(resp)
        }
        Ok((user, SignedIn::SecondFactor(challenge))) => {
            tracing::info!(user_id = %user.id, "password right; asking for the second factor");
            let mut q = url::form_urlencoded::Serializer::new(String::new());
            if let Some(to) = &return_to {
                q.append_pair("return_to", to);
            }
            let mut resp = HttpResponse::SeeOther()
                .insert_header((LOCATION, format!("/login/mfa?{}", q.finish())))
                .finish();
            resp.add_cookie(&state.cookies.mfa_challenge(challenge.expose()))
                .map_err(|e| AppError::Internal(e.to_string()))?;
            Ok(resp)
        }
        Err(LoginError::InvalidCredentials) => {
            tracing::info!("sign-in failed");
            render(
                &req,
                &state,
                StatusCode::UNAUTHORIZED,
                &shown_name,
                return_to.as_deref(),
                Some("Invalid username or password."),
            )
        }
        Err(LoginError::Throttled { retry_after_secs }) => {
            tracing::warn!("sign-in throttled");
            let mut resp = render(
                &req,
                &state,
                StatusCode::TOO_MANY_REQUESTS,
                &shown_name,
                return_to.as_deref(),
                Some("Too many failed attempts. Please wait a few minutes and try again."),
            )?;
            resp.headers_mut().insert(
                RETRY_AFTER,
                actix_web::http::header::HeaderValue::from(retry_after_secs),
            );
            Ok(resp)
        }
        Err(LoginError::Service(e)) => Err(e.into()),
    }
}

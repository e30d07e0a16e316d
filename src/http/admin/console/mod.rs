//! The admin console: HTML pages under `/admin` for a signed-in admin.
//! Every change is a POST form with a CSRF token; it is audited in the
//! same transaction (audit row first) and answered with a redirect and a
//! fixed notice. Bad input shows an error page naming the problem, and
//! nothing changes. Non-admins get 403; anonymous visitors are sent to
//! sign in.
//!
//! This module holds what the pages share: the admin check, rendering,
//! refusals and [`Submit`], the form action; one submodule per area.

pub mod audit;
pub mod clients;
pub mod groups;
pub mod keys;
pub mod scopes;
pub mod users;

use actix_web::http::StatusCode;
use actix_web::http::header::LOCATION;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;
use tera::Context;
use time::OffsetDateTime;

use crate::domain::audit::Actor;
use crate::http::error::AppError;
use crate::http::templates::error_page_back;
use crate::http::{csrf, extract};
use crate::keys::KeyError;
use crate::service::admin::{self, AuditEntry};
use crate::service::{self, ServiceError};
use crate::state::AppState;
use crate::store::DbConn;

type Data = web::Data<AppState>;

/// An admin page's failure: a page to show (redirect, 403, error).
pub struct Refusal(Box<HttpResponse>);

impl Refusal {
    fn new(page: HttpResponse) -> Self {
        Refusal(Box::new(page))
    }
}

impl From<AppError> for Refusal {
    fn from(e: AppError) -> Self {
        Refusal::new(actix_web::ResponseError::error_response(&e))
    }
}

type Page = Result<HttpResponse, Refusal>;

fn finish(p: Page) -> HttpResponse {
    p.unwrap_or_else(|Refusal(r)| *r)
}

/// The signed-in admin, or the answer for everyone else.
async fn admin(req: &HttpRequest, state: &AppState) -> Result<Actor, Refusal> {
    match extract::current_session(req, state).await? {
        None => {
            let back = req
                .uri()
                .path_and_query()
                .map(|p| p.as_str())
                .unwrap_or("/admin");
            let target = if req.method() == actix_web::http::Method::GET {
                back
            } else {
                "/admin"
            };
            let mut login = url::form_urlencoded::Serializer::new(String::new());
            login.append_pair("return_to", target);
            Err(Refusal::new(
                HttpResponse::SeeOther()
                    .insert_header((LOCATION, format!("/login?{}", login.finish())))
                    .finish(),
            ))
        }
        Some(s) if !s.user.is_admin => Err(Refusal::new(error_page_back(
            StatusCode::FORBIDDEN,
            "Forbidden",
            "The administration pages are for administrators only.",
            "/",
        ))),
        Some(s) => Ok(Actor {
            name: format!("user:{}", s.user.username),
            ip: extract::client_ip(req, state).map(|ip| ip.to_string()),
        }),
    }
}

/// Notices by fixed code, so nothing from the URL is echoed.
fn notice(code: Option<&str>) -> Option<&'static str> {
    Some(match code? {
        "created" => "Created.",
        "saved" => "Saved.",
        "deleted" => "Deleted.",
        "rotated" => "New key created.",
        "retired" => "Key retired.",
        "revoked" => "Key revoked.",
        "password" => "Password set; their sessions ended.",
        "sessions_ended" => {
            "Their sessions ended; the apps they used are told (back-channel logout)."
        }
        "mfa_reset" => {
            "Their second factors were removed and their sessions ended; they sign in with their password."
        }
        _ => return None,
    })
}

#[derive(Deserialize)]
pub struct Done {
    done: Option<String>,
}

/// A form that carries nothing but its CSRF token (deletes, key actions).
#[derive(Deserialize)]
pub struct CsrfForm {
    csrf_token: String,
}

async fn render(
    req: &HttpRequest,
    state: &AppState,
    template: &str,
    mut ctx: Context,
    done: Option<&str>,
) -> Page {
    ctx.insert("notice", &notice(done));
    Ok(csrf::form_page(req, state, StatusCode::OK, template, ctx)?)
}

fn service_refusal(e: ServiceError, back: &str) -> Refusal {
    let (status, title) = match &e {
        ServiceError::Invalid(_) => (StatusCode::BAD_REQUEST, "Not saved"),
        ServiceError::NotFound { .. } => (StatusCode::NOT_FOUND, "Not found"),
        ServiceError::Conflict(_) | ServiceError::PreconditionFailed(_) => {
            (StatusCode::CONFLICT, "Not saved")
        }
        ServiceError::Locked(_) | ServiceError::Forbidden(_) => {
            (StatusCode::FORBIDDEN, "Not allowed")
        }
        ServiceError::Unavailable(_) | ServiceError::Internal(_) => {
            return Refusal::new(actix_web::ResponseError::error_response(&AppError::from(e)));
        }
    };
    Refusal::new(error_page_back(status, title, &e.to_string(), back))
}

fn key_refusal(e: KeyError, back: &str) -> Refusal {
    match e {
        KeyError::NotFound(_) => service_refusal(
            ServiceError::NotFound {
                what: "key",
                id: String::new(),
            },
            back,
        ),
        KeyError::Conflict(m) => service_refusal(ServiceError::Conflict(m), back),
        KeyError::Store(s) => service_refusal(s.into(), back),
        other => service_refusal(ServiceError::Internal(other.to_string()), back),
    }
}

/// A "Not saved" page for form input that does not parse.
fn bad_input(message: &str, back: &str) -> Refusal {
    Refusal::new(error_page_back(
        StatusCode::BAD_REQUEST,
        "Not saved",
        message,
        back,
    ))
}

/// A console form's action: the signed-in admin (others are refused),
/// the form's CSRF token, then the change through the audited-change
/// runner ([`admin::change`]). Any refusal is an error page linking
/// `back`, and nothing changes.
struct Submit<'a> {
    req: &'a HttpRequest,
    state: &'a AppState,
    csrf_token: &'a str,
    back: String,
    audit: AuditEntry,
}

impl<'a> Submit<'a> {
    fn new(
        req: &'a HttpRequest,
        state: &'a AppState,
        csrf_token: &'a str,
        back: impl Into<String>,
    ) -> Self {
        Self {
            req,
            state,
            csrf_token,
            back: back.into(),
            audit: None,
        }
    }

    /// Opens the change's transaction with this audit row.
    fn audited(mut self, action: &'static str, target: impl Into<String>) -> Self {
        self.audit = Some((action, target.into()));
        self
    }

    /// The admin submitting the form, once the CSRF token checks out.
    async fn authorize(&self) -> Result<Actor, Refusal> {
        let actor = admin(self.req, self.state).await?;
        csrf::verify(self.req, self.state, self.csrf_token)?;
        Ok(actor)
    }

    /// Authorizes, then runs `f(conn, actor, now)` audited, in one
    /// transaction.
    async fn run<T, F>(self, f: F) -> Result<T, Refusal>
    where
        F: FnOnce(&mut DbConn, &Actor, OffsetDateTime) -> Result<T, ServiceError> + Send + 'static,
        T: Send + 'static,
    {
        self.run_after(async { Ok(()) }, move |conn, actor, now, ()| {
            f(conn, actor, now)
        })
        .await
    }

    /// [`Submit::run`] for a change that needs slow work first (argon2):
    /// authorizes, then awaits `prepare` holding no database connection
    /// (it is lazy: nothing runs for a refused form), then runs
    /// `f(conn, actor, now, prepared)` audited, in one transaction.
    async fn run_after<P, T, F>(
        self,
        prepare: impl Future<Output = Result<P, ServiceError>>,
        f: F,
    ) -> Result<T, Refusal>
    where
        F: FnOnce(&mut DbConn, &Actor, OffsetDateTime, P) -> Result<T, ServiceError>
            + Send
            + 'static,
        P: Send + 'static,
        T: Send + 'static,
    {
        let actor = self.authorize().await?;
        let prepared = prepare.await.map_err(|e| service_refusal(e, &self.back))?;
        let now = self.state.clock.now();
        admin::change(
            &self.state.db,
            actor,
            self.audit,
            now,
            move |conn, a, now| f(conn, a, now, prepared),
        )
        .await
        .map_err(|e| service_refusal(e, &self.back))
    }

    /// [`Submit::run`], then a redirect to `to` with the notice `done`, or
    /// the refusal's page.
    async fn redirect<T, F>(self, to: &str, done: &str, f: F) -> HttpResponse
    where
        F: FnOnce(&mut DbConn, &Actor, OffsetDateTime) -> Result<T, ServiceError> + Send + 'static,
        T: Send + 'static,
    {
        finish(self.run(f).await.map(|_| redirect(to, done)))
    }
}

async fn read<T, F>(state: &AppState, back: &str, f: F) -> Result<T, Refusal>
where
    F: FnOnce(&mut DbConn) -> Result<T, ServiceError> + Send + 'static,
    T: Send + 'static,
{
    state.db.run(f).await.map_err(|e| service_refusal(e, back))
}

fn redirect(to: &str, done: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((LOCATION, format!("{to}?done={done}")))
        .finish()
}

fn lines(s: &str) -> Vec<String> {
    s.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect()
}

fn words(s: &str) -> Vec<String> {
    s.split([' ', ',', '\n'])
        .map(str::trim)
        .filter(|w| !w.is_empty())
        .map(str::to_owned)
        .collect()
}

fn checked(v: &Option<String>) -> bool {
    v.as_deref() == Some("on")
}

// ---- overview -----------------------------------------------------------

pub async fn home(req: HttpRequest, state: Data) -> HttpResponse {
    finish(
        async {
            let actor = admin(&req, &state).await?;
            let policy = state.keys.policy().clone();
            let counts = read(&state, "/admin", move |conn| {
                Ok(serde_json::json!({
                    "clients": service::clients::list(conn)?.len(),
                    "users": service::users::count(conn)?,
                    "groups": service::groups::list(conn)?.len(),
                    "keys": service::keys::list(conn, &policy)
                        .map_err(|e| ServiceError::Internal(e.to_string()))?
                        .len(),
                }))
            })
            .await?;
            let mut ctx = Context::new();
            ctx.insert("username", actor.name.trim_start_matches("user:"));
            ctx.insert("counts", &counts);
            render(&req, &state, "admin/home.html", ctx, None).await
        }
        .await,
    )
}

//! "My account" (`/account`): profile, password, authorized applications
//! with Revoke, sessions with sign-out, and personal access tokens (their
//! forms are in [`super::account_tokens`]). Every change is a POST form
//! with a CSRF token, answered with a redirect back to the page (303) and
//! a fixed notice; invalid input re-renders the page with the reason and
//! changes nothing.

use actix_web::http::StatusCode;
use actix_web::http::header::LOCATION;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};
use tera::Context;
use time::OffsetDateTime;
use zeroize::Zeroizing;

use super::account_tokens::{self, PatForm};
use crate::domain::user::ProfileInput;
use crate::http::error::AppError;
use crate::http::form::Form;
use crate::http::{csrf, extract};
use crate::service::ServiceError;
use crate::service::login::Reauth;
use crate::service::sessions::ActiveSession;
use crate::service::{account, pat};
use crate::state::AppState;

/// The first value of `name` in the query string, if any. Read by hand
/// rather than through `web::Query`, so a repeated or odd parameter is
/// never a refusal: the page always renders.
fn query_param(req: &HttpRequest, name: &str) -> Option<String> {
    url::form_urlencoded::parse(req.query_string().as_bytes())
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// The authorized-apps page asked for (`apps_page`, 1-based): a number is
/// taken as it is (the service clamps it to the pages there are), digits
/// too many for a number mean "the last page", anything else the first.
fn requested_page(raw: Option<&str>) -> i64 {
    let raw = raw.map(str::trim).unwrap_or_default();
    match raw.parse::<i64>() {
        Ok(n) => n,
        Err(_) if !raw.is_empty() && raw.bytes().all(|b| b.is_ascii_digit()) => i64::MAX,
        Err(_) => 1,
    }
}

/// `/account`, with a notice and the authorized-apps page (left out when
/// it is the first).
fn account_url(done: Option<&str>, apps_page: i64) -> String {
    let mut q = url::form_urlencoded::Serializer::new(String::new());
    if let Some(done) = done {
        q.append_pair("done", done);
    }
    if apps_page > 1 {
        q.append_pair("apps_page", &apps_page.to_string());
    }
    match q.finish() {
        q if q.is_empty() => "/account".to_owned(),
        q => format!("/account?{q}"),
    }
}

/// Notices by fixed code, so nothing from the URL is echoed.
fn notice(code: &str) -> Option<&'static str> {
    Some(match code {
        "revoked" => "Access revoked. The app's tokens no longer work.",
        "profile" => "Profile saved.",
        "password" => "Password changed. Your other sessions were signed out.",
        "password_tokens" => {
            "Password changed. Your other sessions were signed out and your personal access tokens revoked."
        }
        "session" => "That session was signed out.",
        "sessions" => "All your other sessions were signed out.",
        "token_revoked" => "Token revoked. It no longer works.",
        _ => return None,
    })
}

pub(super) fn when(t: OffsetDateTime) -> String {
    let f = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute] UTC");
    t.format(&f).unwrap_or_default()
}

#[derive(Serialize)]
struct AppRow {
    client_id: String,
    client_name: String,
    scopes: Vec<String>,
    granted: String,
    last_used: String,
}

#[derive(Serialize)]
struct SessionRow {
    sid: String,
    current: bool,
    ip: Option<String>,
    user_agent: Option<String>,
    created: String,
    last_seen: String,
}

/// The signed-in session, or a redirect to the sign-in page.
pub(super) async fn signed_in(
    req: &HttpRequest,
    state: &AppState,
) -> Result<ActiveSession, HttpResponse> {
    match extract::current_session(req, state).await {
        Ok(Some(s)) => Ok(s),
        Ok(None) => Err(HttpResponse::SeeOther()
            .insert_header((LOCATION, "/login?return_to=/account"))
            .finish()),
        Err(e) => Err(actix_web::ResponseError::error_response(&e)),
    }
}

/// What the page shows besides the user: a notice or an error, which
/// page of authorized apps, and the forms as they were sent (the
/// new-token form; whether the password form's "Also revoke my personal
/// access tokens" was unticked).
pub(super) struct View<'a> {
    pub(super) status: StatusCode,
    pub(super) notice: Option<&'a str>,
    pub(super) error: Option<&'a str>,
    pub(super) apps_page: i64,
    pub(super) pat_form: Option<PatForm>,
    pub(super) keep_tokens: bool,
}

pub(super) async fn render(
    req: &HttpRequest,
    state: &AppState,
    session: ActiveSession,
    view: View<'_>,
) -> Result<HttpResponse, AppError> {
    let user_id = session.user.id.clone();
    let hash = session.id_hash.clone();
    let requested = view.apps_page;
    let (pat_config, now, row) = (
        state.config.pat.clone(),
        state.clock.now(),
        session.user.clone(),
    );
    let (apps, sessions, tokens) = state
        .db
        .run(move |conn| {
            Ok::<_, ServiceError>((
                account::authorized_apps(conn, &user_id, requested)?,
                account::sessions(conn, &user_id, &hash)?,
                pat::overview(conn, &pat_config, &row, now)?,
            ))
        })
        .await?;
    let user = &session.user;
    let mut ctx = Context::new();
    ctx.insert("username", &user.username);
    ctx.insert("email", &user.email);
    ctx.insert("notice", &view.notice);
    ctx.insert("error", &view.error);
    ctx.insert("keep_tokens", &view.keep_tokens);
    ctx.insert(
        "profile",
        &serde_json::json!({
            "name": user.name.as_deref().unwrap_or_default(),
            "given_name": user.given_name.as_deref().unwrap_or_default(),
            "family_name": user.family_name.as_deref().unwrap_or_default(),
            "locale": user.locale.as_deref().unwrap_or_default(),
            "picture": user.picture.as_deref().unwrap_or_default(),
        }),
    );
    // Previous and Next keep only the page: a notice is said once.
    let link = |page: i64| format!("{}#apps", account_url(None, page));
    ctx.insert("apps_page", &apps.page);
    ctx.insert("apps_pages", &apps.pages);
    ctx.insert("apps_prev", &(apps.page > 1).then(|| link(apps.page - 1)));
    ctx.insert(
        "apps_next",
        &(apps.page < apps.pages).then(|| link(apps.page + 1)),
    );
    let apps: Vec<AppRow> = apps
        .apps
        .into_iter()
        .map(|a| AppRow {
            granted: when(a.granted_at),
            last_used: when(a.last_used_at),
            client_id: a.client_id,
            client_name: a.client_name,
            scopes: a.scopes,
        })
        .collect();
    ctx.insert("apps", &apps);
    ctx.insert("other_sessions", &sessions.iter().any(|s| !s.current));
    let sessions: Vec<SessionRow> = sessions
        .into_iter()
        .map(|s| SessionRow {
            created: when(s.created_at),
            last_seen: when(s.last_seen_at),
            sid: s.sid,
            current: s.current,
            ip: s.ip,
            user_agent: s.user_agent,
        })
        .collect();
    ctx.insert("sessions", &sessions);
    account_tokens::insert_section(&mut ctx, tokens, view.pat_form);
    let mut resp = csrf::form_page(req, state, view.status, "account.html", ctx)?;
    // Personal data: never cached by a shared cache or the back button.
    resp.headers_mut().insert(
        actix_web::http::header::CACHE_CONTROL,
        actix_web::http::header::HeaderValue::from_static("no-store"),
    );
    Ok(resp)
}

/// GET /account
pub async fn show(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, AppError> {
    let session = match signed_in(&req, &state).await {
        Ok(s) => s,
        Err(redirect) => return Ok(redirect),
    };
    let done = query_param(&req, "done");
    let view = View {
        status: StatusCode::OK,
        notice: done.as_deref().and_then(notice),
        error: None,
        apps_page: requested_page(query_param(&req, "apps_page").as_deref()),
        pat_form: None,
        keep_tokens: false,
    };
    render(&req, &state, session, view).await
}

/// Where a form action sends the browser back to: `/account` with the
/// notice `done`, on the authorized-apps page it was posted from.
pub(super) struct Back {
    done: &'static str,
    apps_page: i64,
}

impl Back {
    pub(super) fn to(done: &'static str) -> Self {
        Self { done, apps_page: 1 }
    }
}

/// Re-authentication for the signed-in person's request: the sign-in
/// form's gate and throttle, their address.
pub(super) fn reauth(req: &HttpRequest, state: &AppState) -> Reauth {
    Reauth {
        gate: state.password_gate.clone(),
        throttle: state.throttle_policy,
        ip: extract::client_ip(req, state),
    }
}

/// Runs a form action for the signed-in user: CSRF first, then `action`
/// on the blocking pool; invalid input re-renders the page with a 400 and
/// the reason.
pub(super) async fn act<F>(
    req: HttpRequest,
    state: web::Data<AppState>,
    csrf_token: &str,
    back: Back,
    action: F,
) -> Result<HttpResponse, AppError>
where
    F: FnOnce(
            &mut crate::store::DbConn,
            &ActiveSession,
            OffsetDateTime,
        ) -> Result<(), ServiceError>
        + Send
        + 'static,
{
    let db = state.db.clone();
    let Back { done, apps_page } = back;
    let again = Again {
        apps_page,
        keep_tokens: false,
    };
    act_with(req, state, csrf_token, again, move |s, now| async move {
        db.run(move |conn| action(conn, &s, now))
            .await
            .map(|()| done)
    })
    .await
}

/// How the page shows again when an action is refused: on the
/// authorized-apps page it was posted from, and with the password form's
/// token box unticked if it was sent so.
struct Again {
    apps_page: i64,
    keep_tokens: bool,
}

/// [`act`] for an action that is a service use case of its own (it runs
/// its database work itself) and says which notice to show (`done`).
async fn act_with<F, Fut>(
    req: HttpRequest,
    state: web::Data<AppState>,
    csrf_token: &str,
    again: Again,
    action: F,
) -> Result<HttpResponse, AppError>
where
    F: FnOnce(ActiveSession, OffsetDateTime) -> Fut,
    Fut: std::future::Future<Output = Result<&'static str, ServiceError>>,
{
    let session = match signed_in(&req, &state).await {
        Ok(s) => s,
        Err(redirect) => return Ok(redirect),
    };
    csrf::verify(&req, &state, csrf_token)?;
    let now = state.clock.now();
    match action(session.clone(), now).await {
        Ok(done) => Ok(HttpResponse::SeeOther()
            .insert_header((LOCATION, account_url(Some(done), again.apps_page)))
            .finish()),
        Err(ServiceError::Invalid(i)) => {
            let msg = i.to_string();
            let view = View {
                status: StatusCode::BAD_REQUEST,
                notice: None,
                error: Some(&msg),
                apps_page: again.apps_page,
                pat_form: None,
                keep_tokens: again.keep_tokens,
            };
            render(&req, &state, session, view).await
        }
        Err(e) => Err(e.into()),
    }
}

#[derive(Deserialize)]
pub struct RevokeForm {
    csrf_token: String,
    client_id: String,
    /// The authorized-apps page the form was on, to go back to.
    apps_page: Option<String>,
}

/// POST /account/apps/revoke
pub async fn revoke_app(
    req: HttpRequest,
    state: web::Data<AppState>,
    form: Form<RevokeForm>,
) -> Result<HttpResponse, AppError> {
    let RevokeForm {
        csrf_token,
        client_id,
        apps_page,
    } = form.into_inner();
    let ip = extract::client_ip(&req, &state).map(|ip| ip.to_string());
    let back = Back {
        done: "revoked",
        apps_page: requested_page(apps_page.as_deref()).max(1),
    };
    act(req, state, &csrf_token, back, move |conn, s, now| {
        let actor = account_tokens::user_actor(&s.user.username, ip);
        account::revoke_app(conn, &s.user, &client_id, &actor, now)
    })
    .await
}

#[derive(Deserialize)]
pub struct SessionForm {
    csrf_token: String,
    sid: String,
}

/// POST /account/sessions/end
pub async fn end_session(
    req: HttpRequest,
    state: web::Data<AppState>,
    form: Form<SessionForm>,
) -> Result<HttpResponse, AppError> {
    let SessionForm { csrf_token, sid } = form.into_inner();
    let policy = state.logout_policy;
    act(
        req,
        state,
        &csrf_token,
        Back::to("session"),
        move |conn, s, now| account::end_session(conn, &s.user.id, &sid, policy, now),
    )
    .await
}

#[derive(Deserialize)]
pub struct CsrfOnly {
    csrf_token: String,
}

/// POST /account/sessions/end-others
pub async fn end_other_sessions(
    req: HttpRequest,
    state: web::Data<AppState>,
    form: Form<CsrfOnly>,
) -> Result<HttpResponse, AppError> {
    let token = form.into_inner().csrf_token;
    let policy = state.logout_policy;
    act(
        req,
        state,
        &token,
        Back::to("sessions"),
        move |conn, s, now| {
            account::end_other_sessions(conn, &s.user.id, &s.id_hash, policy, now).map(|_| ())
        },
    )
    .await
}

#[derive(Deserialize)]
pub struct ProfileForm {
    csrf_token: String,
    name: Option<String>,
    given_name: Option<String>,
    family_name: Option<String>,
    locale: Option<String>,
    picture: Option<String>,
}

/// POST /account/profile
pub async fn update_profile(
    req: HttpRequest,
    state: web::Data<AppState>,
    form: Form<ProfileForm>,
) -> Result<HttpResponse, AppError> {
    let f = form.into_inner();
    let token = f.csrf_token.clone();
    act(
        req,
        state,
        &token,
        Back::to("profile"),
        move |conn, s, now| {
            let input = ProfileInput {
                name: f.name.as_deref(),
                given_name: f.given_name.as_deref(),
                family_name: f.family_name.as_deref(),
                picture: f.picture.as_deref(),
                locale: f.locale.as_deref(),
            };
            account::update_profile(conn, &s.user.id, &input, now)
        },
    )
    .await
}

#[derive(Deserialize)]
pub struct PasswordForm {
    csrf_token: String,
    current_password: String,
    new_password: String,
    /// "Also revoke my personal access tokens": present when ticked.
    revoke_tokens: Option<String>,
}

/// POST /account/password
pub async fn change_password(
    req: HttpRequest,
    state: web::Data<AppState>,
    form: Form<PasswordForm>,
) -> Result<HttpResponse, AppError> {
    let f = form.into_inner();
    let token = f.csrf_token.clone();
    let revoke_tokens = f.revoke_tokens.is_some();
    let again = Again {
        apps_page: 1,
        keep_tokens: !revoke_tokens,
    };
    let (db, reauth) = (state.db.clone(), reauth(&req, &state));
    act_with(req, state, &token, again, move |s, now| async move {
        let change = account::PasswordChange {
            current: Zeroizing::new(f.current_password),
            new: Zeroizing::new(f.new_password),
            revoke_tokens,
        };
        let revoked = account::change_password(&db, &reauth, s.user, change, s.id_hash, now);
        Ok(match revoked.await? {
            0 => "password",
            _ => "password_tokens",
        })
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_apps_page_parameter_never_fails() {
        assert_eq!(requested_page(None), 1);
        assert_eq!(requested_page(Some("3")), 3);
        assert_eq!(requested_page(Some(" 2 ")), 2);
        assert_eq!(requested_page(Some("-4")), -4, "the service clamps it");
        assert_eq!(requested_page(Some("99999999999999999999")), i64::MAX);
        for junk in ["", "abc", "2.5", "1e3", "0x10", "--1"] {
            assert_eq!(requested_page(Some(junk)), 1, "{junk:?}");
        }
    }

    #[test]
    fn account_urls_name_only_what_is_not_the_default() {
        assert_eq!(account_url(None, 1), "/account");
        assert_eq!(account_url(None, 0), "/account");
        assert_eq!(account_url(None, 2), "/account?apps_page=2");
        assert_eq!(account_url(Some("revoked"), 1), "/account?done=revoked");
        assert_eq!(
            account_url(Some("revoked"), 3),
            "/account?done=revoked&apps_page=3"
        );
    }
}

//! The admin console: HTML pages under `/admin` for a signed-in admin.
//! Every change is a POST form with a CSRF token; it is audited in the
//! same transaction (audit row first) and answered with a redirect and a
//! fixed notice. Bad input shows an error page naming the problem, and
//! nothing changes. Non-admins get 403; anonymous visitors are sent to
//! sign in.

use actix_web::http::StatusCode;
use actix_web::http::header::LOCATION;
use actix_web::{HttpRequest, HttpResponse, web};
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use serde::{Deserialize, Serialize};
use tera::Context;
use time::OffsetDateTime;

use crate::domain::audit::Actor;
use crate::domain::client::ClientInput;
use crate::domain::user::ProfileInput;
use crate::http::error::AppError;
use crate::http::form::Form;
use crate::http::templates::error_page_back;
use crate::http::{csrf, extract};
use crate::keys::{KeyError, SigningAlg};
use crate::service::audit_query::{self, AuditFilter};
use crate::service::clients::{self, ClientChanges, ClientView};
use crate::service::scopes::{self, ScopeInput};
use crate::service::users::{self, NewUser, UserChanges};
use crate::service::{ServiceError, groups, registration};
use crate::state::AppState;
use crate::store::DbConn;
use crate::store::audit;

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
            ip: extract::client_ip(req, state),
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
        _ => return None,
    })
}

#[derive(Deserialize)]
pub struct Done {
    done: Option<String>,
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
        ServiceError::Conflict(_) => (StatusCode::CONFLICT, "Not saved"),
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

/// An error from a console change: a service refusal, or a key refusal.
pub enum ChangeError {
    Service(ServiceError),
    Key(KeyError),
}

impl From<ServiceError> for ChangeError {
    fn from(e: ServiceError) -> Self {
        ChangeError::Service(e)
    }
}

impl From<KeyError> for ChangeError {
    fn from(e: KeyError) -> Self {
        ChangeError::Key(e)
    }
}

impl From<diesel::result::Error> for ChangeError {
    fn from(e: diesel::result::Error) -> Self {
        ChangeError::Service(e.into())
    }
}

impl From<crate::store::StoreError> for ChangeError {
    fn from(e: crate::store::StoreError) -> Self {
        ChangeError::Service(e.into())
    }
}

/// Runs a form's change for the signed-in admin: CSRF, then `f` in a
/// transaction opened by the audit row (when `audit` names one).
async fn change<T, F>(
    req: &HttpRequest,
    state: &AppState,
    csrf_token: &str,
    back: &str,
    audit: Option<(&'static str, String)>,
    f: F,
) -> Result<T, Refusal>
where
    F: FnOnce(&mut DbConn, &Actor, OffsetDateTime) -> Result<T, ChangeError> + Send + 'static,
    T: Send + 'static,
{
    let actor = admin(req, state).await?;
    csrf::verify(req, state, csrf_token)?;
    let now = state.clock.now();
    let result = state
        .db
        .run(move |conn| {
            let entry = audit.as_ref().map(|(a, t)| (*a, t.as_str()));
            audit::audited(conn, &actor, entry, now, |conn| f(conn, &actor, now))
        })
        .await;
    result.map_err(|e| match e {
        ChangeError::Service(s) => service_refusal(s, back),
        ChangeError::Key(k) => key_refusal(k, back),
    })
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
                    "clients": clients::list(conn)?.len(),
                    "users": crate::store::repo::users::count(conn)?,
                    "groups": groups::list(conn)?.len(),
                    "keys": crate::keys::ops::list(conn, &policy)
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

// ---- clients ------------------------------------------------------------

/// The client form as the template shows it.
#[derive(Serialize, Default)]
struct ClientFormView {
    name: String,
    redirect_uris: String,
    post_logout_redirect_uris: String,
    scopes: String,
    audiences: String,
    grant_authorization_code: bool,
    grant_refresh_token: bool,
    grant_client_credentials: bool,
    first_party: bool,
}

impl From<&ClientView> for ClientFormView {
    fn from(c: &ClientView) -> Self {
        let has = |g: &str| c.grant_types.iter().any(|x| x == g);
        Self {
            name: c.name.clone(),
            redirect_uris: c.redirect_uris.join("\n"),
            post_logout_redirect_uris: c.post_logout_redirect_uris.join("\n"),
            scopes: c.scopes.join(" "),
            audiences: c.audiences.join("\n"),
            grant_authorization_code: has("authorization_code"),
            grant_refresh_token: has("refresh_token"),
            grant_client_credentials: has("client_credentials"),
            first_party: c.first_party,
        }
    }
}

#[derive(Deserialize)]
pub struct ClientForm {
    csrf_token: String,
    name: String,
    #[serde(default)]
    redirect_uris: String,
    #[serde(default)]
    post_logout_redirect_uris: String,
    #[serde(default)]
    scopes: String,
    #[serde(default)]
    audiences: String,
    grant_authorization_code: Option<String>,
    grant_refresh_token: Option<String>,
    grant_client_credentials: Option<String>,
    first_party: Option<String>,
    public: Option<String>,
}

impl ClientForm {
    fn grant_types(&self) -> Vec<String> {
        [
            (&self.grant_authorization_code, "authorization_code"),
            (&self.grant_refresh_token, "refresh_token"),
            (&self.grant_client_credentials, "client_credentials"),
        ]
        .into_iter()
        .filter(|(v, _)| checked(v))
        .map(|(_, g)| g.to_owned())
        .collect()
    }
}

pub async fn clients_page(req: HttpRequest, state: Data, q: web::Query<Done>) -> HttpResponse {
    finish(
        async {
            admin(&req, &state).await?;
            let list = read(&state, "/admin", clients::list).await?;
            let mut ctx = Context::new();
            ctx.insert("clients", &list);
            ctx.insert(
                "c",
                &ClientFormView {
                    scopes: "openid profile email".into(),
                    grant_authorization_code: true,
                    grant_refresh_token: true,
                    ..Default::default()
                },
            );
            render(&req, &state, "admin/clients.html", ctx, q.done.as_deref()).await
        }
        .await,
    )
}

fn secret_page(
    req: &HttpRequest,
    state: &AppState,
    title: &str,
    items: Vec<(&str, String)>,
    back: &str,
) -> Page {
    let mut ctx = Context::new();
    ctx.insert("title", title);
    ctx.insert("items", &items);
    ctx.insert("back", back);
    ctx.insert("notice", &None::<&str>);
    Ok(csrf::form_page(
        req,
        state,
        StatusCode::OK,
        "admin/secret.html",
        ctx,
    )?)
}

pub async fn create_client(req: HttpRequest, state: Data, form: Form<ClientForm>) -> HttpResponse {
    finish(
        async {
            let f = form.into_inner();
            let input = ClientInput {
                name: f.name.clone(),
                redirect_uris: lines(&f.redirect_uris),
                post_logout_redirect_uris: lines(&f.post_logout_redirect_uris),
                scopes: words(&f.scopes),
                grant_types: f.grant_types(),
                public: checked(&f.public),
                first_party: checked(&f.first_party),
                audiences: lines(&f.audiences),
                id_token_alg: None,
            };
            let issued = change(
                &req,
                &state,
                &f.csrf_token,
                "/admin/clients",
                Some(("client.create", f.name.clone())),
                move |conn, _, now| Ok(clients::create(conn, None, &input, now)?),
            )
            .await?;
            let id = issued.client.client_id.clone();
            let mut items = vec![("Client ID", id.clone())];
            if let Some(s) = issued.client_secret {
                items.push(("Client secret", s));
            }
            secret_page(
                &req,
                &state,
                "Client registered",
                items,
                &format!("/admin/clients/{id}"),
            )
        }
        .await,
    )
}

pub async fn client_page(
    req: HttpRequest,
    state: Data,
    id: web::Path<String>,
    q: web::Query<Done>,
) -> HttpResponse {
    finish(
        async {
            admin(&req, &state).await?;
            let id = id.into_inner();
            let client = read(&state, "/admin/clients", move |conn| {
                Ok(clients::find(conn, &id)?.view())
            })
            .await?;
            let mut ctx = Context::new();
            ctx.insert("c", &ClientFormView::from(&client));
            ctx.insert("client", &client);
            render(&req, &state, "admin/client.html", ctx, q.done.as_deref()).await
        }
        .await,
    )
}

pub async fn update_client(
    req: HttpRequest,
    state: Data,
    id: web::Path<String>,
    form: Form<ClientForm>,
) -> HttpResponse {
    finish(
        async {
            let id = id.into_inner();
            let f = form.into_inner();
            let changes = ClientChanges {
                name: Some(f.name.clone()),
                redirect_uris: Some(lines(&f.redirect_uris)),
                post_logout_redirect_uris: Some(lines(&f.post_logout_redirect_uris)),
                scopes: Some(words(&f.scopes)),
                grant_types: Some(f.grant_types()),
                first_party: Some(checked(&f.first_party)),
                audiences: Some(lines(&f.audiences)),
                id_token_alg: None,
            };
            let back = format!("/admin/clients/{id}");
            let cid = id.clone();
            change(
                &req,
                &state,
                &f.csrf_token,
                &back,
                Some(("client.update", id.clone())),
                move |conn, _, now| Ok(clients::update(conn, &cid, changes, now)?),
            )
            .await?;
            state.clients.forget(&id);
            Ok(redirect(&back, "saved"))
        }
        .await,
    )
}

#[derive(Deserialize)]
pub struct CsrfForm {
    csrf_token: String,
}

pub async fn rotate_client_secret(
    req: HttpRequest,
    state: Data,
    id: web::Path<String>,
    form: Form<CsrfForm>,
) -> HttpResponse {
    finish(
        async {
            let id = id.into_inner();
            let back = format!("/admin/clients/{id}");
            let cid = id.clone();
            let issued = change(
                &req,
                &state,
                &form.csrf_token,
                &back,
                Some(("client.rotate_secret", id.clone())),
                move |conn, _, now| Ok(clients::rotate_secret(conn, &cid, now)?),
            )
            .await?;
            state.clients.forget(&id);
            let secret = issued.client_secret.unwrap_or_default();
            secret_page(
                &req,
                &state,
                "New client secret",
                vec![("Client ID", id), ("Client secret", secret)],
                &back,
            )
        }
        .await,
    )
}

pub async fn delete_client(
    req: HttpRequest,
    state: Data,
    id: web::Path<String>,
    form: Form<CsrfForm>,
) -> HttpResponse {
    finish(
        async {
            let id = id.into_inner();
            let cid = id.clone();
            change(
                &req,
                &state,
                &form.csrf_token,
                &format!("/admin/clients/{id}"),
                Some(("client.delete", id.clone())),
                move |conn, _, _| Ok(clients::delete(conn, &cid)?),
            )
            .await?;
            state.clients.forget(&id);
            Ok(redirect("/admin/clients", "deleted"))
        }
        .await,
    )
}

#[derive(Deserialize)]
pub struct InitialTokenForm {
    csrf_token: String,
    max_uses: String,
    expires_in: String,
}

pub async fn issue_initial_token(
    req: HttpRequest,
    state: Data,
    form: Form<InitialTokenForm>,
) -> HttpResponse {
    finish(
        async {
            let f = form.into_inner();
            let bad = |field: &'static str| {
                Refusal::new(error_page_back(
                    StatusCode::BAD_REQUEST,
                    "Not saved",
                    &format!("{field} must be a whole number"),
                    "/admin/clients",
                ))
            };
            let max_uses: i32 = f.max_uses.trim().parse().map_err(|_| bad("max_uses"))?;
            let expires_in: i64 = f.expires_in.trim().parse().map_err(|_| bad("expires_in"))?;
            let issued = change(
                &req,
                &state,
                &f.csrf_token,
                "/admin/clients",
                None,
                move |conn, actor, now| {
                    Ok(registration::issue_initial_access_token(
                        conn, actor, expires_in, max_uses, now,
                    )?)
                },
            )
            .await?;
            secret_page(
                &req,
                &state,
                "Initial access token",
                vec![
                    (
                        "Token (send as Authorization: Bearer to /register)",
                        issued.initial_access_token,
                    ),
                    ("Registrations it allows", issued.max_uses.to_string()),
                    ("Expires", issued.expires_at.to_string()),
                ],
                "/admin/clients",
            )
        }
        .await,
    )
}

// ---- scopes -------------------------------------------------------------

pub async fn scopes_page(req: HttpRequest, state: Data, q: web::Query<Done>) -> HttpResponse {
    finish(
        async {
            admin(&req, &state).await?;
            let list = read(&state, "/admin", scopes::list).await?;
            let rows: Vec<serde_json::Value> = list
                .iter()
                .map(|s| {
                    let mut v = serde_json::to_value(s).unwrap_or_default();
                    v["path"] = utf8_percent_encode(&s.name, NON_ALPHANUMERIC)
                        .to_string()
                        .into();
                    v
                })
                .collect();
            let mut ctx = Context::new();
            ctx.insert("scopes", &rows);
            render(&req, &state, "admin/scopes.html", ctx, q.done.as_deref()).await
        }
        .await,
    )
}

#[derive(Deserialize)]
pub struct ScopeForm {
    csrf_token: String,
    name: Option<String>,
    description: String,
    #[serde(default)]
    groups: String,
}

pub async fn create_scope(req: HttpRequest, state: Data, form: Form<ScopeForm>) -> HttpResponse {
    finish(
        async {
            let f = form.into_inner();
            let name = f.name.clone().unwrap_or_default();
            let input = ScopeInput {
                description: f.description.clone(),
                groups: words(&f.groups),
            };
            change(
                &req,
                &state,
                &f.csrf_token,
                "/admin/scopes",
                None,
                move |conn, actor, now| Ok(scopes::create(conn, &name, &input, actor, now)?),
            )
            .await?;
            Ok(redirect("/admin/scopes", "created"))
        }
        .await,
    )
}

pub async fn update_scope(
    req: HttpRequest,
    state: Data,
    name: web::Path<String>,
    form: Form<ScopeForm>,
) -> HttpResponse {
    finish(
        async {
            let name = name.into_inner();
            let f = form.into_inner();
            let input = ScopeInput {
                description: f.description.clone(),
                groups: words(&f.groups),
            };
            change(
                &req,
                &state,
                &f.csrf_token,
                "/admin/scopes",
                None,
                move |conn, actor, now| Ok(scopes::update(conn, &name, &input, actor, now)?),
            )
            .await?;
            Ok(redirect("/admin/scopes", "saved"))
        }
        .await,
    )
}

pub async fn delete_scope(
    req: HttpRequest,
    state: Data,
    name: web::Path<String>,
    form: Form<CsrfForm>,
) -> HttpResponse {
    finish(
        async {
            let name = name.into_inner();
            change(
                &req,
                &state,
                &form.csrf_token,
                "/admin/scopes",
                None,
                move |conn, actor, now| Ok(scopes::delete(conn, &name, actor, now)?),
            )
            .await?;
            Ok(redirect("/admin/scopes", "deleted"))
        }
        .await,
    )
}

// ---- users --------------------------------------------------------------

const PAGE_SIZE: i64 = 25;

#[derive(Deserialize)]
pub struct UsersQuery {
    #[serde(default)]
    q: String,
    #[serde(default)]
    offset: i64,
    done: Option<String>,
}

pub async fn users_page(
    req: HttpRequest,
    state: Data,
    query: web::Query<UsersQuery>,
) -> HttpResponse {
    finish(
        async {
            admin(&req, &state).await?;
            let UsersQuery { q, offset, done } = query.into_inner();
            let term = q.clone();
            let page = read(&state, "/admin", move |conn| {
                users::search(conn, &term, PAGE_SIZE, offset)
            })
            .await?;
            let link = |offset: i64| {
                let mut s = url::form_urlencoded::Serializer::new(String::new());
                s.append_pair("q", &q);
                s.append_pair("offset", &offset.to_string());
                format!("/admin/users?{}", s.finish())
            };
            let mut ctx = Context::new();
            ctx.insert(
                "prev",
                &(page.offset > 0).then(|| link((page.offset - PAGE_SIZE).max(0))),
            );
            ctx.insert(
                "next",
                &(page.offset + PAGE_SIZE < page.total).then(|| link(page.offset + PAGE_SIZE)),
            );
            ctx.insert("q", &q);
            ctx.insert("page", &page);
            render(&req, &state, "admin/users.html", ctx, done.as_deref()).await
        }
        .await,
    )
}

#[derive(Deserialize)]
pub struct NewUserForm {
    csrf_token: String,
    username: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    name: String,
    password: String,
    #[serde(default)]
    groups: String,
    is_admin: Option<String>,
}

pub async fn create_user(req: HttpRequest, state: Data, form: Form<NewUserForm>) -> HttpResponse {
    finish(
        async {
            let f = form.into_inner();
            let username = f.username.trim().to_lowercase();
            let target = username.clone();
            let created = change(
                &req,
                &state,
                &f.csrf_token,
                "/admin/users",
                Some(("user.create", target)),
                move |conn, actor, now| {
                    let nonempty =
                        |s: &str| Some(s.trim()).filter(|s| !s.is_empty()).map(str::to_owned);
                    let (email, name) = (nonempty(&f.email), nonempty(&f.name));
                    let user = users::create(
                        conn,
                        &NewUser {
                            username: &f.username,
                            email: email.as_deref(),
                            email_verified: false,
                            profile: ProfileInput {
                                name: name.as_deref(),
                                ..Default::default()
                            },
                            is_admin: checked(&f.is_admin),
                        },
                        Some(&f.password),
                        now,
                    )?;
                    let names = words(&f.groups);
                    if !names.is_empty() {
                        groups::set_user_groups(conn, &user.username, &names, actor, now)?;
                    }
                    Ok(user.username)
                },
            )
            .await?;
            Ok(redirect(&format!("/admin/users/{created}"), "created"))
        }
        .await,
    )
}

pub async fn user_page(
    req: HttpRequest,
    state: Data,
    name: web::Path<String>,
    q: web::Query<Done>,
) -> HttpResponse {
    finish(
        async {
            admin(&req, &state).await?;
            let name = name.into_inner();
            let (user, mine, all) = read(&state, "/admin/users", move |conn| {
                let user = users::show(conn, &name)?;
                let mine = groups::of_user(conn, &user.id)?;
                let all: Vec<String> = groups::list(conn)?.into_iter().map(|g| g.name).collect();
                Ok((user, mine, all))
            })
            .await?;
            let mut ctx = Context::new();
            ctx.insert("user", &user);
            ctx.insert("groups", &mine);
            ctx.insert("all_groups", &all);
            render(&req, &state, "admin/user.html", ctx, q.done.as_deref()).await
        }
        .await,
    )
}

#[derive(Deserialize)]
pub struct UserForm {
    csrf_token: String,
    #[serde(default)]
    email: String,
    email_verified: Option<String>,
    #[serde(default)]
    name: String,
    #[serde(default)]
    given_name: String,
    #[serde(default)]
    family_name: String,
    #[serde(default)]
    locale: String,
    #[serde(default)]
    picture: String,
    is_admin: Option<String>,
    disabled: Option<String>,
}

pub async fn update_user(
    req: HttpRequest,
    state: Data,
    name: web::Path<String>,
    form: Form<UserForm>,
) -> HttpResponse {
    finish(
        async {
            let name = name.into_inner();
            let f = form.into_inner();
            let changes = UserChanges {
                email: Some(f.email),
                email_verified: Some(checked(&f.email_verified)),
                name: Some(f.name),
                given_name: Some(f.given_name),
                family_name: Some(f.family_name),
                picture: Some(f.picture),
                locale: Some(f.locale),
                is_admin: Some(checked(&f.is_admin)),
                disabled: Some(checked(&f.disabled)),
            };
            let back = format!("/admin/users/{name}");
            let n = name.clone();
            change(
                &req,
                &state,
                &f.csrf_token,
                &back,
                Some(("user.update", name.clone())),
                move |conn, _, now| Ok(users::update(conn, &n, &changes, now)?),
            )
            .await?;
            Ok(redirect(&back, "saved"))
        }
        .await,
    )
}

#[derive(Deserialize)]
pub struct GroupsForm {
    csrf_token: String,
    #[serde(default)]
    groups: String,
}

pub async fn set_user_groups(
    req: HttpRequest,
    state: Data,
    name: web::Path<String>,
    form: Form<GroupsForm>,
) -> HttpResponse {
    finish(
        async {
            let name = name.into_inner();
            let f = form.into_inner();
            let back = format!("/admin/users/{name}");
            let names = words(&f.groups);
            change(
                &req,
                &state,
                &f.csrf_token,
                &back,
                None,
                move |conn, actor, now| {
                    Ok(groups::set_user_groups(conn, &name, &names, actor, now)?)
                },
            )
            .await?;
            Ok(redirect(&back, "saved"))
        }
        .await,
    )
}

#[derive(Deserialize)]
pub struct PasswordForm {
    csrf_token: String,
    password: String,
}

pub async fn set_user_password(
    req: HttpRequest,
    state: Data,
    name: web::Path<String>,
    form: Form<PasswordForm>,
) -> HttpResponse {
    finish(
        async {
            let name = name.into_inner();
            let f = form.into_inner();
            let back = format!("/admin/users/{name}");
            let n = name.clone();
            change(
                &req,
                &state,
                &f.csrf_token,
                &back,
                Some(("user.set_password", name.clone())),
                move |conn, _, now| Ok(users::set_password(conn, &n, &f.password, now)?),
            )
            .await?;
            Ok(redirect(&back, "password"))
        }
        .await,
    )
}

pub async fn delete_user(
    req: HttpRequest,
    state: Data,
    name: web::Path<String>,
    form: Form<CsrfForm>,
) -> HttpResponse {
    finish(
        async {
            let name = name.into_inner();
            let n = name.clone();
            change(
                &req,
                &state,
                &form.csrf_token,
                &format!("/admin/users/{name}"),
                Some(("user.delete", name.clone())),
                move |conn, _, _| Ok(users::delete(conn, &n)?),
            )
            .await?;
            Ok(redirect("/admin/users", "deleted"))
        }
        .await,
    )
}

// ---- groups -------------------------------------------------------------

pub async fn groups_page(req: HttpRequest, state: Data, q: web::Query<Done>) -> HttpResponse {
    finish(
        async {
            admin(&req, &state).await?;
            let list = read(&state, "/admin", groups::list).await?;
            let mut ctx = Context::new();
            ctx.insert("groups", &list);
            render(&req, &state, "admin/groups.html", ctx, q.done.as_deref()).await
        }
        .await,
    )
}

#[derive(Deserialize)]
pub struct GroupForm {
    csrf_token: String,
    name: String,
}

pub async fn create_group(req: HttpRequest, state: Data, form: Form<GroupForm>) -> HttpResponse {
    finish(
        async {
            let f = form.into_inner();
            let name = f.name.clone();
            change(
                &req,
                &state,
                &f.csrf_token,
                "/admin/groups",
                None,
                move |conn, actor, now| Ok(groups::create(conn, &name, actor, now)?),
            )
            .await?;
            Ok(redirect("/admin/groups", "created"))
        }
        .await,
    )
}

pub async fn rename_group(
    req: HttpRequest,
    state: Data,
    name: web::Path<String>,
    form: Form<GroupForm>,
) -> HttpResponse {
    finish(
        async {
            let name = name.into_inner();
            let f = form.into_inner();
            let new_name = f.name.clone();
            change(
                &req,
                &state,
                &f.csrf_token,
                "/admin/groups",
                None,
                move |conn, actor, now| Ok(groups::rename(conn, &name, &new_name, actor, now)?),
            )
            .await?;
            Ok(redirect("/admin/groups", "saved"))
        }
        .await,
    )
}

pub async fn delete_group(
    req: HttpRequest,
    state: Data,
    name: web::Path<String>,
    form: Form<CsrfForm>,
) -> HttpResponse {
    finish(
        async {
            let name = name.into_inner();
            change(
                &req,
                &state,
                &form.csrf_token,
                "/admin/groups",
                None,
                move |conn, actor, now| Ok(groups::delete(conn, &name, actor, now)?),
            )
            .await?;
            Ok(redirect("/admin/groups", "deleted"))
        }
        .await,
    )
}

// ---- keys ---------------------------------------------------------------

pub async fn keys_page(req: HttpRequest, state: Data, q: web::Query<Done>) -> HttpResponse {
    finish(
        async {
            admin(&req, &state).await?;
            let policy = state.keys.policy().clone();
            let keys = read(&state, "/admin", move |conn| {
                crate::keys::ops::list(conn, &policy)
                    .map_err(|e| ServiceError::Internal(e.to_string()))
            })
            .await?;
            let mut ctx = Context::new();
            ctx.insert("keys", &keys);
            let algs: Vec<&str> = SigningAlg::ALL.iter().map(|a| a.as_str()).collect();
            ctx.insert("algorithms", &algs);
            render(&req, &state, "admin/keys.html", ctx, q.done.as_deref()).await
        }
        .await,
    )
}

/// A key change, then this instance reloads its keys so `/jwks` and
/// signing reflect it at once.
async fn key_change<F>(
    req: &HttpRequest,
    state: &AppState,
    csrf_token: &str,
    f: F,
) -> Result<(), Refusal>
where
    F: FnOnce(
            &mut DbConn,
            &crate::keys::KeyStore,
            &Actor,
            OffsetDateTime,
        ) -> Result<(), ChangeError>
        + Send
        + 'static,
{
    let keys = state.keys.clone();
    change(
        req,
        state,
        csrf_token,
        "/admin/keys",
        None,
        move |conn, actor, now| f(conn, &keys, actor, now),
    )
    .await?;
    super::reload_keys(state)
        .await
        .map_err(|e| key_refusal(e, "/admin/keys"))
}

#[derive(Deserialize)]
pub struct RotateForm {
    csrf_token: String,
    alg: String,
    immediately: Option<String>,
}

pub async fn rotate_key(req: HttpRequest, state: Data, form: Form<RotateForm>) -> HttpResponse {
    finish(
        async {
            let f = form.into_inner();
            let alg: SigningAlg =
                f.alg
                    .parse()
                    .map_err(|e: <SigningAlg as std::str::FromStr>::Err| {
                        Refusal::new(error_page_back(
                            StatusCode::BAD_REQUEST,
                            "Not saved",
                            &e.to_string(),
                            "/admin/keys",
                        ))
                    })?;
            let now_flag = checked(&f.immediately);
            key_change(
                &req,
                &state,
                &f.csrf_token,
                move |conn, keys, actor, now| {
                    crate::keys::ops::rotate(
                        conn,
                        keys.kek(),
                        alg,
                        now_flag,
                        now,
                        keys.policy(),
                        actor,
                    )?;
                    Ok(())
                },
            )
            .await?;
            Ok(redirect("/admin/keys", "rotated"))
        }
        .await,
    )
}

pub async fn retire_key(
    req: HttpRequest,
    state: Data,
    kid: web::Path<String>,
    form: Form<CsrfForm>,
) -> HttpResponse {
    finish(
        async {
            let kid = kid.into_inner();
            key_change(
                &req,
                &state,
                &form.csrf_token,
                move |conn, keys, actor, now| {
                    crate::keys::ops::retire(conn, &kid, now, keys.policy(), actor)?;
                    Ok(())
                },
            )
            .await?;
            Ok(redirect("/admin/keys", "retired"))
        }
        .await,
    )
}

pub async fn revoke_key(
    req: HttpRequest,
    state: Data,
    kid: web::Path<String>,
    form: Form<CsrfForm>,
) -> HttpResponse {
    finish(
        async {
            let kid = kid.into_inner();
            key_change(
                &req,
                &state,
                &form.csrf_token,
                move |conn, keys, actor, now| {
                    crate::keys::ops::revoke(conn, keys.kek(), &kid, now, keys.policy(), actor)?;
                    Ok(())
                },
            )
            .await?;
            Ok(redirect("/admin/keys", "revoked"))
        }
        .await,
    )
}

// ---- audit --------------------------------------------------------------

pub async fn audit_page(req: HttpRequest, state: Data, q: web::Query<AuditFilter>) -> HttpResponse {
    finish(
        async {
            admin(&req, &state).await?;
            let filter = q.into_inner();
            let f = filter.clone();
            let entries = read(&state, "/admin", move |conn| audit_query::list(conn, &f)).await?;
            let mut ctx = Context::new();
            ctx.insert("entries", &entries);
            ctx.insert(
                "filter",
                &serde_json::json!({
                    "actor": filter.actor, "action": filter.action, "target": filter.target,
                }),
            );
            render(&req, &state, "admin/audit.html", ctx, None).await
        }
        .await,
    )
}

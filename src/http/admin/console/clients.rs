//! Console: clients (`/admin/clients…`) and initial access tokens for
//! dynamic registration.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};
use tera::Context;

use super::{
    CsrfForm, Data, Done, Page, Submit, admin, bad_input, checked, finish, lines, read, redirect,
    render, words,
};
use crate::domain::client::{ClientInput, GrantType};
use crate::http::csrf;
use crate::http::form::Form;
use crate::service::clients::{self, ClientChanges, ClientView};
use crate::service::{logout, registration};
use crate::state::AppState;

/// The client form as the template shows it.
#[derive(Serialize, Default)]
struct ClientFormView {
    name: String,
    redirect_uris: String,
    post_logout_redirect_uris: String,
    scopes: String,
    audiences: String,
    resource_audiences: String,
    backchannel_logout_uri: String,
    backchannel_logout_session_required: bool,
    grant_authorization_code: bool,
    grant_refresh_token: bool,
    grant_client_credentials: bool,
    grant_device_code: bool,
    grant_token_exchange: bool,
    grant_implicit: bool,
    grant_password: bool,
    first_party: bool,
    require_mfa: bool,
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
            resource_audiences: c.resource_audiences.join("\n"),
            backchannel_logout_uri: c.backchannel_logout_uri.clone().unwrap_or_default(),
            backchannel_logout_session_required: c.backchannel_logout_session_required,
            grant_authorization_code: has("authorization_code"),
            grant_refresh_token: has("refresh_token"),
            grant_client_credentials: has("client_credentials"),
            grant_device_code: has(GrantType::DeviceCode.as_str()),
            grant_token_exchange: has(GrantType::TokenExchange.as_str()),
            grant_implicit: has(GrantType::Implicit.as_str()),
            grant_password: has(GrantType::Password.as_str()),
            first_party: c.first_party,
            require_mfa: c.require_mfa,
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
    #[serde(default)]
    resource_audiences: String,
    #[serde(default)]
    backchannel_logout_uri: String,
    backchannel_logout_session_required: Option<String>,
    grant_authorization_code: Option<String>,
    grant_refresh_token: Option<String>,
    grant_client_credentials: Option<String>,
    grant_device_code: Option<String>,
    grant_token_exchange: Option<String>,
    grant_implicit: Option<String>,
    grant_password: Option<String>,
    first_party: Option<String>,
    require_mfa: Option<String>,
    public: Option<String>,
}

impl ClientForm {
    fn backchannel_logout_uri(&self) -> Option<String> {
        Some(self.backchannel_logout_uri.trim().to_owned()).filter(|u| !u.is_empty())
    }

    fn grant_types(&self) -> Vec<String> {
        [
            (&self.grant_authorization_code, "authorization_code"),
            (&self.grant_refresh_token, "refresh_token"),
            (&self.grant_client_credentials, "client_credentials"),
            (&self.grant_device_code, GrantType::DeviceCode.as_str()),
            (
                &self.grant_token_exchange,
                GrantType::TokenExchange.as_str(),
            ),
            (&self.grant_implicit, GrantType::Implicit.as_str()),
            (&self.grant_password, GrantType::Password.as_str()),
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
            ctx.insert("legacy", &state.config.legacy);
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

/// A page showing a secret once (client secret, initial access token).
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
                require_mfa: checked(&f.require_mfa),
                audiences: lines(&f.audiences),
                id_token_alg: None,
                resource_audiences: lines(&f.resource_audiences),
                backchannel_logout_uri: f.backchannel_logout_uri(),
                backchannel_logout_session_required: checked(
                    &f.backchannel_logout_session_required,
                ),
            };
            let algs = state.config.keys.algorithms.clone();
            let issued = Submit::new(&req, &state, &f.csrf_token, "/admin/clients")
                .audited("client.create", f.name.clone())
                .run(move |conn, _, now| clients::create(conn, None, &input, &algs, now))
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
            let (client, logout) = read(&state, "/admin/clients", move |conn| {
                let client = clients::find(conn, &id)?.view();
                Ok((client, logout::admin::client_status(conn, &id)?))
            })
            .await?;
            let mut ctx = Context::new();
            ctx.insert("c", &ClientFormView::from(&client));
            ctx.insert("client", &client);
            ctx.insert("legacy", &state.config.legacy);
            ctx.insert("logout", &logout);
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
                require_mfa: Some(checked(&f.require_mfa)),
                audiences: Some(lines(&f.audiences)),
                id_token_alg: None,
                resource_audiences: Some(lines(&f.resource_audiences)),
                backchannel_logout_uri: Some(f.backchannel_logout_uri()),
                backchannel_logout_session_required: Some(checked(
                    &f.backchannel_logout_session_required,
                )),
            };
            let back = format!("/admin/clients/{id}");
            let cid = id.clone();
            let algs = state.config.keys.algorithms.clone();
            Submit::new(&req, &state, &f.csrf_token, &back)
                .audited("client.update", &id)
                .run(move |conn, _, now| clients::update(conn, &cid, changes, &algs, now))
                .await?;
            state.clients.forget(&id);
            Ok(redirect(&back, "saved"))
        }
        .await,
    )
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
            let issued = Submit::new(&req, &state, &form.csrf_token, &back)
                .audited("client.rotate_secret", &id)
                .run(move |conn, _, now| clients::rotate_secret(conn, &cid, now))
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
            Submit::new(
                &req,
                &state,
                &form.csrf_token,
                format!("/admin/clients/{id}"),
            )
            .audited("client.delete", &id)
            .run(move |conn, _, _| clients::delete(conn, &cid))
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
            let bad = |field: &str| {
                bad_input(&format!("{field} must be a whole number"), "/admin/clients")
            };
            let max_uses: i32 = f.max_uses.trim().parse().map_err(|_| bad("max_uses"))?;
            let expires_in: i64 = f.expires_in.trim().parse().map_err(|_| bad("expires_in"))?;
            let issued = Submit::new(&req, &state, &f.csrf_token, "/admin/clients")
                .run(move |conn, actor, now| {
                    registration::issue_initial_access_token(conn, actor, expires_in, max_uses, now)
                })
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

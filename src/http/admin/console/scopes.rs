//! Console: scopes (`/admin/scopes…`).

use actix_web::{HttpRequest, HttpResponse, web};
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use serde::Deserialize;
use tera::Context;

use super::{CsrfForm, Data, Done, Submit, admin, checked, finish, read, render, words};
use crate::http::form::Form;
use crate::service::scopes::{self, ScopeInput};

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
    /// The "machine clients" checkbox: `on` when ticked.
    machine: Option<String>,
}

impl ScopeForm {
    fn input(&self) -> ScopeInput {
        ScopeInput {
            description: self.description.clone(),
            groups: words(&self.groups),
            machine_grantable: Some(checked(&self.machine)),
        }
    }
}

pub async fn create_scope(req: HttpRequest, state: Data, form: Form<ScopeForm>) -> HttpResponse {
    let f = form.into_inner();
    let name = f.name.clone().unwrap_or_default();
    let input = f.input();
    let answer = Submit::new(&req, &state, &f.csrf_token, "/admin/scopes")
        .redirect("/admin/scopes", "created", move |conn, actor, now| {
            scopes::create(conn, &name, &input, actor, now)
        })
        .await;
    state.scopes.forget();
    answer
}

pub async fn update_scope(
    req: HttpRequest,
    state: Data,
    name: web::Path<String>,
    form: Form<ScopeForm>,
) -> HttpResponse {
    let name = name.into_inner();
    let f = form.into_inner();
    let input = f.input();
    let answer = Submit::new(&req, &state, &f.csrf_token, "/admin/scopes")
        .redirect("/admin/scopes", "saved", move |conn, actor, now| {
            scopes::update(conn, &name, &input, actor, now)
        })
        .await;
    // Machine clients lose (or gain) it at the next token, here at once.
    state.scopes.forget();
    answer
}

pub async fn delete_scope(
    req: HttpRequest,
    state: Data,
    name: web::Path<String>,
    form: Form<CsrfForm>,
) -> HttpResponse {
    let name = name.into_inner();
    let answer = Submit::new(&req, &state, &form.csrf_token, "/admin/scopes")
        .redirect("/admin/scopes", "deleted", move |conn, actor, now| {
            scopes::delete(conn, &name, actor, now)
        })
        .await;
    state.scopes.forget();
    answer
}

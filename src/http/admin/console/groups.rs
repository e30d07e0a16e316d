//! Console: groups (`/admin/groups…`).

use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;
use tera::Context;

use super::{CsrfForm, Data, Done, Submit, admin, finish, read, render};
use crate::http::form::Form;
use crate::service::groups;

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
    let f = form.into_inner();
    let name = f.name;
    Submit::new(&req, &state, &f.csrf_token, "/admin/groups")
        .redirect("/admin/groups", "created", move |conn, actor, now| {
            groups::create(conn, &name, actor, now)
        })
        .await
}

pub async fn rename_group(
    req: HttpRequest,
    state: Data,
    name: web::Path<String>,
    form: Form<GroupForm>,
) -> HttpResponse {
    let name = name.into_inner();
    let f = form.into_inner();
    let new_name = f.name;
    Submit::new(&req, &state, &f.csrf_token, "/admin/groups")
        .redirect("/admin/groups", "saved", move |conn, actor, now| {
            groups::rename(conn, &name, &new_name, actor, now)
        })
        .await
}

pub async fn delete_group(
    req: HttpRequest,
    state: Data,
    name: web::Path<String>,
    form: Form<CsrfForm>,
) -> HttpResponse {
    let name = name.into_inner();
    Submit::new(&req, &state, &form.csrf_token, "/admin/groups")
        .redirect("/admin/groups", "deleted", move |conn, actor, now| {
            groups::delete(conn, &name, actor, now)
        })
        .await
}

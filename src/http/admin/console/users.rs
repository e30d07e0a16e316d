//! Console: users (`/admin/users…`): search, create, profile and admin
//! flags, groups, password, sessions (and ending them), resetting
//! two-step sign-in (behind a confirmation page), delete.

use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;
use tera::Context;
use zeroize::Zeroizing;

use super::{CsrfForm, Data, Done, Submit, admin, checked, finish, read, redirect, render, words};
use crate::domain::user::ProfileInput;
use crate::http::form::Form;
use crate::service::password::NewPasswordHash;
use crate::service::users::{self, NewUser, UserChanges};
use crate::service::{groups, logout};

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
            let nonempty = |s: &str| Some(s.trim()).filter(|s| !s.is_empty()).map(str::to_owned);
            let (email, name) = (nonempty(&f.email), nonempty(&f.name));
            let new = NewUser {
                username: &f.username,
                email: email.as_deref(),
                email_verified: false,
                profile: ProfileInput {
                    name: name.as_deref(),
                    ..Default::default()
                },
                is_admin: checked(&f.is_admin),
            };
            let password = Zeroizing::new(f.password);
            let names = words(&f.groups);
            let created = Submit::new(&req, &state, &f.csrf_token, "/admin/users")
                .audited("user.create", f.username.trim().to_lowercase())
                .run_after(
                    users::prepare(&state.password_gate, &new, Some(password)),
                    move |conn, actor, now, user| {
                        let user = users::insert(conn, user, now)?;
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
            let (user, mine, all, sessions) = read(&state, "/admin/users", move |conn| {
                let user = users::show(conn, &name)?;
                let mine = groups::of_user(conn, &user.id)?;
                let all: Vec<String> = groups::list(conn)?.into_iter().map(|g| g.name).collect();
                let sessions = logout::admin::user_sessions(conn, &name)?;
                let factors = crate::service::mfa::factors_of(conn, &name)?;
                Ok((user, mine, all, (sessions, factors)))
            })
            .await?;
            let (sessions, factors) = sessions;
            let mut ctx = Context::new();
            ctx.insert("user", &user);
            ctx.insert("sessions", &sessions);
            ctx.insert("factors", &factors);
            ctx.insert("mfa_enrolled", &factors.enrolled());
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
    Submit::new(&req, &state, &f.csrf_token, &back)
        .audited("user.update", &name)
        .redirect(&back, "saved", move |conn, _, now| {
            users::update(conn, &name, &changes, now)
        })
        .await
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
    let name = name.into_inner();
    let f = form.into_inner();
    let back = format!("/admin/users/{name}");
    let names = words(&f.groups);
    Submit::new(&req, &state, &f.csrf_token, &back)
        .redirect(&back, "saved", move |conn, actor, now| {
            groups::set_user_groups(conn, &name, &names, actor, now)
        })
        .await
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
    let name = name.into_inner();
    let PasswordForm {
        csrf_token,
        password,
    } = form.into_inner();
    let back = format!("/admin/users/{name}");
    let hashed = NewPasswordHash::gated(&state.password_gate, Zeroizing::new(password));
    let done = Submit::new(&req, &state, &csrf_token, &back)
        .audited("user.set_password", &name)
        .run_after(hashed, move |conn, _, now, password| {
            users::reset_password(conn, &name, &password, now)
        })
        .await;
    finish(done.map(|()| redirect(&back, "password")))
}

pub async fn delete_user(
    req: HttpRequest,
    state: Data,
    name: web::Path<String>,
    form: Form<CsrfForm>,
) -> HttpResponse {
    let name = name.into_inner();
    Submit::new(
        &req,
        &state,
        &form.csrf_token,
        format!("/admin/users/{name}"),
    )
    .audited("user.delete", &name)
    .redirect("/admin/users", "deleted", move |conn, _, now| {
        users::delete(conn, &name, now)
    })
    .await
}

/// "End all sessions": signs the user out everywhere; the apps they used
/// get a logout token (back-channel logout).
pub async fn end_user_sessions(
    req: HttpRequest,
    state: Data,
    name: web::Path<String>,
    form: Form<CsrfForm>,
) -> HttpResponse {
    let name = name.into_inner();
    let back = format!("/admin/users/{name}");
    let policy = state.logout_policy;
    Submit::new(&req, &state, &form.csrf_token, &back)
        .audited("user.end_sessions", &name)
        .redirect(&back, "sessions_ended", move |conn, _, now| {
            logout::admin::end_user_sessions(conn, &name, policy, now)
        })
        .await
}

/// "Reset two-step sign-in": the confirmation page, saying what goes (the
/// authenticator app, the recovery codes) and which sessions end.
pub async fn confirm_reset_user_mfa(
    req: HttpRequest,
    state: Data,
    name: web::Path<String>,
) -> HttpResponse {
    finish(
        async {
            admin(&req, &state).await?;
            let name = name.into_inner();
            let who = name.clone();
            let preview = read(&state, "/admin/users", move |conn| {
                crate::service::mfa::reset_preview(conn, &who)
            })
            .await?;
            let mut ctx = Context::new();
            ctx.insert("username", &name);
            ctx.insert("preview", &preview);
            ctx.insert("mfa_enrolled", &preview.factors.enrolled());
            render(&req, &state, "admin/user_mfa_reset.html", ctx, None).await
        }
        .await,
    )
}

/// Removes the user's second factors and ends their sessions (audited).
pub async fn reset_user_mfa(
    req: HttpRequest,
    state: Data,
    name: web::Path<String>,
    form: Form<CsrfForm>,
) -> HttpResponse {
    let name = name.into_inner();
    let back = format!("/admin/users/{name}");
    let policy = state.logout_policy;
    Submit::new(&req, &state, &form.csrf_token, &back)
        .audited("user.mfa_reset", &name)
        .redirect(&back, "mfa_reset", move |conn, _, now| {
            crate::service::mfa::reset(conn, &name, policy, now)
        })
        .await
}

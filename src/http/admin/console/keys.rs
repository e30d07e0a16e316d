//! Console: signing keys (`/admin/keys…`). A change reloads this
//! instance's key set, so `/jwks` and signing reflect it at once.

use std::future::Future;

use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;
use tera::Context;
use time::OffsetDateTime;

use super::{
    CsrfForm, Data, Done, Submit, admin, bad_input, checked, finish, key_refusal, read, redirect,
    render,
};
use crate::domain::audit::Actor;
use crate::http::form::Form;
use crate::keys::{KeyError, SigningAlg};
use crate::service::ServiceError;
use crate::service::keys::{self, ServerKeys};
use crate::state::AppState;

const BACK: &str = "/admin/keys";

pub async fn keys_page(req: HttpRequest, state: Data, q: web::Query<Done>) -> HttpResponse {
    finish(
        async {
            admin(&req, &state).await?;
            let policy = state.keys.policy().clone();
            let keys = read(&state, "/admin", move |conn| {
                keys::list(conn, &policy).map_err(|e| ServiceError::Internal(e.to_string()))
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

/// A key form's action: the admin and CSRF check of [`Submit`], then the
/// change through [`ServerKeys`] (which reloads this instance's keys), then
/// back to the keys page with the notice `done`.
async fn key_action<'a, T, F, Fut>(
    req: &HttpRequest,
    state: &'a AppState,
    csrf_token: &str,
    done: &str,
    f: F,
) -> HttpResponse
where
    F: FnOnce(ServerKeys<'a>, Actor, OffsetDateTime) -> Fut,
    Fut: Future<Output = Result<T, KeyError>>,
{
    finish(
        async {
            let actor = Submit::new(req, state, csrf_token, BACK)
                .authorize()
                .await?;
            let now = state.clock.now();
            f(ServerKeys::new(&state.db, &state.keys), actor, now)
                .await
                .map_err(|e| key_refusal(e, BACK))?;
            Ok(redirect(BACK, done))
        }
        .await,
    )
}

#[derive(Deserialize)]
pub struct RotateForm {
    csrf_token: String,
    alg: String,
    immediately: Option<String>,
}

pub async fn rotate_key(req: HttpRequest, state: Data, form: Form<RotateForm>) -> HttpResponse {
    let f = form.into_inner();
    let alg: SigningAlg = match f.alg.parse() {
        Ok(alg) => alg,
        Err(e) => return finish(Err(bad_input(&e.to_string(), BACK))),
    };
    let immediately = checked(&f.immediately);
    key_action(
        &req,
        &state,
        &f.csrf_token,
        "rotated",
        |keys, actor, now| keys.rotate(actor, alg, immediately, now),
    )
    .await
}

pub async fn retire_key(
    req: HttpRequest,
    state: Data,
    kid: web::Path<String>,
    form: Form<CsrfForm>,
) -> HttpResponse {
    key_action(
        &req,
        &state,
        &form.csrf_token,
        "retired",
        |keys, actor, now| keys.retire(actor, kid.into_inner(), now, false),
    )
    .await
}

pub async fn revoke_key(
    req: HttpRequest,
    state: Data,
    kid: web::Path<String>,
    form: Form<CsrfForm>,
) -> HttpResponse {
    key_action(
        &req,
        &state,
        &form.csrf_token,
        "revoked",
        |keys, actor, now| keys.revoke(actor, kid.into_inner(), now),
    )
    .await
}

//! The admin API's personal access token calls: a user's tokens, creating
//! one for them (shown in that answer only) and revoking one. Audited as
//! `pat.create` and `pat.revoke` with the calling admin; never the token.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;

use super::api::{Answer, Data, change, read};
use crate::http::oidc::response::no_store_json as json;
use crate::service::pat::{self, NewPat};

/// `GET /users/{username}/tokens`: the user's unrevoked tokens.
pub async fn list(req: HttpRequest, state: Data, name: web::Path<String>) -> Answer {
    let name = name.into_inner();
    let now = state.clock.now();
    read(&req, &state, move |conn| {
        Ok(pat::list_for(conn, &name, now)?)
    })
    .await
}

/// A new token: its name, scopes (each one the user may hold now; not
/// `openid` or `offline_access`) and lifetime in days (required, at most
/// `pat.max_ttl_days`).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewTokenBody {
    name: String,
    scopes: Vec<String>,
    expires_in_days: i64,
}

/// `POST /users/{username}/tokens`
pub async fn create(
    req: HttpRequest,
    state: Data,
    name: web::Path<String>,
    body: web::Json<NewTokenBody>,
) -> Answer {
    let name = name.into_inner();
    let b = body.into_inner();
    let input = NewPat {
        name: b.name,
        scopes: b.scopes,
        expires_in_days: b.expires_in_days,
    };
    let config = state.config.pat.clone();
    let issued = change(&req, &state, None, move |conn, actor, now| {
        Ok(pat::create_through_admin_api(
            conn, &config, &name, &input, actor, now,
        )?)
    })
    .await?;
    Ok(json(StatusCode::CREATED, &issued))
}

/// `DELETE /users/{username}/tokens/{token_id}`
pub async fn revoke(req: HttpRequest, state: Data, path: web::Path<(String, String)>) -> Answer {
    let (name, id) = path.into_inner();
    change(&req, &state, None, move |conn, actor, now| {
        Ok(pat::revoke_for(conn, &name, &id, actor, now)?)
    })
    .await?;
    Ok(HttpResponse::NoContent().finish())
}

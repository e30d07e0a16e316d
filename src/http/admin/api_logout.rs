//! The admin API's sign-out calls: a client's back-channel logout
//! deliveries, a user's sessions, and ending them; a user's second factors
//! and resetting them (which signs them out).

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, web};

use super::api::{Answer, Data, change, read};
use crate::http::oidc::response::no_store_json as json;
use crate::service::{logout, mfa};

/// `GET /clients/{client_id}/logout-deliveries`
pub async fn client_deliveries(req: HttpRequest, state: Data, id: web::Path<String>) -> Answer {
    let id = id.into_inner();
    read(&req, &state, move |conn| {
        Ok(logout::admin::client_status(conn, &id)?)
    })
    .await
}

/// `GET /users/{username}/sessions`
pub async fn user_sessions(req: HttpRequest, state: Data, name: web::Path<String>) -> Answer {
    let name = name.into_inner();
    read(&req, &state, move |conn| {
        Ok(logout::admin::user_sessions(conn, &name)?)
    })
    .await
}

/// `DELETE /users/{username}/sessions`: signs the user out everywhere,
/// with back-channel logout; answers what ended.
pub async fn end_user_sessions(req: HttpRequest, state: Data, name: web::Path<String>) -> Answer {
    let name = name.into_inner();
    let policy = state.logout_policy;
    let ended = change(
        &req,
        &state,
        Some(("user.end_sessions", name.clone())),
        move |conn, _, now| Ok(logout::admin::end_user_sessions(conn, &name, policy, now)?),
    )
    .await?;
    Ok(json(StatusCode::OK, &ended))
}

/// `GET /users/{username}/mfa`: the user's second factors (never a secret).
pub async fn user_factors(req: HttpRequest, state: Data, name: web::Path<String>) -> Answer {
    let name = name.into_inner();
    read(&req, &state, move |conn| Ok(mfa::factors_of(conn, &name)?)).await
}

/// `DELETE /users/{username}/mfa`: removes the user's second factors and
/// ends their sessions (audited).
pub async fn reset_user_factors(req: HttpRequest, state: Data, name: web::Path<String>) -> Answer {
    let name = name.into_inner();
    let policy = state.logout_policy;
    let done = change(
        &req,
        &state,
        Some(("user.mfa_reset", name.clone())),
        move |conn, _, now| Ok(mfa::reset(conn, &name, policy, now)?),
    )
    .await?;
    Ok(json(StatusCode::OK, &done))
}

//! The admin API's audit log, initial access tokens, and the `ETag` /
//! `If-Match` plumbing of its versioned objects.

use actix_web::http::StatusCode;
use actix_web::http::header::{ETAG, HeaderValue, IF_MATCH};
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;

use super::api::{Answer, Data, change, read};
use crate::http::oidc::response::no_store_json as json;
use crate::service::audit_query::{self, AuditFilter};
use crate::service::registration;

/// The `If-Match` header as sent (absent: an unconditional change).
pub(super) fn if_match(req: &HttpRequest) -> Option<String> {
    req.headers()
        .get(IF_MATCH)
        .map(|v| v.to_str().unwrap_or("\u{0}").to_owned())
}

pub(super) fn tagged(mut answer: HttpResponse, tag: String) -> HttpResponse {
    if let Ok(v) = HeaderValue::from_str(&tag) {
        answer.headers_mut().insert(ETAG, v);
    }
    answer
}

// ---- audit log ----------------------------------------------------------

pub async fn audit_log(req: HttpRequest, state: Data, q: web::Query<AuditFilter>) -> Answer {
    let filter = q.into_inner();
    read(&req, &state, move |conn| {
        Ok(audit_query::page(conn, &filter)?)
    })
    .await
}

// ---- dynamic registration -----------------------------------------------

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InitialTokenBody {
    /// Lifetime in seconds (default one day, at most 30 days).
    expires_in: Option<i64>,
    /// How many registrations it allows (default 1).
    max_uses: Option<i32>,
}

pub async fn create_initial_access_token(
    req: HttpRequest,
    state: Data,
    body: web::Json<InitialTokenBody>,
) -> Answer {
    let b = body.into_inner();
    let issued = change(&req, &state, None, move |conn, actor, now| {
        Ok(registration::issue_initial_access_token(
            conn,
            actor,
            b.expires_in.unwrap_or(86_400),
            b.max_uses.unwrap_or(1),
            now,
        )?)
    })
    .await?;
    Ok(json(StatusCode::CREATED, &issued))
}

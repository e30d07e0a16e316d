//! Liveness and readiness for orchestrators and load balancers.

use std::time::Duration;

use actix_web::{HttpResponse, web};
use serde_json::json;

use crate::state::AppState;

/// The process is up and serving.
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({ "status": "ok" }))
}

/// How long readiness waits for a database connection: under the 1 s
/// timeout probes commonly use, so they see a 503, not a timeout.
const READY_WAIT: Duration = Duration::from_millis(500);

/// The database answers; 503 with the reason (and `Retry-After`) when it
/// does not, within [`READY_WAIT`].
pub async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    let db = state.db.clone();
    let result = web::block(move || db.ping_within(READY_WAIT)).await;
    match result {
        Ok(Ok(())) => HttpResponse::Ok().json(json!({ "status": "ready", "database": "ok" })),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "readiness check failed");
            HttpResponse::ServiceUnavailable()
                .insert_header((actix_web::http::header::RETRY_AFTER, "5"))
                .json(json!({ "status": "unavailable", "reason": "database unreachable" }))
        }
        Err(_) => HttpResponse::ServiceUnavailable()
            .insert_header((actix_web::http::header::RETRY_AFTER, "5"))
            .json(json!({ "status": "unavailable", "reason": "readiness check cancelled" })),
    }
}

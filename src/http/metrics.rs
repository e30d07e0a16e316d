//! Metrics at the HTTP edge: the middleware that counts every request by
//! route *pattern* (never the raw path), method and status, with its
//! latency; and `GET /metrics` itself, on its own listener
//! (`metrics.bind`) or on the main one behind a bearer token.

use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{AUTHORIZATION, CACHE_CONTROL, CONTENT_TYPE, WWW_AUTHENTICATE};
use actix_web::middleware::Next;
use actix_web::{Error, HttpRequest, HttpResponse, web};

use crate::http::error::AppError;
use crate::state::AppState;
use crate::telemetry::metrics::{CONTENT_TYPE as METRICS_CONTENT_TYPE, method_label};

/// Counts the request once it is answered. With metrics off it only
/// passes the request on.
pub async fn record(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    let metrics = match req.app_data::<web::Data<AppState>>() {
        Some(state) if state.metrics.is_enabled() => state.metrics.clone(),
        _ => return next.call(req).await,
    };
    let method = method_label(req.method().as_str());
    let started = Instant::now();
    let result = next.call(req).await;
    let elapsed = started.elapsed();
    match &result {
        // The router has matched by now: the pattern, e.g.
        // `/admin/api/v1/users/{username}`, or none (`unmatched`).
        Ok(resp) => metrics.http_request(
            resp.request().match_pattern(),
            method,
            resp.status().as_u16(),
            elapsed,
        ),
        // A middleware failed before any handler: no pattern to report.
        Err(e) => metrics.http_request(
            None,
            method,
            e.as_response_error().status_code().as_u16(),
            elapsed,
        ),
    }
    result
}

/// `GET /metrics` on the main listener: served only when `[metrics]` is
/// on without its own `bind` (a token is then required: the
/// configuration refuses anything else); otherwise not found.
pub async fn on_main_listener(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    if !state.config.metrics.on_main_listener() || state.scrape_token.is_none() {
        return Err(AppError::NotFound);
    }
    Ok(scrape(&req, &state).await)
}

/// `GET /metrics` on the metrics listener (`metrics.bind`); a token is
/// required there too when one is configured.
pub async fn on_own_listener(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    scrape(&req, &state).await
}

async fn scrape(req: &HttpRequest, state: &AppState) -> HttpResponse {
    if let Some(token) = &state.scrape_token {
        let presented = req
            .headers()
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        if !token.allows(presented) {
            return HttpResponse::Unauthorized()
                .insert_header((WWW_AUTHENTICATE, "Bearer realm=\"metrics\""))
                .insert_header((CACHE_CONTROL, "no-store"))
                .body("a bearer token is required\n");
        }
    }
    match crate::service::metrics::scrape(&state.db, &state.keys, &state.metrics, state.clock.now())
        .await
    {
        Some(body) => HttpResponse::Ok()
            .insert_header((CONTENT_TYPE, METRICS_CONTENT_TYPE))
            .insert_header((CACHE_CONTROL, "no-store"))
            .body(body),
        None => HttpResponse::NotFound().finish(),
    }
}

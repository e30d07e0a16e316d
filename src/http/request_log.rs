//! One span per request with a fresh `request_id` (echoed as `X-Request-Id`),
//! and one access line when it ends. Only the path is logged, never the
//! query string, cookies or bodies: those can carry codes and secrets.

use std::time::Instant;

use actix_web::Error;
use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;
use tracing::Instrument;

/// Request ids: unique, not secret. A random per-process prefix and a
/// counter, so no random number is drawn per request.
fn next_request_id() -> String {
    use std::sync::OnceLock;
    use std::sync::atomic::{AtomicU64, Ordering};
    static PREFIX: OnceLock<u32> = OnceLock::new();
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let prefix = PREFIX.get_or_init(|| uuid::Uuid::new_v4().as_u128() as u32);
    format!("{prefix:08x}-{:x}", COUNTER.fetch_add(1, Ordering::Relaxed))
}

pub async fn log_requests(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    let request_id = next_request_id();
    let span = tracing::info_span!(
        "request",
        request_id = %request_id,
        method = %req.method(),
        path = %req.path(),
    );
    let started = Instant::now();
    let result = next.call(req).instrument(span.clone()).await;
    let _enter = span.enter();
    let elapsed_ms = started.elapsed().as_secs_f64() * 1000.0;
    match result {
        Ok(mut resp) => {
            let status = resp.status().as_u16();
            if status >= 500 {
                tracing::error!(status, elapsed_ms, "request failed");
            } else {
                tracing::info!(status, elapsed_ms, "request");
            }
            if let Ok(v) = HeaderValue::from_str(&request_id) {
                resp.headers_mut()
                    .insert(HeaderName::from_static("x-request-id"), v);
            }
            Ok(resp)
        }
        Err(e) => {
            tracing::error!(error = %e, elapsed_ms, "request failed");
            Err(e)
        }
    }
}

//! `GET /jwks`: the public signing keys (next, active, retired), served
//! from precomputed bytes. A short `max-age` (below the pre-publication
//! delay) lets caches see new keys before they sign; ETag/If-None-Match
//! saves the transfer when nothing changed.

use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, web};

use crate::http::headers;
use crate::state::AppState;

pub async fn jwks(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    let set = state.keys.current();
    let (body, etag) = set.jwks();
    let cache = format!("public, max-age={}", state.keys.jwks_max_age_secs());
    let matches = req
        .headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(',').any(|t| {
                let t = t.trim();
                t == "*" || t.trim_start_matches("W/") == etag
            })
        });
    let mut resp = if matches {
        HttpResponse::NotModified().finish()
    } else {
        headers::document(&req, body, HttpResponse::Ok())
    };
    let h = resp.headers_mut();
    if let Ok(v) = HeaderValue::from_str(etag) {
        h.insert(header::ETAG, v);
    }
    if let Ok(v) = HeaderValue::from_str(&cache) {
        h.insert(header::CACHE_CONTROL, v);
    }
    // Public data; browser apps (SPAs) may fetch it.
    h.insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    resp
}

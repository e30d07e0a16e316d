//! Headers on every response, and what is compressed.
//!
//! - Clickjacking and referrer rules (RFC 9700 4.16), `nosniff`, and HSTS
//!   when the issuer is https.
//! - Compression: HTML pages carry a CSRF token beside reflected input;
//!   compressing them would let an attacker who sees response sizes
//!   recover the token (BREACH). So nothing is compressed on the fly except
//!   the admin API's JSON (bearer-authenticated, never sent by a browser on
//!   its own); the public documents (discovery, JWKS) are sent from
//!   precomputed gzip bytes by [`document`], so the hot paths pay for no
//!   compression middleware at all.

use actix_web::http::header::{ACCEPT_ENCODING, CONTENT_ENCODING, CONTENT_TYPE, VARY};
use actix_web::middleware::DefaultHeaders;
use actix_web::{HttpRequest, HttpResponse, HttpResponseBuilder};

use crate::oidc::document::{Document, accepts_gzip};

/// One year, the usual HSTS lifetime.
const HSTS: &str = "max-age=31536000";

/// `same-origin`, not `no-referrer`: under `no-referrer` browsers send
/// `Origin: null` on our own form POSTs (Fetch, "serializing a request
/// origin"), which the CSRF origin check refuses.
pub fn security_headers(https: bool) -> DefaultHeaders {
    let headers = DefaultHeaders::new()
        .add(("X-Frame-Options", "DENY"))
        .add((
            "Content-Security-Policy",
            // No `form-action`: browsers apply it to the redirects after a
            // form POST too, and sign-in and consent end in a redirect to
            // the client's own origin (seen in Chromium: the redirect was
            // blocked). Pages hold no user-supplied markup (auto-escaped
            // templates), which is what form-action would guard.
            "default-src 'none'; style-src 'self'; img-src 'self'; frame-ancestors 'none'; base-uri 'none'",
        ))
        .add(("Referrer-Policy", "same-origin"))
        .add(("X-Content-Type-Options", "nosniff"));
    if https {
        headers.add(("Strict-Transport-Security", HSTS))
    } else {
        headers
    }
}

/// A precomputed public JSON document: its gzip bytes when the client
/// accepts gzip, else the body. `builder` carries the status and any
/// caching headers.
pub fn document(
    req: &HttpRequest,
    doc: &Document,
    mut builder: HttpResponseBuilder,
) -> HttpResponse {
    builder
        .insert_header((CONTENT_TYPE, "application/json"))
        .insert_header((VARY, "Accept-Encoding"));
    let wants_gzip = || {
        req.headers()
            .get(ACCEPT_ENCODING)
            .and_then(|v| v.to_str().ok())
            .is_some_and(accepts_gzip)
    };
    match doc.gzip().filter(|_| wants_gzip()) {
        Some(gzip) => builder
            .insert_header((CONTENT_ENCODING, "gzip"))
            .body(gzip.clone()),
        None => builder.body(doc.body().clone()),
    }
}

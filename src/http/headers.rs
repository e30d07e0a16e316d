//! Headers on every response, and the rule that HTML is never compressed.
//!
//! - Clickjacking and referrer rules (RFC 9700 4.16), `nosniff`, and HSTS
//!   when the issuer is https.
//! - HTML pages carry a CSRF token beside reflected input; compressing them
//!   would let an attacker who sees response sizes recover the token
//!   (BREACH). [`mark_html_uncompressed`] runs inside `Compress`, which
//!   leaves a response alone when it already has a `Content-Encoding`;
//!   [`strip_identity_marker`] runs outside it and removes that marker, so
//!   no response says `Content-Encoding: identity`.

use actix_web::Error;
use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{CONTENT_ENCODING, CONTENT_TYPE, HeaderValue};
use actix_web::middleware::{DefaultHeaders, Next};

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

fn is_html(res: &ServiceResponse<impl MessageBody>) -> bool {
    res.headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim_start().to_ascii_lowercase().starts_with("text/html"))
}

/// Inside `Compress`: HTML responses get a `Content-Encoding` so that
/// `Compress` passes them through unencoded.
pub async fn mark_html_uncompressed(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    let mut res = next.call(req).await?;
    if is_html(&res) && !res.headers().contains_key(CONTENT_ENCODING) {
        res.headers_mut()
            .insert(CONTENT_ENCODING, HeaderValue::from_static("identity"));
    }
    Ok(res)
}

/// Outside `Compress`: removes the marker again.
pub async fn strip_identity_marker(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    let mut res = next.call(req).await?;
    if res
        .headers()
        .get(CONTENT_ENCODING)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"identity"))
    {
        res.headers_mut().remove(CONTENT_ENCODING);
    }
    Ok(res)
}

//! `Form<T>`: a strict `application/x-www-form-urlencoded` extractor.
//!
//! Unlike actix's own, it refuses invalid UTF-8 (raw or percent-encoded)
//! instead of replacing it, bounds the body before reading it all, and
//! answers every failure with an HTML error page and the right status.

use std::future::Future;
use std::pin::Pin;

use actix_web::http::StatusCode;
use actix_web::http::header::CONTENT_TYPE;
use actix_web::{FromRequest, HttpRequest, HttpResponse, ResponseError, dev::Payload, web};
use serde::de::DeserializeOwned;

use crate::http::templates::error_page;

/// Bodies larger than this are refused (every form we take is small; the
/// biggest field is a 1 KiB password).
pub const FORM_LIMIT_BYTES: usize = 16 * 1024;

pub struct Form<T>(pub T);

impl<T> Form<T> {
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T> std::ops::Deref for Form<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

#[derive(Debug, thiserror::Error)]
pub enum FormError {
    #[error("expected application/x-www-form-urlencoded")]
    ContentType,
    #[error("form too large")]
    TooLarge,
    #[error("form is not valid UTF-8")]
    Encoding,
    #[error("form could not be read: {0}")]
    Malformed(String),
}

impl ResponseError for FormError {
    fn status_code(&self) -> StatusCode {
        match self {
            FormError::ContentType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            FormError::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            FormError::Encoding | FormError::Malformed(_) => StatusCode::BAD_REQUEST,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let message = match self {
            FormError::ContentType => "Expected a form (application/x-www-form-urlencoded).",
            FormError::TooLarge => "The form is too large.",
            FormError::Encoding => "The form contains text that is not valid UTF-8.",
            FormError::Malformed(_) => {
                "The form is missing a field or could not be read. Go back and try again."
            }
        };
        error_page(self.status_code(), "Bad request", message)
    }
}

/// The `decision` of a consent form: `allow` is true, `deny` false.
pub fn allow_or_deny(decision: &str) -> Result<bool, crate::http::error::AppError> {
    match decision {
        "allow" => Ok(true),
        "deny" => Ok(false),
        _ => Err(crate::http::error::AppError::BadRequest(
            "Choose Allow or Deny.".into(),
        )),
    }
}

/// Parses a form body, refusing invalid UTF-8 anywhere.
pub fn parse<T: DeserializeOwned>(body: &[u8]) -> Result<T, FormError> {
    std::str::from_utf8(body).map_err(|_| FormError::Encoding)?;
    for pair in body.split(|b| *b == b'&') {
        for part in pair.splitn(2, |b| *b == b'=') {
            // '+' is a space and cannot break UTF-8; decode %XX strictly.
            percent_encoding::percent_decode(part)
                .decode_utf8()
                .map_err(|_| FormError::Encoding)?;
        }
    }
    serde_urlencoded::from_bytes(body).map_err(|e| FormError::Malformed(e.to_string()))
}

impl<T: DeserializeOwned + 'static> FromRequest for Form<T> {
    type Error = FormError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, FormError>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let is_form = req
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .is_some_and(|v| {
                v.trim()
                    .eq_ignore_ascii_case("application/x-www-form-urlencoded")
            });
        let declared_too_large = req
            .headers()
            .get(actix_web::http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<usize>().ok())
            .is_some_and(|n| n > FORM_LIMIT_BYTES);
        let body = web::Bytes::from_request(req, payload);
        Box::pin(async move {
            if !is_form {
                return Err(FormError::ContentType);
            }
            if declared_too_large {
                return Err(FormError::TooLarge);
            }
            let bytes = body.await.map_err(|_| FormError::TooLarge)?;
            if bytes.len() > FORM_LIMIT_BYTES {
                return Err(FormError::TooLarge);
            }
            parse(&bytes).map(Form)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize, Debug)]
    struct F {
        a: String,
    }

    #[test]
    fn strict_utf8() {
        assert_eq!(parse::<F>(b"a=h%C3%A9+llo").unwrap().a, "hé llo");
        assert!(matches!(parse::<F>(b"a=%FF"), Err(FormError::Encoding)));
        assert!(matches!(parse::<F>(b"a=\xff"), Err(FormError::Encoding)));
        assert!(matches!(parse::<F>(b"%FF=1&a=x"), Err(FormError::Encoding)));
        assert!(matches!(parse::<F>(b"b=1"), Err(FormError::Malformed(_))));
    }
}

//! actix-web extractors: [`Authenticated`] for any valid access token,
//! [`Scoped<S>`] for one that carries the scopes `S` names. Failures
//! answer as RFC 6750 section 3 says: 401 with `WWW-Authenticate: Bearer`
//! for a missing or invalid token, 403 `insufficient_scope` naming the
//! scope, 400 `invalid_request` for a malformed `Authorization` header.
//!
//! The [`Verifier`] must be registered as app data, either directly
//! (`App::new().app_data(verifier.clone())`) or as `web::Data<Verifier>`.

use std::future::Future;
use std::marker::PhantomData;
use std::ops::Deref;
use std::pin::Pin;

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{FromRequest, HttpRequest, HttpResponse, ResponseError, dev::Payload, web};

use crate::{AccessToken, Verifier, VerifyError};

/// A request that carried a valid access token.
#[derive(Debug, Clone)]
pub struct Authenticated(pub AccessToken);

impl Deref for Authenticated {
    type Target = AccessToken;
    fn deref(&self) -> &AccessToken {
        &self.0
    }
}

impl Authenticated {
    /// Fails with 403 `insufficient_scope` unless every one of `scopes`
    /// was granted.
    pub fn require_scopes(&self, scopes: &[&str]) -> Result<(), BearerError> {
        match self.0.missing_scope(scopes) {
            None => Ok(()),
            Some(_) => Err(BearerError::InsufficientScope(scopes.join(" "))),
        }
    }
}

/// The scopes a route needs; declare with [`required_scopes!`](crate::required_scopes).
pub trait ScopeRequirement {
    /// Every one of these must be granted.
    const SCOPES: &'static [&'static str];
}

/// Declares a type naming the scopes a route requires, for [`Scoped`]:
///
/// ```no_run
/// use latchkey_verify::actix::Scoped;
///
/// latchkey_verify::required_scopes!(pub ReadNotes = "read:notes");
///
/// async fn list(auth: Scoped<ReadNotes>) -> String {
///     format!("notes of {}", auth.subject)
/// }
/// ```
#[macro_export]
macro_rules! required_scopes {
    ($vis:vis $name:ident = $($scope:literal),+ $(,)?) => {
        #[derive(Debug, Clone, Copy)]
        $vis struct $name;
        impl $crate::actix::ScopeRequirement for $name {
            const SCOPES: &'static [&'static str] = &[$($scope),+];
        }
    };
}

/// A request whose access token is valid and carries every scope of `S`.
#[derive(Debug, Clone)]
pub struct Scoped<S: ScopeRequirement>(pub AccessToken, PhantomData<S>);

impl<S: ScopeRequirement> Deref for Scoped<S> {
    type Target = AccessToken;
    fn deref(&self) -> &AccessToken {
        &self.0
    }
}

/// An RFC 6750 error response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BearerError {
    /// No bearer token at all: 401 with a bare `Bearer` challenge.
    MissingToken,
    /// The `Authorization` header is malformed: 400 `invalid_request`.
    InvalidRequest,
    /// The token was refused: 401 `invalid_token`.
    InvalidToken(VerifyError),
    /// The token lacks scopes: 403 `insufficient_scope`, naming the
    /// space-separated scopes the route needs.
    InsufficientScope(String),
    /// Keys could not be loaded from the issuer: 503.
    Unavailable,
    /// No [`Verifier`] was registered as app data: 500.
    NotConfigured,
}

impl std::fmt::Display for BearerError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BearerError::MissingToken => f.write_str("a bearer access token is required"),
            BearerError::InvalidRequest => f.write_str("malformed Authorization header"),
            BearerError::InvalidToken(e) => e.fmt(f),
            BearerError::InsufficientScope(s) => write!(f, "the token lacks scope {s}"),
            BearerError::Unavailable => f.write_str("token verification is unavailable"),
            BearerError::NotConfigured => f.write_str("no token verifier is configured"),
        }
    }
}

impl From<VerifyError> for BearerError {
    fn from(e: VerifyError) -> Self {
        match e {
            VerifyError::KeysUnavailable => BearerError::Unavailable,
            other => BearerError::InvalidToken(other),
        }
    }
}

impl BearerError {
    fn code(&self) -> Option<&'static str> {
        match self {
            BearerError::MissingToken | BearerError::Unavailable | BearerError::NotConfigured => {
                None
            }
            BearerError::InvalidRequest => Some("invalid_request"),
            BearerError::InvalidToken(_) => Some("invalid_token"),
            BearerError::InsufficientScope(_) => Some("insufficient_scope"),
        }
    }

    /// The `WWW-Authenticate` challenge. Every value in it is either fixed
    /// text or a scope name from the route's own declaration, so nothing
    /// a client sent is reflected.
    fn challenge(&self) -> Option<String> {
        let mut c = String::from("Bearer");
        match self {
            BearerError::Unavailable | BearerError::NotConfigured => return None,
            BearerError::MissingToken => return Some(c),
            _ => {}
        }
        if let Some(code) = self.code() {
            c.push_str(&format!(" error=\"{code}\""));
        }
        if let BearerError::InsufficientScope(scope) = self {
            c.push_str(&format!(", scope=\"{}\"", scope.replace(['"', '\\'], "")));
        }
        c.push_str(&format!(", error_description=\"{self}\""));
        Some(c)
    }
}

impl ResponseError for BearerError {
    fn status_code(&self) -> StatusCode {
        match self {
            BearerError::MissingToken | BearerError::InvalidToken(_) => StatusCode::UNAUTHORIZED,
            BearerError::InvalidRequest => StatusCode::BAD_REQUEST,
            BearerError::InsufficientScope(_) => StatusCode::FORBIDDEN,
            BearerError::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            BearerError::NotConfigured => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let mut resp = HttpResponse::build(self.status_code());
        if let Some(value) = self
            .challenge()
            .and_then(|c| HeaderValue::from_str(&c).ok())
        {
            resp.insert_header((header::WWW_AUTHENTICATE, value));
        }
        if matches!(self, BearerError::Unavailable) {
            resp.insert_header((header::RETRY_AFTER, "30"));
        }
        resp.insert_header((header::CACHE_CONTROL, "no-store"));
        let mut body = serde_json::Map::new();
        if let Some(code) = self.code() {
            body.insert("error".into(), code.into());
        }
        body.insert("error_description".into(), self.to_string().into());
        resp.json(body)
    }
}

/// The token of an `Authorization: Bearer …` header (RFC 6750 section
/// 2.1; the scheme is case-insensitive). Any other scheme, or no header,
/// counts as no token.
pub fn bearer_token(req: &HttpRequest) -> Result<&str, BearerError> {
    let mut values = req.headers().get_all(header::AUTHORIZATION);
    let Some(value) = values.next() else {
        return Err(BearerError::MissingToken);
    };
    if values.next().is_some() {
        return Err(BearerError::InvalidRequest);
    }
    let value = value.to_str().map_err(|_| BearerError::InvalidRequest)?;
    let (scheme, token) = value.split_once(' ').unwrap_or((value, ""));
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(BearerError::MissingToken);
    }
    let token = token.trim_start_matches(' ');
    let b64token = |c: char| c.is_ascii_alphanumeric() || "-._~+/=".contains(c);
    if token.is_empty() || !token.chars().all(b64token) {
        return Err(BearerError::InvalidRequest);
    }
    Ok(token)
}

fn verifier(req: &HttpRequest) -> Result<Verifier, BearerError> {
    if let Some(v) = req.app_data::<Verifier>() {
        return Ok(v.clone());
    }
    if let Some(v) = req.app_data::<web::Data<Verifier>>() {
        return Ok(v.get_ref().clone());
    }
    tracing::error!("no latchkey_verify::Verifier registered as app data");
    Err(BearerError::NotConfigured)
}

type Extracted<T> = Pin<Box<dyn Future<Output = Result<T, BearerError>>>>;

async fn authenticate(
    verifier: Verifier,
    token: Result<String, BearerError>,
) -> Result<AccessToken, BearerError> {
    Ok(verifier.verify(&token?).await?)
}

impl FromRequest for Authenticated {
    type Error = BearerError;
    type Future = Extracted<Self>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let verifier = verifier(req);
        let token = bearer_token(req).map(str::to_owned);
        Box::pin(async move { authenticate(verifier?, token).await.map(Authenticated) })
    }
}

impl<S: ScopeRequirement + 'static> FromRequest for Scoped<S> {
    type Error = BearerError;
    type Future = Extracted<Self>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let verifier = verifier(req);
        let token = bearer_token(req).map(str::to_owned);
        Box::pin(async move {
            let token = authenticate(verifier?, token).await?;
            if token.missing_scope(S::SCOPES).is_some() {
                return Err(BearerError::InsufficientScope(S::SCOPES.join(" ")));
            }
            Ok(Scoped(token, PhantomData))
        })
    }
}

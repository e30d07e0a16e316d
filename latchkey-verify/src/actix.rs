//! actix-web extractors: [`Authenticated`] for any valid access token,
//! [`Scoped<S>`] for one that carries the scopes `S` names. Both take the
//! token from `Authorization: Bearer <jwt or lkp_…>` or, as Redmine does
//! for its API keys, from HTTP Basic with a personal access token as the
//! password (`Authorization: Basic base64(anything:lkp_…)`; a JWT is
//! never taken from Basic), and check it with [`Verifier::verify`].
//!
//! Basic is there for compatibility with scripts and HTTP libraries that
//! only know user names and passwords. For routes that browsers call,
//! turn it off with [`VerifierBuilder::accept_basic(false)`](crate::VerifierBuilder::accept_basic):
//! a browser that was given the credentials in its Basic prompt sends
//! them with every request to the site by itself, cross-site ones
//! included, so they become ambient credentials open to cross-site
//! request forgery (RFC 6750 section 5), which bearer tokens avoid. Off,
//! Basic counts as no token (401 with a `Bearer` challenge).
//!
//! Failures answer as RFC 6750 section 3 says: 401 with
//! `WWW-Authenticate: Bearer` for a missing or invalid token, 403
//! `insufficient_scope` naming the scope, 400 `invalid_request` for a
//! malformed `Authorization` header, 503 when the issuer is needed and
//! unavailable. A personal access token refused after coming through
//! Basic answers 401 with a `Basic` challenge instead.
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
use base64::Engine;

use crate::introspection::is_personal_access_token;
use crate::{AccessToken, Verifier, VerifyError};

/// The challenge sent when a personal access token presented through
/// HTTP Basic is refused (RFC 7617).
const BASIC_CHALLENGE: &str = "Basic realm=\"api\", charset=\"UTF-8\"";

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
    /// A personal access token sent as the HTTP Basic password was
    /// refused: 401 `invalid_token` in the body, with a `Basic` challenge.
    InvalidBasicToken(VerifyError),
    /// The token lacks scopes: 403 `insufficient_scope`, naming the
    /// space-separated scopes the route needs.
    InsufficientScope(String),
    /// The issuer was needed and could not be used (no signing keys, or
    /// introspection unreachable or refusing this resource server): 503.
    Unavailable,
    /// No [`Verifier`] was registered as app data: 500.
    NotConfigured,
}

impl std::fmt::Display for BearerError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BearerError::MissingToken => f.write_str("a bearer access token is required"),
            BearerError::InvalidRequest => f.write_str("malformed Authorization header"),
            BearerError::InvalidToken(e) | BearerError::InvalidBasicToken(e) => e.fmt(f),
            BearerError::InsufficientScope(s) => write!(f, "the token lacks scope {s}"),
            BearerError::Unavailable => f.write_str("token verification is unavailable"),
            BearerError::NotConfigured => f.write_str("no token verifier is configured"),
        }
    }
}

impl From<VerifyError> for BearerError {
    fn from(e: VerifyError) -> Self {
        if e.is_unavailable() {
            BearerError::Unavailable
        } else {
            BearerError::InvalidToken(e)
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
            BearerError::InvalidToken(_) | BearerError::InvalidBasicToken(_) => {
                Some("invalid_token")
            }
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
            BearerError::InvalidBasicToken(_) => return Some(BASIC_CHALLENGE.to_owned()),
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
            BearerError::MissingToken
            | BearerError::InvalidToken(_)
            | BearerError::InvalidBasicToken(_) => StatusCode::UNAUTHORIZED,
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
    match authorization(req)? {
        Some(("bearer", token)) => bearer_credentials(token),
        _ => Err(BearerError::MissingToken),
    }
}

/// The one `Authorization` header as (lower-case scheme if Bearer or
/// Basic, the rest), `None` when absent.
fn authorization(req: &HttpRequest) -> Result<Option<(&'static str, &str)>, BearerError> {
    let mut values = req.headers().get_all(header::AUTHORIZATION);
    let Some(value) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(BearerError::InvalidRequest);
    }
    let value = value.to_str().map_err(|_| BearerError::InvalidRequest)?;
    let (scheme, rest) = value.split_once(' ').unwrap_or((value, ""));
    let scheme = if scheme.eq_ignore_ascii_case("bearer") {
        "bearer"
    } else if scheme.eq_ignore_ascii_case("basic") {
        "basic"
    } else {
        "other"
    };
    Ok(Some((scheme, rest.trim_start_matches(' '))))
}

/// RFC 6750 section 2.1: one `b64token`.
fn bearer_credentials(token: &str) -> Result<&str, BearerError> {
    let b64token = |c: char| c.is_ascii_alphanumeric() || "-._~+/=".contains(c);
    if token.is_empty() || !token.chars().all(b64token) {
        return Err(BearerError::InvalidRequest);
    }
    Ok(token)
}

/// The password of HTTP Basic credentials (RFC 7617) when it is a
/// personal access token; the user-id is ignored. A password that is not
/// one (a JWT included) counts as no token; credentials that are not
/// base64 of `user-id:password` are a malformed header.
fn basic_personal_access_token(credentials: &str) -> Result<String, BearerError> {
    let raw = base64::engine::general_purpose::STANDARD
        .decode(credentials.trim_end_matches(' '))
        .map_err(|_| BearerError::InvalidRequest)?;
    let raw = String::from_utf8(raw).map_err(|_| BearerError::InvalidRequest)?;
    let (_, password) = raw.split_once(':').ok_or(BearerError::InvalidRequest)?;
    if is_personal_access_token(password) {
        Ok(password.to_owned())
    } else {
        Err(BearerError::MissingToken)
    }
}

/// How the token came, which decides the challenge if it is refused.
#[derive(Clone, PartialEq, Eq)]
enum Presented {
    Bearer(String),
    Basic(String),
}

impl std::fmt::Debug for Presented {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Presented::Bearer(_) => f.write_str("Bearer(<redacted>)"),
            Presented::Basic(_) => f.write_str("Basic(<redacted>)"),
        }
    }
}

/// The access token of a request: a Bearer token, or, if `accept_basic`,
/// a personal access token as the Basic password.
fn presented(req: &HttpRequest, accept_basic: bool) -> Result<Presented, BearerError> {
    match authorization(req)? {
        Some(("bearer", token)) => {
            bearer_credentials(token).map(|t| Presented::Bearer(t.to_owned()))
        }
        Some(("basic", credentials)) if accept_basic => {
            basic_personal_access_token(credentials).map(Presented::Basic)
        }
        _ => Err(BearerError::MissingToken),
    }
}

/// The verifier and the token of a request.
fn extract(
    req: &HttpRequest,
) -> (
    Result<Verifier, BearerError>,
    Result<Presented, BearerError>,
) {
    let verifier = verifier(req);
    let accept_basic = verifier.as_ref().is_ok_and(Verifier::accepts_basic);
    (verifier, presented(req, accept_basic))
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
    verifier: Result<Verifier, BearerError>,
    presented: Result<Presented, BearerError>,
) -> Result<AccessToken, BearerError> {
    let verifier = verifier?;
    match presented? {
        Presented::Bearer(token) => Ok(verifier.verify(&token).await?),
        Presented::Basic(token) => {
            verifier
                .verify(&token)
                .await
                .map_err(|e| match BearerError::from(e) {
                    BearerError::InvalidToken(e) => BearerError::InvalidBasicToken(e),
                    other => other,
                })
        }
    }
}

impl FromRequest for Authenticated {
    type Error = BearerError;
    type Future = Extracted<Self>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let (verifier, presented) = extract(req);
        Box::pin(async move { authenticate(verifier, presented).await.map(Authenticated) })
    }
}

impl<S: ScopeRequirement + 'static> FromRequest for Scoped<S> {
    type Error = BearerError;
    type Future = Extracted<Self>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let (verifier, presented) = extract(req);
        Box::pin(async move {
            let token = authenticate(verifier, presented).await?;
            if token.missing_scope(S::SCOPES).is_some() {
                return Err(BearerError::InsufficientScope(S::SCOPES.join(" ")));
            }
            Ok(Scoped(token, PhantomData))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::test::TestRequest;
    use base64::engine::general_purpose::STANDARD;

    fn pat() -> String {
        format!("lkp_{}", "Q".repeat(43))
    }

    fn with_auth(values: &[&str]) -> HttpRequest {
        let mut req = TestRequest::default();
        for v in values {
            req = req.append_header((header::AUTHORIZATION, *v));
        }
        req.to_http_request()
    }

    fn taken(req: &HttpRequest) -> Result<Presented, BearerError> {
        presented(req, true)
    }

    fn basic(user_and_password: &str) -> String {
        format!("Basic {}", STANDARD.encode(user_and_password))
    }

    #[test]
    fn bearer_takes_either_kind() {
        let jwt = "eyJhbGciOiJSUzI1NiJ9.e30.c2ln";
        assert_eq!(
            taken(&with_auth(&[&format!("Bearer {jwt}")])),
            Ok(Presented::Bearer(jwt.into()))
        );
        assert_eq!(
            taken(&with_auth(&[&format!("bearer  {}", pat())])),
            Ok(Presented::Bearer(pat()))
        );
        assert_eq!(
            taken(&with_auth(&["Bearer a b"])),
            Err(BearerError::InvalidRequest)
        );
        assert_eq!(
            taken(&with_auth(&["Bearer"])),
            Err(BearerError::InvalidRequest)
        );
        assert_eq!(taken(&with_auth(&[])), Err(BearerError::MissingToken));
        assert_eq!(
            taken(&with_auth(&["Digest x", "Bearer y"])),
            Err(BearerError::InvalidRequest),
            "two Authorization headers"
        );
        assert_eq!(
            taken(&with_auth(&["Digest username=\"a\""])),
            Err(BearerError::MissingToken)
        );
    }

    #[test]
    fn basic_takes_a_personal_access_token_as_the_password_only() {
        for user in ["", "alice", "x"] {
            let h = basic(&format!("{user}:{}", pat()));
            assert_eq!(
                taken(&with_auth(&[&h])),
                Ok(Presented::Basic(pat())),
                "{user:?}"
            );
        }
        let lower = format!("basic {}", STANDARD.encode(format!("u:{}", pat())));
        assert_eq!(taken(&with_auth(&[&lower])), Ok(Presented::Basic(pat())));
        // The password must be the token: not the user-id, never a JWT,
        // not an ordinary password.
        for not_a_pat in [
            format!("{}:x", pat()),
            "u:eyJhbGciOiJSUzI1NiJ9.e30.c2ln".to_owned(),
            "a:b".to_owned(),
            format!("u:x{}", pat()),
        ] {
            assert_eq!(
                taken(&with_auth(&[&basic(&not_a_pat)])),
                Err(BearerError::MissingToken),
                "{not_a_pat}"
            );
        }
        // Not base64 of `user-id:password`: a malformed header.
        for bad in ["Basic !!!", "Basic", &basic("no-colon"), "Basic /w=="] {
            assert_eq!(
                taken(&with_auth(&[bad])),
                Err(BearerError::InvalidRequest),
                "{bad}"
            );
        }
        // A password containing colons is kept whole after the first one.
        let odd = format!("lkp_{}", "a".repeat(43));
        assert_eq!(
            basic_personal_access_token(&STANDARD.encode(format!("u:{odd}"))),
            Ok(odd)
        );
        assert_eq!(
            format!("{:?}", Presented::Basic(pat())),
            "Basic(<redacted>)"
        );
    }

    fn challenge(e: &BearerError) -> Option<String> {
        e.error_response()
            .headers()
            .get(header::WWW_AUTHENTICATE)
            .map(|v| v.to_str().unwrap().to_owned())
    }

    fn offline_only() -> Verifier {
        Verifier::builder("https://id.example", "https://api.example")
            .pinned_jwks(r#"{"keys":[]}"#)
            .build()
            .unwrap()
    }

    #[tokio::test]
    async fn refusals_answer_in_the_scheme_the_token_came_in() {
        // Bearer: RFC 6750.
        let e = authenticate(Ok(offline_only()), Ok(Presented::Bearer(pat())))
            .await
            .unwrap_err();
        assert_eq!(
            e,
            BearerError::InvalidToken(VerifyError::IntrospectionNotConfigured)
        );
        assert_eq!(e.status_code(), StatusCode::UNAUTHORIZED);
        assert_eq!(
            challenge(&e).unwrap(),
            "Bearer error=\"invalid_token\", error_description=\"personal access tokens are not accepted here\""
        );
        // Basic: the same refusal, a Basic challenge.
        let e = authenticate(Ok(offline_only()), Ok(Presented::Basic(pat())))
            .await
            .unwrap_err();
        assert_eq!(
            e,
            BearerError::InvalidBasicToken(VerifyError::IntrospectionNotConfigured)
        );
        assert_eq!(e.status_code(), StatusCode::UNAUTHORIZED);
        assert_eq!(challenge(&e).unwrap(), BASIC_CHALLENGE);
        // A malformed personal access token never reaches the issuer.
        let short = Presented::Basic("lkp_short".into());
        assert_eq!(
            authenticate(Ok(offline_only()), Ok(short)).await,
            Err(BearerError::InvalidBasicToken(VerifyError::Malformed))
        );
        // An untrusted introspection endpoint is no verdict on the token either.
        assert_eq!(
            BearerError::from(VerifyError::UntrustedIntrospectionEndpoint),
            BearerError::Unavailable
        );
        // Outages are 503 without a challenge, whatever the scheme.
        for outage in [
            VerifyError::IntrospectionUnavailable,
            VerifyError::IntrospectionRefused,
            VerifyError::KeysUnavailable,
        ] {
            let e = BearerError::from(outage);
            assert_eq!(e, BearerError::Unavailable);
            assert_eq!(e.status_code(), StatusCode::SERVICE_UNAVAILABLE);
            assert_eq!(challenge(&e), None);
        }
    }

    async fn extracted(
        verifier: Verifier,
        authorization: &str,
    ) -> Result<AccessToken, BearerError> {
        let req = TestRequest::default()
            .app_data(verifier)
            .append_header((header::AUTHORIZATION, authorization))
            .to_http_request();
        Authenticated::from_request(&req, &mut Payload::None)
            .await
            .map(|a| a.0)
    }

    #[tokio::test]
    async fn basic_can_be_turned_off() {
        let via_basic = basic(&format!("me:{}", pat()));
        let via_bearer = format!("Bearer {}", pat());
        // On by default: the token is taken (and refused here, for want
        // of introspection, with a Basic challenge).
        assert!(offline_only().accepts_basic());
        assert_eq!(
            extracted(offline_only(), &via_basic).await,
            Err(BearerError::InvalidBasicToken(
                VerifyError::IntrospectionNotConfigured
            ))
        );
        // Off: Basic is no token at all, answered with a Bearer challenge
        // (no Basic one that would make a browser prompt); Bearer as ever.
        let off = Verifier::builder("https://id.example", "https://api.example")
            .pinned_jwks(r#"{"keys":[]}"#)
            .accept_basic(false)
            .build()
            .unwrap();
        assert!(!off.accepts_basic());
        let e = extracted(off.clone(), &via_basic).await.unwrap_err();
        assert_eq!(e, BearerError::MissingToken);
        assert_eq!(e.status_code(), StatusCode::UNAUTHORIZED);
        assert_eq!(challenge(&e).as_deref(), Some("Bearer"));
        assert_eq!(
            extracted(off, &via_bearer).await,
            Err(BearerError::InvalidToken(
                VerifyError::IntrospectionNotConfigured
            ))
        );
    }
}

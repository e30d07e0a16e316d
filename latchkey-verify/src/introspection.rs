//! Checking a token at the issuer (RFC 7662): how personal access tokens
//! (`lkp_…`, opaque, only the issuer can judge them) are verified, and
//! how any access token can be, for a resource server that wants to see a
//! revocation within the cache time rather than at the token's expiry.
//!
//! The resource server authenticates with its own client credentials
//! (`client_secret_basic` by default, or `client_secret_post`). Answers
//! are kept in a [`TokenCache`] keyed by the token's SHA-256. A request
//! has a timeout and its answer a size limit; a failure to ask is an
//! outage ([`VerifyError::IntrospectionUnavailable`] or
//! [`VerifyError::IntrospectionRefused`]), never a refusal of the token,
//! and is not cached. Neither the token nor the secret is ever logged.
//!
//! The issuer is protected from the resource server turning into an
//! amplifier (say, a flood of made-up `lkp_` tokens): concurrent callers
//! with the same uncached token share one request ([`Flights`]), and at
//! most `max_concurrent` requests are out at once; a caller that cannot
//! get a turn within the request timeout is answered
//! [`VerifyError::IntrospectionUnavailable`].
//!
//! The endpoint receives the client secret and users' tokens, so it must
//! be trusted: https unless the issuer is plain http, and on the issuer's
//! origin when it comes from discovery (see
//! [`trusted_introspection_endpoint`]).

use std::future::Future;
use std::sync::RwLock;
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use reqwest::header::{ACCEPT, AUTHORIZATION};
use reqwest::{StatusCode, Url};
use serde_json::{Map, Value};
use tokio::sync::{Semaphore, SemaphorePermit};

use crate::cache::{self, Answer, Key, Lifetimes, TokenCache};
use crate::claims::{self, ClaimRules, TokenKind};
use crate::discovery::{Untrusted, read_limited, trusted_introspection_endpoint};
use crate::error::VerifyError;
use crate::flight::Flights;

/// How every personal access token begins, so that verifiers can route
/// them and secret scanners can find leaked ones.
pub const PAT_PREFIX: &str = "lkp_";

/// The base64url characters after the prefix (256 random bits).
const PAT_SECRET_LEN: usize = 43;

/// Largest introspection answer accepted: a few hundred bytes are usual.
const MAX_ANSWER_BYTES: usize = 64 * 1024;

/// Longest token sent to the issuer (Latchkey refuses longer ones).
const MAX_TOKEN_BYTES: usize = 8192;

/// True when `token` claims to be a personal access token (by its
/// prefix): such a token goes to introspection, never to JWT checks.
pub(crate) fn is_personal_access_token(token: &str) -> bool {
    token.starts_with(PAT_PREFIX)
}

/// `lkp_` and 43 base64url characters.
fn well_formed_pat(token: &str) -> bool {
    token.strip_prefix(PAT_PREFIX).is_some_and(|rest| {
        rest.len() == PAT_SECRET_LEN
            && rest
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    })
}

/// What `token` is by its shape: a personal access token (by the prefix;
/// one that is not well formed is refused here, without asking the
/// issuer), else a JWT.
pub(crate) fn kind_of(token: &str) -> Result<TokenKind, VerifyError> {
    if !is_personal_access_token(token) {
        Ok(TokenKind::Jwt)
    } else if well_formed_pat(token) {
        Ok(TokenKind::PersonalAccessToken)
    } else {
        Err(VerifyError::Malformed)
    }
}

/// How a resource server authenticates at the introspection endpoint
/// (RFC 6749 section 2.3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum ClientAuth {
    /// HTTP Basic with the form-urlencoded id and secret (the default).
    #[default]
    SecretBasic,
    /// `client_id` and `client_secret` in the form body.
    SecretPost,
}

/// A client secret. Its `Debug` never shows it.
#[derive(Clone)]
pub(crate) struct Secret(pub String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

/// What the builder collects for introspection.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    pub client_id: String,
    pub secret: Secret,
    pub auth: ClientAuth,
    pub lifetimes: Lifetimes,
    pub capacity: usize,
    pub timeout: Duration,
    /// Most requests out at once (at least 1).
    pub max_concurrent: usize,
}

/// Introspection for one verifier: credentials, the endpoint (set, or
/// learnt from discovery), the answer cache, the requests in flight and
/// the permits that bound them.
pub(crate) struct Introspector {
    settings: Settings,
    /// The issuer's URL, whose origin a discovered endpoint must share.
    issuer: Url,
    endpoint: RwLock<Option<Url>>,
    cache: TokenCache,
    flights: Flights<Key, Answer>,
    /// Callers that need the endpoint from discovery share one fetch.
    discovery: Flights<(), Result<Url, VerifyError>>,
    permits: Semaphore,
}

impl std::fmt::Debug for Introspector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Introspector")
            .field("settings", &self.settings)
            .field("endpoint", &self.endpoint().map(String::from))
            .field("cache", &self.cache)
            .finish_non_exhaustive()
    }
}

impl Introspector {
    /// `endpoint` is one set explicitly (and checked by the caller with
    /// [`trusted_introspection_endpoint`]).
    pub(crate) fn new(settings: Settings, issuer: Url, endpoint: Option<Url>) -> Self {
        let permits = settings.max_concurrent.clamp(1, Semaphore::MAX_PERMITS);
        Self {
            cache: TokenCache::new(settings.capacity, settings.lifetimes),
            settings,
            issuer,
            endpoint: RwLock::new(endpoint),
            flights: Flights::default(),
            discovery: Flights::default(),
            permits: Semaphore::new(permits),
        }
    }

    pub(crate) fn client_id(&self) -> &str {
        &self.settings.client_id
    }

    /// The endpoint, if known yet.
    pub(crate) fn endpoint(&self) -> Option<Url> {
        self.endpoint
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// The endpoint if known, else the outcome of `discover`, which
    /// concurrent callers share.
    pub(crate) async fn endpoint_or<F: Future<Output = Result<Url, VerifyError>>>(
        &self,
        discover: impl FnOnce() -> F,
    ) -> Result<Url, VerifyError> {
        match self.endpoint() {
            Some(known) => Ok(known),
            None => self.discovery.run((), discover()).await,
        }
    }

    /// The endpoint: the one known already (an endpoint set in the
    /// builder wins), else `discovered`, recorded if it may be trusted.
    pub(crate) fn learn_endpoint(&self, discovered: &str) -> Result<Url, Untrusted> {
        let mut endpoint = self
            .endpoint
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(known) = endpoint.as_ref() {
            return Ok(known.clone());
        }
        let url = trusted_introspection_endpoint(discovered, &self.issuer, false)?;
        *endpoint = Some(url.clone());
        Ok(url)
    }

    /// The answer cached for `token`, if any.
    pub(crate) fn cached(&self, token: &str) -> Option<Answer> {
        self.cache.get(&cache::key(token), Instant::now())
    }

    /// The answer for `token`: cached, else the one of the request in
    /// flight for it, else `request`'s (made when one of the permits is
    /// free), which is then cached.
    pub(crate) async fn answer<F: Future<Output = Answer>>(
        &self,
        token: &str,
        request: impl FnOnce() -> F,
    ) -> Answer {
        if token.len() > MAX_TOKEN_BYTES {
            return Err(VerifyError::Malformed);
        }
        let key = cache::key(token);
        if let Some(answer) = self.cache.get(&key, Instant::now()) {
            return answer;
        }
        let flight = async {
            // A flight that ended just now may have left its answer.
            if let Some(answer) = self.cache.get(&key, Instant::now()) {
                return answer;
            }
            let _permit = self.permit().await?;
            let (started, unix_started) = (Instant::now(), crate::verifier::unix_now());
            let answer = request().await;
            self.cache.put(key, &answer, started, unix_started);
            answer
        };
        self.flights.run(key, flight).await
    }

    /// A turn to ask the issuer, waiting at most the request timeout.
    async fn permit(&self) -> Result<SemaphorePermit<'_>, VerifyError> {
        match tokio::time::timeout(self.settings.timeout, self.permits.acquire()).await {
            Ok(Ok(permit)) => Ok(permit),
            _ => {
                tracing::warn!(
                    limit = self.settings.max_concurrent,
                    "too many token introspection requests at once; not asking the issuer"
                );
                Err(VerifyError::IntrospectionUnavailable)
            }
        }
    }

    /// Asks the issuer about `token` (of `kind`) at `endpoint` and checks
    /// the answer against `rules`.
    pub(crate) async fn ask(
        &self,
        http: &reqwest::Client,
        endpoint: &Url,
        token: &str,
        rules: &ClaimRules,
        kind: TokenKind,
    ) -> Answer {
        let map = self.request(http, endpoint, token).await?;
        claims::check_introspected(map, rules, crate::verifier::unix_now(), kind)
    }

    /// One RFC 7662 request. `Ok` is an answer with `active: true`.
    async fn request(
        &self,
        http: &reqwest::Client,
        endpoint: &Url,
        token: &str,
    ) -> Result<Map<String, Value>, VerifyError> {
        let s = &self.settings;
        let req = http
            .post(endpoint.clone())
            .header(ACCEPT, "application/json")
            .timeout(s.timeout);
        let req = match s.auth {
            ClientAuth::SecretBasic => req
                .header(AUTHORIZATION, basic_credentials(&s.client_id, &s.secret.0))
                .form(&[("token", token)]),
            ClientAuth::SecretPost => req.form(&[
                ("token", token),
                ("client_id", &s.client_id),
                ("client_secret", &s.secret.0),
            ]),
        };
        let unavailable = |why: &dyn std::fmt::Display| {
            tracing::warn!(%endpoint, error = %why, "token introspection failed");
            VerifyError::IntrospectionUnavailable
        };
        let resp = req.send().await.map_err(|e| unavailable(&e))?;
        let status = resp.status();
        let body = read_limited(resp, MAX_ANSWER_BYTES)
            .await
            .map_err(|e| unavailable(&e))?;
        match parse_answer(status, &body) {
            Err(VerifyError::IntrospectionRefused) => {
                tracing::error!(
                    %endpoint,
                    client_id = %s.client_id,
                    "the issuer refused this resource server's client credentials for introspection"
                );
                Err(VerifyError::IntrospectionRefused)
            }
            Err(VerifyError::IntrospectionUnavailable) => Err(unavailable(&format_args!(
                "HTTP {status}, not an RFC 7662 answer"
            ))),
            other => other,
        }
    }
}

/// Reads an introspection response: an active answer, `Inactive`, the
/// client refused (401, or `invalid_client`), or unavailable.
fn parse_answer(status: StatusCode, body: &[u8]) -> Result<Map<String, Value>, VerifyError> {
    let json: Option<Map<String, Value>> = serde_json::from_slice(body).ok();
    if status == StatusCode::UNAUTHORIZED
        || json
            .as_ref()
            .and_then(|j| j.get("error"))
            .is_some_and(|e| e == "invalid_client")
    {
        return Err(VerifyError::IntrospectionRefused);
    }
    if !status.is_success() {
        return Err(VerifyError::IntrospectionUnavailable);
    }
    let answer = json.ok_or(VerifyError::IntrospectionUnavailable)?;
    match answer.get("active") {
        Some(Value::Bool(true)) => Ok(answer),
        Some(Value::Bool(false)) => Err(VerifyError::Inactive),
        _ => Err(VerifyError::IntrospectionUnavailable),
    }
}

/// `Authorization: Basic` for a client (RFC 6749 section 2.3.1: id and
/// secret each form-urlencoded first).
fn basic_credentials(client_id: &str, secret: &str) -> String {
    let pair = format!("{}:{}", form_urlencode(client_id), form_urlencode(secret));
    format!("Basic {}", STANDARD.encode(pair))
}

/// `application/x-www-form-urlencoded` for one value: unreserved
/// characters as they are, every other byte as `%XX`.
fn form_urlencode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn personal_access_tokens_are_recognised_by_shape() {
        let good = format!("lkp_{}", "A".repeat(43));
        assert_eq!(kind_of(&good), Ok(TokenKind::PersonalAccessToken));
        let mixed = "lkp_abcdefghijklmnopqrstuvwxyzABCDEFGHIJ-_01234";
        assert!(well_formed_pat(mixed), "{}", mixed.len());
        for bad in [
            "lkp_".to_owned(),
            format!("lkp_{}", "A".repeat(42)),
            format!("lkp_{}", "A".repeat(44)),
            format!("lkp_{}+", "A".repeat(42)),
            format!("lkp_{}=", "A".repeat(42)),
        ] {
            assert!(is_personal_access_token(&bad), "{bad}");
            assert_eq!(kind_of(&bad), Err(VerifyError::Malformed), "{bad}");
        }
        for other in ["eyJ.e30.sig", "LKP_x", "xlkp_", ""] {
            assert_eq!(kind_of(other), Ok(TokenKind::Jwt), "{other}");
        }
    }

    #[test]
    fn client_credentials_are_form_urlencoded_in_basic() {
        assert_eq!(form_urlencode("a-Z_0.~"), "a-Z_0.~");
        assert_eq!(form_urlencode("a b+c:d%é"), "a%20b%2Bc%3Ad%25%C3%A9");
        let header = basic_credentials("notes api", "s:e+cret");
        let decoded = STANDARD
            .decode(header.strip_prefix("Basic ").unwrap())
            .unwrap();
        assert_eq!(decoded, b"notes%20api:s%3Ae%2Bcret");
    }

    #[test]
    fn answers_are_read_as_rfc_7662_says() {
        let ok = StatusCode::OK;
        let body = |v: Value| serde_json::to_vec(&v).unwrap();
        let active = parse_answer(ok, &body(json!({"active": true, "sub": "u"}))).unwrap();
        assert_eq!(active["sub"], "u");
        assert_eq!(
            parse_answer(ok, &body(json!({"active": false}))),
            Err(VerifyError::Inactive)
        );
        for odd in [json!({}), json!({"active": "true"}), json!([true])] {
            assert_eq!(
                parse_answer(ok, &body(odd)),
                Err(VerifyError::IntrospectionUnavailable)
            );
        }
        assert_eq!(
            parse_answer(ok, b"<html>"),
            Err(VerifyError::IntrospectionUnavailable)
        );
        // The resource server's own credentials refused: not the token's fault.
        assert_eq!(
            parse_answer(
                StatusCode::UNAUTHORIZED,
                &body(json!({"error": "invalid_client"}))
            ),
            Err(VerifyError::IntrospectionRefused)
        );
        assert_eq!(
            parse_answer(
                StatusCode::BAD_REQUEST,
                &body(json!({"error": "invalid_client"}))
            ),
            Err(VerifyError::IntrospectionRefused)
        );
        for status in [StatusCode::SERVICE_UNAVAILABLE, StatusCode::BAD_REQUEST] {
            assert_eq!(
                parse_answer(status, &body(json!({"error": "temporarily_unavailable"}))),
                Err(VerifyError::IntrospectionUnavailable)
            );
        }
    }

    #[test]
    fn the_secret_is_never_printed() {
        let s = Settings {
            client_id: "notes-api".into(),
            secret: Secret("hunter2-very-secret".into()),
            auth: ClientAuth::default(),
            lifetimes: Lifetimes {
                positive: Duration::from_secs(60),
                negative: Duration::from_secs(5),
            },
            capacity: 10,
            timeout: Duration::from_secs(5),
            max_concurrent: 32,
        };
        let issuer = Url::parse("https://id.example").unwrap();
        let printed = format!("{:?}", Introspector::new(s, issuer, None));
        assert!(printed.contains("notes-api"), "{printed}");
        assert!(!printed.contains("hunter2"), "{printed}");
    }
}

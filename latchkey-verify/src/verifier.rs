//! The verifier a resource server keeps for its whole life: it learns the
//! issuer's keys from discovery and the JWKS, caches them as long as the
//! issuer's `Cache-Control` says, refreshes on an unknown `kid` at most
//! once per interval, and goes on verifying with the keys it has while
//! the issuer is unreachable. With introspection configured it also
//! accepts personal access tokens, which only the issuer can judge
//! (`introspection.rs`).

use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use reqwest::header::{CACHE_CONTROL, ETAG, IF_NONE_MATCH};
use reqwest::{StatusCode, Url};

use crate::algorithm::Algorithm;
use crate::cache::Lifetimes;
use crate::claims::{self, AccessToken, ClaimRules, TokenKind};
use crate::discovery::{
    self, MAX_DOCUMENT_BYTES, Untrusted, read_limited, trusted_introspection_endpoint,
};
use crate::error::VerifyError;
use crate::introspection::{self, ClientAuth, Introspector, Secret};
use crate::jws;
use crate::keys::KeySet;

/// Verifies Latchkey access tokens: JWTs offline, personal access tokens
/// by introspection (when configured). Cheap to clone (one `Arc`); share
/// one per issuer across the whole server.
#[derive(Clone)]
pub struct Verifier {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verifier")
            .field("issuer", &self.inner.rules.issuer)
            .field("audience", &self.inner.rules.audience)
            .field(
                "introspection_client_id",
                &self
                    .inner
                    .introspection
                    .as_ref()
                    .map(Introspector::client_id),
            )
            .field("accept_basic", &self.inner.accept_basic)
            .finish_non_exhaustive()
    }
}

struct Inner {
    rules: ClaimRules,
    algorithms: Vec<Algorithm>,
    source: Source,
    min_refresh: Duration,
    default_ttl: Duration,
    max_ttl: Duration,
    cache: RwLock<Cache>,
    /// Held while fetching, so concurrent misses cause one fetch.
    refresh_lock: tokio::sync::Mutex<()>,
    /// For discovery, the JWKS and introspection; `None` only when the
    /// keys are pinned and introspection is off (nothing is ever fetched).
    http: Option<reqwest::Client>,
    discovery_url: String,
    introspection: Option<Introspector>,
    accept_basic: bool,
}

enum Source {
    Remote {
        /// From the builder, or learnt from discovery on the first fetch.
        jwks_uri: RwLock<Option<String>>,
    },
    /// Keys given at build time, never fetched.
    Pinned,
}

struct Cache {
    keys: Arc<KeySet>,
    loaded: bool,
    fresh_until: Option<Instant>,
    last_attempt: Option<Instant>,
    etag: Option<String>,
    /// Bumped on every fetch attempt: a waiter that sees it moved knows
    /// another task fetched meanwhile.
    generation: u64,
}

/// Why a [`Verifier`] could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// The issuer is not an absolute http(s) URL.
    #[error("issuer must be an absolute https:// (or http:// for local testing) URL")]
    InvalidIssuer,
    /// No audience was given.
    #[error("an expected audience is required (RFC 9068 section 4)")]
    MissingAudience,
    /// The algorithm allow-list is empty.
    #[error("the algorithm allow-list is empty")]
    NoAlgorithms,
    /// The pinned JWKS could not be parsed.
    #[error(transparent)]
    InvalidJwks(#[from] crate::keys::InvalidJwks),
    /// The HTTP client could not be built.
    #[error("HTTP client: {0}")]
    Http(#[from] reqwest::Error),
    /// Introspection was enabled with an empty client id or secret.
    #[error("introspection needs this resource server's client id and secret")]
    InvalidIntrospectionClient,
    /// The introspection endpoint is not an absolute http(s) URL (or it
    /// carries user information, `https://user@host/`).
    #[error("the introspection endpoint must be an absolute https:// (or http://) URL")]
    InvalidIntrospectionEndpoint,
    /// The introspection endpoint is plain http while the issuer is
    /// https: the client secret and users' tokens would travel in clear.
    #[error("the introspection endpoint must be https:// (http:// only with an http:// issuer)")]
    InsecureIntrospectionEndpoint,
    /// [`VerifierBuilder::introspection_max_concurrent`] was zero.
    #[error("at least one introspection request at a time must be allowed")]
    NoIntrospectionConcurrency,
}

/// Settings for a [`Verifier`]; start with [`Verifier::builder`].
#[derive(Debug)]
pub struct VerifierBuilder {
    issuer: String,
    audience: String,
    leeway: Duration,
    min_refresh: Duration,
    default_ttl: Duration,
    max_ttl: Duration,
    algorithms: Vec<Algorithm>,
    jwks_uri: Option<String>,
    pinned_jwks: Option<Vec<u8>>,
    http: Option<reqwest::Client>,
    introspection: Option<(String, Secret)>,
    introspection_endpoint: Option<String>,
    introspection_auth: ClientAuth,
    introspection_ttls: Lifetimes,
    introspection_cache_size: usize,
    introspection_timeout: Duration,
    introspection_max_concurrent: usize,
    accept_basic: bool,
}

fn absolute_http_url(url: &str) -> bool {
    ["https://", "http://"]
        .iter()
        .any(|s| url.len() > s.len() && url.starts_with(s))
}

impl VerifierBuilder {
    /// Clock skew tolerated on `exp`, `nbf` and `iat` (default 30 s).
    pub fn leeway(mut self, leeway: Duration) -> Self {
        self.leeway = leeway;
        self
    }

    /// The least time between two JWKS fetches, whatever the reason: an
    /// unknown `kid`, stale keys or a failed fetch (default 30 s). Tokens
    /// with made-up kids cannot make the verifier hammer the issuer.
    pub fn min_refresh_interval(mut self, interval: Duration) -> Self {
        self.min_refresh = interval;
        self
    }

    /// How long keys stay fresh when the JWKS response has no
    /// `Cache-Control: max-age` (default 5 min).
    pub fn default_cache_ttl(mut self, ttl: Duration) -> Self {
        self.default_ttl = ttl;
        self
    }

    /// Upper bound on a `max-age` the issuer sends (default 24 h).
    pub fn max_cache_ttl(mut self, ttl: Duration) -> Self {
        self.max_ttl = ttl;
        self
    }

    /// The signature algorithms accepted (default: all of
    /// [`Algorithm::ALL`]). Narrow it to what your issuer signs with.
    pub fn algorithms(mut self, algorithms: impl IntoIterator<Item = Algorithm>) -> Self {
        self.algorithms = algorithms.into_iter().collect();
        self
    }

    /// Fetch keys from this URL instead of the `jwks_uri` in discovery.
    pub fn jwks_uri(mut self, uri: impl Into<String>) -> Self {
        self.jwks_uri = Some(uri.into());
        self
    }

    /// Pin the keys: verify only with this JWKS document and never fetch.
    /// For resource servers that must not reach the issuer at all; key
    /// rotation then needs a new document and a restart.
    pub fn pinned_jwks(mut self, jwks: impl Into<Vec<u8>>) -> Self {
        self.pinned_jwks = Some(jwks.into());
        self
    }

    /// The HTTP client for discovery, JWKS and introspection requests
    /// (default: rustls, 5 s connect and 10 s overall timeouts, no
    /// redirects).
    pub fn http_client(mut self, client: reqwest::Client) -> Self {
        self.http = Some(client);
        self
    }

    /// Accept personal access tokens (`lkp_…`) by asking the issuer's
    /// introspection endpoint (RFC 7662), authenticated as this resource
    /// server's own confidential client, which an administrator registered
    /// as serving this API's audience. Without this, a personal access
    /// token is refused with [`VerifyError::IntrospectionNotConfigured`].
    /// Also enables [`Verifier::introspect`] for JWTs.
    ///
    /// Answers are cached (see [`introspection_cache_ttl`](Self::introspection_cache_ttl)),
    /// so a revoked token keeps working here for up to that long.
    pub fn introspection(
        mut self,
        client_id: impl Into<String>,
        client_secret: impl Into<String>,
    ) -> Self {
        self.introspection = Some((client_id.into(), Secret(client_secret.into())));
        self
    }

    /// Use this introspection endpoint instead of `introspection_endpoint`
    /// from discovery. It receives this resource server's client secret
    /// and users' tokens, so it must be https unless the issuer is plain
    /// http (local development). An endpoint learnt from discovery must
    /// moreover be on the issuer's origin (scheme, host and port), else
    /// it is refused ([`VerifyError::UntrustedIntrospectionEndpoint`]);
    /// one set here may be anywhere: you vouch for it.
    pub fn introspection_endpoint(mut self, url: impl Into<String>) -> Self {
        self.introspection_endpoint = Some(url.into());
        self
    }

    /// How to present the client credentials (default: HTTP Basic).
    pub fn introspection_client_auth(mut self, auth: ClientAuth) -> Self {
        self.introspection_auth = auth;
        self
    }

    /// How long a token the issuer said is active stays accepted without
    /// asking again (default 60 s; never past the token's `exp`; zero asks
    /// every time). This is how late a revocation may take effect here.
    pub fn introspection_cache_ttl(mut self, ttl: Duration) -> Self {
        self.introspection_ttls.positive = ttl;
        self
    }

    /// How long a refused token stays refused without asking again
    /// (default 5 s): enough to absorb a burst of retries with a bad
    /// token, short enough not to matter otherwise. Outages are never
    /// cached.
    pub fn introspection_negative_cache_ttl(mut self, ttl: Duration) -> Self {
        self.introspection_ttls.negative = ttl;
        self
    }

    /// Most answers kept (default 10 000); when full, expired ones go
    /// first, then a tenth of the capacity that would expire soonest.
    pub fn introspection_cache_size(mut self, entries: usize) -> Self {
        self.introspection_cache_size = entries;
        self
    }

    /// Time limit for one introspection request (default 5 s), and for
    /// the wait for a turn when
    /// [`introspection_max_concurrent`](Self::introspection_max_concurrent)
    /// requests are already out.
    pub fn introspection_timeout(mut self, timeout: Duration) -> Self {
        self.introspection_timeout = timeout;
        self
    }

    /// Most introspection requests out at once (default 32, at least 1).
    /// Callers with the same uncached token always share one request;
    /// this bounds the requests for different ones, so that a flood of
    /// made-up `lkp_` tokens cannot turn this server into an amplifier
    /// against the issuer. A caller that gets no turn within the
    /// [timeout](Self::introspection_timeout) is answered
    /// [`VerifyError::IntrospectionUnavailable`] (503 from the extractors).
    pub fn introspection_max_concurrent(mut self, requests: usize) -> Self {
        self.introspection_max_concurrent = requests;
        self
    }

    /// Whether the `actix` extractors take a personal access token from
    /// HTTP Basic, as the password (default true), as Redmine does for
    /// its API keys so that `curl -u me:$TOKEN` and HTTP libraries that
    /// only know passwords work. Turn it off for APIs that browsers call:
    /// a browser that was once given the credentials in its Basic prompt
    /// sends them by itself with every request to the site, cross-site
    /// ones included, which makes them ambient credentials open to
    /// cross-site request forgery (RFC 6750 section 5), exactly what
    /// bearer tokens avoid. Off, Basic counts as no token at all (401 with
    /// a `Bearer` challenge, so no browser prompt either).
    pub fn accept_basic(mut self, accept: bool) -> Self {
        self.accept_basic = accept;
        self
    }

    /// Checks the settings. Nothing is fetched yet: the first
    /// verification (or [`Verifier::prefetch`]) does that.
    pub fn build(self) -> Result<Verifier, BuildError> {
        let issuer_url = match Url::parse(&self.issuer) {
            Ok(url) if absolute_http_url(&self.issuer) && url.has_host() => url,
            _ => return Err(BuildError::InvalidIssuer),
        };
        if self.audience.is_empty() {
            return Err(BuildError::MissingAudience);
        }
        if self.algorithms.is_empty() {
            return Err(BuildError::NoAlgorithms);
        }
        let mut cache = Cache {
            keys: Arc::new(KeySet::default()),
            loaded: false,
            fresh_until: None,
            last_attempt: None,
            etag: None,
            generation: 0,
        };
        let introspection = match self.introspection {
            None => None,
            Some((client_id, secret)) => {
                if client_id.is_empty() || secret.0.is_empty() {
                    return Err(BuildError::InvalidIntrospectionClient);
                }
                if self.introspection_max_concurrent == 0 {
                    return Err(BuildError::NoIntrospectionConcurrency);
                }
                let endpoint = match self.introspection_endpoint.as_deref() {
                    None => None,
                    Some(e) => Some(
                        trusted_introspection_endpoint(e, &issuer_url, true).map_err(|why| {
                            match why {
                                Untrusted::NotHttps => BuildError::InsecureIntrospectionEndpoint,
                                _ => BuildError::InvalidIntrospectionEndpoint,
                            }
                        })?,
                    ),
                };
                Some(Introspector::new(
                    introspection::Settings {
                        client_id,
                        secret,
                        auth: self.introspection_auth,
                        lifetimes: self.introspection_ttls,
                        capacity: self.introspection_cache_size,
                        timeout: self.introspection_timeout,
                        max_concurrent: self.introspection_max_concurrent,
                    },
                    issuer_url,
                    endpoint,
                ))
            }
        };
        let source = match self.pinned_jwks {
            Some(doc) => {
                cache.keys = Arc::new(KeySet::from_jwks(&doc, &self.algorithms)?);
                cache.loaded = true;
                Source::Pinned
            }
            None => Source::Remote {
                jwks_uri: RwLock::new(self.jwks_uri),
            },
        };
        let needs_http = matches!(source, Source::Remote { .. }) || introspection.is_some();
        let http = match self.http {
            Some(c) => Some(c),
            None if needs_http => Some(
                reqwest::Client::builder()
                    .connect_timeout(Duration::from_secs(5))
                    .timeout(Duration::from_secs(10))
                    .redirect(reqwest::redirect::Policy::none())
                    .build()?,
            ),
            None => None,
        };
        Ok(Verifier {
            inner: Arc::new(Inner {
                discovery_url: format!(
                    "{}/.well-known/openid-configuration",
                    self.issuer.trim_end_matches('/')
                ),
                rules: ClaimRules {
                    issuer: self.issuer,
                    audience: self.audience,
                    leeway_secs: i64::try_from(self.leeway.as_secs()).unwrap_or(i64::MAX),
                },
                algorithms: self.algorithms,
                source,
                min_refresh: self.min_refresh,
                default_ttl: self.default_ttl,
                max_ttl: self.max_ttl.max(self.min_refresh),
                cache: RwLock::new(cache),
                refresh_lock: tokio::sync::Mutex::new(()),
                http,
                introspection,
                accept_basic: self.accept_basic,
            }),
        })
    }
}

struct Snapshot {
    keys: Arc<KeySet>,
    loaded: bool,
    stale: bool,
    generation: u64,
}

enum Fetched {
    Keys {
        keys: KeySet,
        etag: Option<String>,
        ttl: Duration,
    },
    NotModified {
        ttl: Duration,
    },
}

pub(crate) fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// `max-age` from a Cache-Control header; `no-store`/`no-cache` mean 0.
fn max_age(header: Option<&str>) -> Option<Duration> {
    let header = header?;
    let mut age = None;
    for directive in header.split(',') {
        let d = directive.trim();
        let (name, value) = d.split_once('=').unwrap_or((d, ""));
        match name.trim().to_ascii_lowercase().as_str() {
            "no-store" | "no-cache" => return Some(Duration::ZERO),
            "max-age" => {
                age = value
                    .trim()
                    .trim_matches('"')
                    .parse()
                    .ok()
                    .map(Duration::from_secs)
            }
            _ => {}
        }
    }
    age
}

impl Verifier {
    /// A builder for tokens from `issuer` (exactly as in the tokens' `iss`
    /// and the discovery document) meant for `audience` (this resource
    /// server's identifier, as registered with the client).
    pub fn builder(issuer: impl Into<String>, audience: impl Into<String>) -> VerifierBuilder {
        VerifierBuilder {
            issuer: issuer.into(),
            audience: audience.into(),
            leeway: Duration::from_secs(30),
            min_refresh: Duration::from_secs(30),
            default_ttl: Duration::from_secs(300),
            max_ttl: Duration::from_secs(86_400),
            algorithms: Algorithm::ALL.to_vec(),
            jwks_uri: None,
            pinned_jwks: None,
            http: None,
            introspection: None,
            introspection_endpoint: None,
            introspection_auth: ClientAuth::SecretBasic,
            introspection_ttls: Lifetimes {
                positive: Duration::from_secs(60),
                negative: Duration::from_secs(5),
            },
            introspection_cache_size: 10_000,
            introspection_timeout: Duration::from_secs(5),
            introspection_max_concurrent: 32,
            accept_basic: true,
        }
    }

    /// The issuer tokens must come from.
    pub fn issuer(&self) -> &str {
        &self.inner.rules.issuer
    }

    /// The audience tokens must name.
    pub fn audience(&self) -> &str {
        &self.inner.rules.audience
    }

    /// The key ids currently trusted.
    pub fn key_ids(&self) -> Vec<String> {
        self.snapshot().keys.kids().map(str::to_owned).collect()
    }

    /// True when personal access tokens can be checked (introspection is
    /// configured).
    pub fn accepts_personal_access_tokens(&self) -> bool {
        self.inner.introspection.is_some()
    }

    /// True when the `actix` extractors take a personal access token from
    /// HTTP Basic ([`VerifierBuilder::accept_basic`]).
    pub fn accepts_basic(&self) -> bool {
        self.inner.accept_basic
    }

    /// Verifies a bearer token, the one entry point for both kinds:
    ///
    /// - a personal access token (`lkp_…`) by introspection: the issuer's
    ///   answer must be `active`, name this issuer, and not be expired;
    ///   cached as [`VerifierBuilder::introspection_cache_ttl`] says;
    /// - anything else as a JWT, offline: signature, `typ`, `iss`, `aud`,
    ///   `exp`, `nbf`, `iat`. Fetches keys first if none are loaded or
    ///   they are stale (one task fetches; the others go on with the keys
    ///   they have), and once more if the `kid` is unknown and a fetch is
    ///   due.
    pub async fn verify(&self, token: &str) -> Result<AccessToken, VerifyError> {
        match introspection::kind_of(token)? {
            TokenKind::PersonalAccessToken => {
                self.introspect_as(token, TokenKind::PersonalAccessToken)
                    .await
            }
            TokenKind::Jwt => self.verify_jwt(token).await,
        }
    }

    /// Checks any access token at the issuer's introspection endpoint
    /// instead of offline: for a JWT, this sees a revocation within the
    /// cache time rather than at its expiry, at the cost of a request per
    /// token and cache time. The result has the same fields as
    /// [`verify`](Self::verify) gives, except `groups` (absent from
    /// Latchkey's answers) and `claims` (the answer's members).
    pub async fn introspect(&self, token: &str) -> Result<AccessToken, VerifyError> {
        self.introspect_as(token, introspection::kind_of(token)?)
            .await
    }

    async fn introspect_as(
        &self,
        token: &str,
        kind: TokenKind,
    ) -> Result<AccessToken, VerifyError> {
        let (Some(intro), Some(http)) = (&self.inner.introspection, &self.inner.http) else {
            return Err(VerifyError::IntrospectionNotConfigured);
        };
        intro
            .answer(token, || async {
                let endpoint = intro
                    .endpoint_or(|| self.discover_introspection_endpoint(intro, http))
                    .await?;
                intro
                    .ask(http, &endpoint, token, &self.inner.rules, kind)
                    .await
            })
            .await
    }

    async fn discover_introspection_endpoint(
        &self,
        intro: &Introspector,
        http: &reqwest::Client,
    ) -> Result<Url, VerifyError> {
        let issuer = &self.inner.rules.issuer;
        let found = match self.discover(http).await {
            Ok(endpoints) => endpoints.introspection_endpoint,
            Err(e) => {
                tracing::warn!(%issuer, error = %e, "discovery failed");
                return Err(VerifyError::IntrospectionUnavailable);
            }
        };
        let Some(found) = found else {
            tracing::warn!(%issuer, "the discovery document has no introspection_endpoint");
            return Err(VerifyError::IntrospectionUnavailable);
        };
        intro.learn_endpoint(&found).map_err(|why| {
            tracing::error!(
                %issuer,
                endpoint = %found,
                %why,
                "refusing the discovered introspection endpoint: it would receive this \
                 resource server's client secret and users' tokens (set it with \
                 introspection_endpoint(...) if it really is the issuer's)"
            );
            VerifyError::UntrustedIntrospectionEndpoint
        })
    }

    async fn verify_jwt(&self, token: &str) -> Result<AccessToken, VerifyError> {
        let parsed = jws::parse(token, &self.inner.algorithms)?;
        let mut snap = self.snapshot();
        if !snap.loaded {
            self.refresh(snap.generation, true).await;
            snap = self.snapshot();
        } else if snap.stale {
            self.refresh(snap.generation, false).await;
            snap = self.snapshot();
        }
        if !snap.loaded {
            return Err(VerifyError::KeysUnavailable);
        }
        let claims = match parsed.verify(&snap.keys) {
            Err(VerifyError::UnknownKey) => {
                if !self.refresh(snap.generation, true).await {
                    return Err(VerifyError::UnknownKey);
                }
                parsed.verify(&self.snapshot().keys)?
            }
            other => other?,
        };
        claims::check(claims, &self.inner.rules, unix_now())
    }

    /// Verifies without any request: a JWT with the keys already cached
    /// (for synchronous code paths and for pinned keys), a personal access
    /// token from the introspection cache only
    /// ([`VerifyError::IntrospectionUnavailable`] when nothing is cached).
    pub fn verify_cached(&self, token: &str) -> Result<AccessToken, VerifyError> {
        if introspection::kind_of(token)? == TokenKind::PersonalAccessToken {
            let intro = self
                .inner
                .introspection
                .as_ref()
                .ok_or(VerifyError::IntrospectionNotConfigured)?;
            return intro
                .cached(token)
                .unwrap_or(Err(VerifyError::IntrospectionUnavailable));
        }
        let parsed = jws::parse(token, &self.inner.algorithms)?;
        let snap = self.snapshot();
        if !snap.loaded {
            return Err(VerifyError::KeysUnavailable);
        }
        claims::check(parsed.verify(&snap.keys)?, &self.inner.rules, unix_now())
    }

    /// Fetches discovery (once) and the JWKS now, e.g. at start-up to fail
    /// fast, and learns the introspection endpoint if introspection is on.
    /// Returns the number of usable keys.
    pub async fn prefetch(&self) -> Result<usize, VerifyError> {
        if let (Some(intro), Some(http)) = (&self.inner.introspection, &self.inner.http) {
            intro
                .endpoint_or(|| self.discover_introspection_endpoint(intro, http))
                .await?;
        }
        if matches!(self.inner.source, Source::Pinned) {
            return Ok(self.snapshot().keys.len());
        }
        let generation = self.snapshot().generation;
        if self.refresh_inner(generation, true, true).await {
            Ok(self.snapshot().keys.len())
        } else {
            Err(VerifyError::KeysUnavailable)
        }
    }

    fn snapshot(&self) -> Snapshot {
        let cache = self
            .inner
            .cache
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        Snapshot {
            keys: Arc::clone(&cache.keys),
            loaded: cache.loaded,
            stale: cache.fresh_until.is_some_and(|t| Instant::now() >= t),
            generation: cache.generation,
        }
    }

    /// Refreshes the keys if a fetch is due. With `wait`, waits for a
    /// fetch in progress; without, leaves it to the task doing it.
    /// Returns true when new keys (or a confirmation) arrived since
    /// `seen_generation`.
    async fn refresh(&self, seen_generation: u64, wait: bool) -> bool {
        self.refresh_inner(seen_generation, wait, false).await
    }

    async fn refresh_inner(&self, seen_generation: u64, wait: bool, force: bool) -> bool {
        let (Source::Remote { jwks_uri }, Some(http)) = (&self.inner.source, &self.inner.http)
        else {
            return false;
        };
        let _guard = if wait {
            self.inner.refresh_lock.lock().await
        } else {
            match self.inner.refresh_lock.try_lock() {
                Ok(g) => g,
                Err(_) => return false,
            }
        };
        let (etag, due) = {
            let cache = self
                .inner
                .cache
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if cache.generation != seen_generation {
                // Someone fetched while we waited for the lock.
                return cache.loaded;
            }
            let due = cache
                .last_attempt
                .is_none_or(|t| t.elapsed() >= self.inner.min_refresh);
            (cache.etag.clone(), due)
        };
        if !due && !force {
            return false;
        }
        let result = self.fetch(http, jwks_uri, etag).await;
        let now = Instant::now();
        let mut cache = self
            .inner
            .cache
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        cache.generation += 1;
        cache.last_attempt = Some(now);
        match result {
            Ok(Fetched::Keys { keys, etag, ttl }) => {
                tracing::debug!(keys = keys.len(), ttl_secs = ttl.as_secs(), "JWKS loaded");
                cache.keys = Arc::new(keys);
                cache.loaded = true;
                cache.etag = etag;
                cache.fresh_until = Some(now + ttl);
                true
            }
            Ok(Fetched::NotModified { ttl }) => {
                cache.fresh_until = Some(now + ttl);
                true
            }
            Err(e) => {
                tracing::warn!(
                    issuer = %self.inner.rules.issuer,
                    error = %e,
                    "could not refresh signing keys; going on with the cached ones"
                );
                cache.fresh_until = Some(now + self.inner.min_refresh);
                false
            }
        }
    }

    fn ttl(&self, cache_control: Option<&str>) -> Duration {
        max_age(cache_control)
            .unwrap_or(self.inner.default_ttl)
            .clamp(self.inner.min_refresh, self.inner.max_ttl)
    }

    async fn fetch(
        &self,
        http: &reqwest::Client,
        jwks_uri: &RwLock<Option<String>>,
        etag: Option<String>,
    ) -> Result<Fetched, String> {
        let known = jwks_uri
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        let uri = match known {
            Some(u) => u,
            None => self.discover(http).await?.jwks_uri,
        };
        let mut req = http
            .get(&uri)
            .header(reqwest::header::ACCEPT, "application/json");
        if let Some(tag) = &etag {
            req = req.header(IF_NONE_MATCH, tag);
        }
        let resp = req.send().await.map_err(|e| format!("GET {uri}: {e}"))?;
        let cache_control = resp
            .headers()
            .get(CACHE_CONTROL)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let ttl = self.ttl(cache_control.as_deref());
        if resp.status() == StatusCode::NOT_MODIFIED && etag.is_some() {
            return Ok(Fetched::NotModified { ttl });
        }
        if !resp.status().is_success() {
            return Err(format!("GET {uri}: HTTP {}", resp.status()));
        }
        let new_etag = resp
            .headers()
            .get(ETAG)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let body = read_limited(resp, MAX_DOCUMENT_BYTES)
            .await
            .map_err(|e| format!("GET {uri}: {e}"))?;
        let keys = KeySet::from_jwks(&body, &self.inner.algorithms).map_err(|e| e.to_string())?;
        Ok(Fetched::Keys {
            keys,
            etag: new_etag,
            ttl,
        })
    }

    /// Fetches the discovery document and records what it names where
    /// nothing was set: the JWKS URI and the introspection endpoint (if
    /// it may be trusted).
    async fn discover(&self, http: &reqwest::Client) -> Result<discovery::Endpoints, String> {
        let found =
            discovery::fetch(http, &self.inner.discovery_url, &self.inner.rules.issuer).await?;
        if let Source::Remote { jwks_uri } = &self.inner.source {
            let mut known = jwks_uri
                .write()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if known.is_none() {
                *known = Some(found.jwks_uri.clone());
            }
        }
        if let (Some(intro), Some(endpoint)) = (
            &self.inner.introspection,
            found.introspection_endpoint.as_deref(),
        ) {
            // An untrusted one is reported when introspection needs it.
            let _ = intro.learn_endpoint(endpoint);
        }
        Ok(found)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_control_max_age() {
        assert_eq!(
            max_age(Some("public, max-age=120")),
            Some(Duration::from_secs(120))
        );
        assert_eq!(max_age(Some("Max-Age=\"7\"")), Some(Duration::from_secs(7)));
        assert_eq!(max_age(Some("no-store")), Some(Duration::ZERO));
        assert_eq!(max_age(Some("max-age=60, no-cache")), Some(Duration::ZERO));
        assert_eq!(max_age(Some("public")), None);
        assert_eq!(max_age(None), None);
    }

    #[test]
    fn builder_refuses_bad_settings() {
        assert!(matches!(
            Verifier::builder("id.example", "api").build(),
            Err(BuildError::InvalidIssuer)
        ));
        assert!(matches!(
            Verifier::builder("https://id.example", "").build(),
            Err(BuildError::MissingAudience)
        ));
        assert!(matches!(
            Verifier::builder("https://id.example", "api")
                .algorithms([])
                .build(),
            Err(BuildError::NoAlgorithms)
        ));
        assert!(matches!(
            Verifier::builder("https://id.example", "api")
                .pinned_jwks("[]")
                .build(),
            Err(BuildError::InvalidJwks(_))
        ));
    }

    #[test]
    fn the_introspection_secret_is_never_printed() {
        let builder = Verifier::builder("https://id.example", "api")
            .introspection("notes-api", "hunter2-secret")
            .introspection_endpoint("https://id.example/introspect");
        let printed = format!("{builder:?}");
        assert!(!printed.contains("hunter2"), "{printed}");
        let verifier = builder.build().unwrap();
        let printed = format!("{verifier:?}");
        assert!(printed.contains("notes-api"), "{printed}");
        assert!(!printed.contains("hunter2"), "{printed}");
        assert!(matches!(
            Verifier::builder("https://id.example", "api")
                .introspection("notes-api", "")
                .build(),
            Err(BuildError::InvalidIntrospectionClient)
        ));
        assert!(matches!(
            Verifier::builder("https://id.example", "api")
                .introspection("notes-api", "s")
                .introspection_endpoint("/introspect")
                .build(),
            Err(BuildError::InvalidIntrospectionEndpoint)
        ));
    }

    #[test]
    fn an_explicit_introspection_endpoint_must_be_https_unless_the_issuer_is_not() {
        let build = |issuer: &str, endpoint: &str| {
            Verifier::builder(issuer, "api")
                .introspection("notes-api", "s")
                .introspection_endpoint(endpoint)
                .build()
        };
        assert!(matches!(
            build("https://id.example", "http://id.example/introspect"),
            Err(BuildError::InsecureIntrospectionEndpoint)
        ));
        assert!(matches!(
            build("https://id.example", "https://me@id.example/introspect"),
            Err(BuildError::InvalidIntrospectionEndpoint)
        ));
        // Explicit: another origin is fine, https or (with an http issuer) http.
        assert!(build("https://id.example", "https://introspect.example/x").is_ok());
        assert!(build("http://127.0.0.1:8080", "http://127.0.0.1:9/introspect").is_ok());
        assert!(matches!(
            Verifier::builder("https://id.example", "api")
                .introspection("notes-api", "s")
                .introspection_max_concurrent(0)
                .build(),
            Err(BuildError::NoIntrospectionConcurrency)
        ));
        assert!(matches!(
            Verifier::builder("https://", "api").build(),
            Err(BuildError::InvalidIssuer)
        ));
    }
}

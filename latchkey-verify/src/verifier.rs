//! The verifier a resource server keeps for its whole life: it learns the
//! issuer's keys from discovery and the JWKS, caches them as long as the
//! issuer's `Cache-Control` says, refreshes on an unknown `kid` at most
//! once per interval, and goes on verifying with the keys it has while
//! the issuer is unreachable.

use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use reqwest::StatusCode;
use reqwest::header::{CACHE_CONTROL, ETAG, IF_NONE_MATCH};

use crate::algorithm::Algorithm;
use crate::claims::{self, AccessToken, ClaimRules};
use crate::error::VerifyError;
use crate::jws;
use crate::keys::KeySet;

/// Largest discovery or JWKS document accepted.
const MAX_DOCUMENT_BYTES: usize = 1 << 20;

/// Verifies Latchkey access tokens offline. Cheap to clone (one `Arc`);
/// share one per issuer across the whole server.
#[derive(Clone)]
pub struct Verifier {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verifier")
            .field("issuer", &self.inner.rules.issuer)
            .field("audience", &self.inner.rules.audience)
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
}

enum Source {
    Remote {
        http: reqwest::Client,
        discovery_url: String,
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

    /// The HTTP client for discovery and JWKS fetches (default: rustls,
    /// 5 s connect and 10 s overall timeouts, no redirects).
    pub fn http_client(mut self, client: reqwest::Client) -> Self {
        self.http = Some(client);
        self
    }

    /// Checks the settings. Nothing is fetched yet: the first
    /// verification (or [`Verifier::prefetch`]) does that.
    pub fn build(self) -> Result<Verifier, BuildError> {
        let issuer_ok = ["https://", "http://"]
            .iter()
            .any(|s| self.issuer.len() > s.len() && self.issuer.starts_with(s));
        if !issuer_ok {
            return Err(BuildError::InvalidIssuer);
        }
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
        let source = match self.pinned_jwks {
            Some(doc) => {
                cache.keys = Arc::new(KeySet::from_jwks(&doc, &self.algorithms)?);
                cache.loaded = true;
                Source::Pinned
            }
            None => {
                let http = match self.http {
                    Some(c) => c,
                    None => reqwest::Client::builder()
                        .connect_timeout(Duration::from_secs(5))
                        .timeout(Duration::from_secs(10))
                        .redirect(reqwest::redirect::Policy::none())
                        .build()?,
                };
                Source::Remote {
                    http,
                    discovery_url: format!(
                        "{}/.well-known/openid-configuration",
                        self.issuer.trim_end_matches('/')
                    ),
                    jwks_uri: RwLock::new(self.jwks_uri),
                }
            }
        };
        Ok(Verifier {
            inner: Arc::new(Inner {
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

fn unix_now() -> i64 {
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

    /// Verifies a bearer token: signature, `typ`, `iss`, `aud`, `exp`,
    /// `nbf`, `iat`. Fetches keys first if none are loaded or they are
    /// stale (one task fetches; the others go on with the keys they have),
    /// and once more if the `kid` is unknown and a fetch is due.
    pub async fn verify(&self, token: &str) -> Result<AccessToken, VerifyError> {
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

    /// Verifies with the keys already cached, without fetching: for
    /// synchronous code paths and for pinned keys.
    pub fn verify_cached(&self, token: &str) -> Result<AccessToken, VerifyError> {
        let parsed = jws::parse(token, &self.inner.algorithms)?;
        let snap = self.snapshot();
        if !snap.loaded {
            return Err(VerifyError::KeysUnavailable);
        }
        claims::check(parsed.verify(&snap.keys)?, &self.inner.rules, unix_now())
    }

    /// Fetches discovery (once) and the JWKS now, e.g. at start-up to fail
    /// fast. Returns the number of usable keys.
    pub async fn prefetch(&self) -> Result<usize, VerifyError> {
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
        let Source::Remote {
            http,
            discovery_url,
            jwks_uri,
        } = &self.inner.source
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
        let result = self.fetch(http, discovery_url, jwks_uri, etag).await;
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
        discovery_url: &str,
        jwks_uri: &RwLock<Option<String>>,
        etag: Option<String>,
    ) -> Result<Fetched, String> {
        let known = jwks_uri
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        let uri = match known {
            Some(u) => u,
            None => {
                let u = self.discover(http, discovery_url).await?;
                *jwks_uri
                    .write()
                    .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(u.clone());
                u
            }
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
        let body = read_limited(resp)
            .await
            .map_err(|e| format!("GET {uri}: {e}"))?;
        let keys = KeySet::from_jwks(&body, &self.inner.algorithms).map_err(|e| e.to_string())?;
        Ok(Fetched::Keys {
            keys,
            etag: new_etag,
            ttl,
        })
    }

    /// OIDC Discovery 1.0 section 4: the document's `issuer` must be
    /// exactly the configured issuer.
    async fn discover(&self, http: &reqwest::Client, url: &str) -> Result<String, String> {
        let resp = http
            .get(url)
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(|e| format!("GET {url}: {e}"))?;
        if !resp.status().is_success() {
            return Err(format!("GET {url}: HTTP {}", resp.status()));
        }
        let body = read_limited(resp)
            .await
            .map_err(|e| format!("GET {url}: {e}"))?;
        let doc: serde_json::Value =
            serde_json::from_slice(&body).map_err(|e| format!("discovery document: {e}"))?;
        if doc.get("issuer").and_then(|v| v.as_str()) != Some(self.inner.rules.issuer.as_str()) {
            return Err("discovery document names another issuer".into());
        }
        doc.get("jwks_uri")
            .and_then(|v| v.as_str())
            .map(str::to_owned)
            .ok_or_else(|| "discovery document has no jwks_uri".into())
    }
}

async fn read_limited(mut resp: reqwest::Response) -> Result<Vec<u8>, String> {
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(|e| e.to_string())? {
        if body.len() + chunk.len() > MAX_DOCUMENT_BYTES {
            return Err("document too large".into());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
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
}

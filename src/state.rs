//! The state every request handler shares: configuration, the database
//! handle, the clock, the loaded signing keys and what is computed once at
//! start. Below `http` (no HTTP types here), above `service`.

use std::sync::Arc;
use std::time::Duration;

use crate::oidc::document::Document;

use crate::clock::SharedClock;
use crate::config::{Config, ConfigError};
use crate::domain::net::IpBlock;
use crate::keys::KeyStore;
use crate::service::login::ThrottlePolicy;
use crate::service::logout::LogoutPolicy;
use crate::service::password::PasswordGate;
use crate::service::sessions::SessionPolicy;
use crate::service::token::{ClientCache, ScopeCache};
use crate::store::Db;
use crate::telemetry::metrics::Metrics;
use crate::telemetry::scrape_auth::ScrapeToken;

/// Cookie attributes, decided once from the issuer (`http::cookies` turns
/// them into cookies). On an https issuer cookies are Secure and carry the
/// `__Host-` prefix.
#[derive(Debug, Clone)]
pub struct CookiePolicy {
    pub secure: bool,
    pub session_max_age_secs: i64,
}

/// Shared, read-only state handed to every handler.
pub struct AppState {
    pub config: Arc<Config>,
    pub db: Db,
    pub clock: SharedClock,
    pub cookies: CookiePolicy,
    pub session_policy: SessionPolicy,
    pub throttle_policy: ThrottlePolicy,
    /// What ending a session does to its grants (`[logout]`).
    pub logout_policy: LogoutPolicy,
    /// `scheme://host[:port]` of the issuer, for Origin checks.
    pub issuer_origin: String,
    pub keys: KeyStore,
    /// The discovery document, built once.
    pub discovery: Document,
    /// Recently used client registrations (token endpoint).
    pub clients: ClientCache,
    /// The scope registry as `client_credentials` reads it (token endpoint).
    pub scopes: ScopeCache,
    /// Bounds concurrent password hashing (one per core).
    pub password_gate: PasswordGate,
    /// `server.trusted_proxies`, parsed.
    pub trusted_proxies: Vec<IpBlock>,
    /// Prometheus metrics (`[metrics]`; a no-op handle when off). The
    /// database handle and the key store record into the same one.
    pub metrics: Metrics,
    /// The bearer token `/metrics` requires, if one is configured.
    pub scrape_token: Option<ScrapeToken>,
    /// Seals TOTP seeds (derived from the KEK).
    pub mfa_key: crate::service::mfa::MfaKey,
}

impl AppState {
    pub fn new(
        config: Arc<Config>,
        db: Db,
        clock: SharedClock,
        keys: KeyStore,
    ) -> Result<Self, ConfigError> {
        let issuer = config.issuer_url()?;
        let session_policy = SessionPolicy::from_config(&config.session);
        let metrics = Metrics::from_config(&config.metrics);
        let scrape_token = if config.metrics.enabled {
            ScrapeToken::from_config(&config.metrics, &|var| std::env::var(var).ok()).map_err(
                |e| ConfigError::Invalid {
                    setting: e.setting(),
                    problem: e.to_string(),
                },
            )?
        } else {
            None
        };
        let (db, keys) = (
            db.with_metrics(metrics.clone()),
            keys.with_metrics(metrics.clone()),
        );
        Ok(Self {
            metrics,
            scrape_token,
            cookies: CookiePolicy {
                secure: config.secure_cookies(),
                session_max_age_secs: session_policy.absolute_timeout.whole_seconds(),
            },
            throttle_policy: ThrottlePolicy::from_config(&config.login),
            logout_policy: LogoutPolicy::from_config(&config.logout),
            issuer_origin: issuer.origin().ascii_serialization(),
            session_policy,
            discovery: {
                let algs: Vec<&str> = config.keys.algorithms.iter().map(|a| a.as_str()).collect();
                let legacy = crate::oidc::discovery::Legacy {
                    implicit: config.legacy.implicit,
                    password_grant: config.legacy.password_grant,
                };
                Document::new(crate::oidc::discovery::document(
                    &config.issuer,
                    &algs,
                    legacy,
                ))
            },
            clients: ClientCache::new(Duration::from_secs(5)),
            scopes: ScopeCache::new(Duration::from_secs(5)),
            password_gate: PasswordGate::per_core(),
            trusted_proxies: config
                .server
                .trusted_proxies
                .iter()
                .filter_map(|p| IpBlock::parse(p).ok())
                .collect(),
            mfa_key: crate::service::mfa::MfaKey::from_kek(keys.kek()),
            config,
            db,
            clock,
            keys,
        })
    }
}

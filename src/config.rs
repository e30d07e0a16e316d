//! Typed configuration.
//!
//! Layers, later wins: built-in defaults < `latchkey.toml` (or `--config PATH`)
//! < `LATCHKEY_*` environment variables (nested keys joined with `__`, e.g.
//! `LATCHKEY_DATABASE__URL`) < command-line flags. [`Config::validate`] checks
//! what serde cannot, and every error names the setting it is about.

use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};
use url::Url;

use crate::keys::SigningAlg;

/// Default config file, read from the working directory when present.
pub const DEFAULT_CONFIG_FILE: &str = "latchkey.toml";

/// Environment variables with the `LATCHKEY_` prefix that are not settings.
const NON_SETTING_ENV: &[&str] = &["admin_password", "kek"];

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// The issuer identifier: the URL this server is reached at. It names
    /// every token and the discovery document. https unless loopback.
    pub issuer: String,
    pub server: ServerConfig,
    pub database: DatabaseConfig,
    pub session: SessionConfig,
    pub login: LoginConfig,
    pub log: LogConfig,
    pub keys: KeysConfig,
    pub tokens: TokensConfig,
    pub registration: RegistrationConfig,
    /// Pre-configured clients (`[[clients]]`): created or updated at every
    /// start, and locked against edits in the console and the API.
    pub clients: Vec<DeclaredClient>,
}

/// Dynamic client registration (RFC 7591) at `/register`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields, default)]
pub struct RegistrationConfig {
    /// Let anyone register a client without an initial access token. Off:
    /// registration needs a token an admin issued.
    pub open: bool,
}

/// A client declared in the configuration file, with a fixed `client_id`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields, default)]
pub struct DeclaredClient {
    pub client_id: String,
    pub name: String,
    pub redirect_uris: Vec<String>,
    pub post_logout_redirect_uris: Vec<String>,
    /// Allowed scopes (default: openid profile email).
    pub scopes: Vec<String>,
    /// Allowed grant types (default: authorization_code refresh_token).
    pub grant_types: Vec<String>,
    /// A public client (no secret, PKCE), e.g. a CLI tool.
    pub public: bool,
    pub first_party: bool,
    pub audiences: Vec<String>,
    pub id_token_alg: Option<String>,
    /// For a confidential client: the environment variable holding its
    /// secret (the secret never goes in this file).
    pub secret_env: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct KeysConfig {
    /// Algorithms that always have an active signing key.
    pub algorithms: Vec<SigningAlg>,
    /// Default algorithm for ID tokens (OIDC's default is RS256).
    pub id_token_alg: SigningAlg,
    /// Default algorithm for access tokens.
    pub access_token_alg: SigningAlg,
    /// File holding the key-encryption key (base64 of 32 bytes), created
    /// with mode 0600 on first start. `LATCHKEY_KEK` takes precedence.
    pub kek_file: String,
    /// A new key is published this long before it signs anything.
    pub prepublication_delay_secs: u64,
    /// A retired key stays published for the longest token lifetime plus
    /// this margin, then it is removed.
    pub retirement_margin_secs: u64,
    /// Rotate automatically this often; 0 turns scheduled rotation off.
    pub rotate_every_secs: u64,
    /// How often each instance reloads keys from the database (also on SIGHUP).
    pub reload_interval_secs: u64,
    /// `Cache-Control: max-age` of the JWKS.
    pub jwks_max_age_secs: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct TokensConfig {
    /// Lifetime of ID tokens.
    pub id_token_ttl_secs: u64,
    /// Lifetime of JWT access tokens.
    pub access_token_ttl_secs: u64,
    /// Lifetime of authorization codes.
    pub code_ttl_secs: u64,
    /// Lifetime of refresh tokens (each rotation starts a new one).
    pub refresh_token_ttl_secs: u64,
    /// Seconds during which a just-rotated refresh token may be used again
    /// (a client's concurrent retry) instead of revoking its family; 0 = off.
    pub refresh_reuse_grace_secs: u64,
    /// `aud` of access tokens when nothing more specific applies; empty
    /// means the issuer URL. Userinfo accepts this audience.
    pub default_audience: String,
    /// Accept `?access_token=` at userinfo (RFC 6750 2.3). Off: URLs end up
    /// in logs and browser history.
    pub allow_query_access_token: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Address and port to listen on.
    pub bind: String,
    /// HTTP worker threads; 0 means one per CPU core.
    pub workers: usize,
    /// Trust the `X-Forwarded-For` / `Forwarded` headers for the client IP
    /// (only behind a reverse proxy that sets them).
    pub trust_forwarded_for: bool,
    /// Seconds to let in-flight requests finish on SIGTERM/SIGINT.
    pub shutdown_timeout_secs: u64,
    /// Browser origins (`https://app.example`) allowed to call /token,
    /// /userinfo and /revoke from JavaScript (single-page apps).
    pub cors_origins: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct DatabaseConfig {
    /// `sqlite://PATH` (embedded; the file is created) or
    /// `postgres://USER[:PASSWORD]@HOST[:PORT]/DB`.
    pub url: String,
    /// Maximum connections in the pool.
    pub pool_max_size: u32,
    /// Seconds to wait for a pooled connection before answering 503.
    pub connect_timeout_secs: u64,
    /// Apply pending migrations when `serve` starts.
    pub auto_migrate: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct SessionConfig {
    /// A session unused for this many seconds ends.
    pub idle_timeout_secs: u64,
    /// A session ends this many seconds after sign-in, however active.
    pub absolute_timeout_secs: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct LoginConfig {
    /// Failed sign-ins for one username within the window before it is locked.
    pub max_failures_per_account: u32,
    /// Failed sign-ins from one client IP within the window before it is locked.
    pub max_failures_per_ip: u32,
    /// Length of the counting window and of the lock, in seconds.
    pub throttle_window_secs: u64,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// `text` (human) or `json` (one object per line).
    pub format: LogFormat,
    /// A tracing filter, e.g. `info` or `latchkey=debug,actix_web=info`.
    /// `RUST_LOG` overrides it.
    pub level: String,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            issuer: "http://127.0.0.1:8080".into(),
            server: ServerConfig::default(),
            database: DatabaseConfig::default(),
            session: SessionConfig::default(),
            login: LoginConfig::default(),
            log: LogConfig::default(),
            keys: KeysConfig::default(),
            tokens: TokensConfig::default(),
            registration: RegistrationConfig::default(),
            clients: Vec::new(),
        }
    }
}

impl Default for KeysConfig {
    fn default() -> Self {
        Self {
            algorithms: vec![SigningAlg::RS256],
            id_token_alg: SigningAlg::RS256,
            access_token_alg: SigningAlg::RS256,
            kek_file: "keys/latchkey.kek".into(),
            prepublication_delay_secs: 3600,
            retirement_margin_secs: 3600,
            rotate_every_secs: 0,
            reload_interval_secs: 30,
            jwks_max_age_secs: 300,
        }
    }
}

impl Default for TokensConfig {
    fn default() -> Self {
        Self {
            id_token_ttl_secs: 3600,
            access_token_ttl_secs: 600,
            code_ttl_secs: 60,
            refresh_token_ttl_secs: 30 * 24 * 3600,
            refresh_reuse_grace_secs: 0,
            default_audience: String::new(),
            allow_query_access_token: false,
        }
    }
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            bind: "127.0.0.1:8080".into(),
            workers: 0,
            trust_forwarded_for: false,
            shutdown_timeout_secs: 30,
            cors_origins: Vec::new(),
        }
    }
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        Self {
            url: "sqlite://data/latchkey.db".into(),
            pool_max_size: 10,
            connect_timeout_secs: 5,
            auto_migrate: true,
        }
    }
}

impl Default for SessionConfig {
    fn default() -> Self {
        Self {
            idle_timeout_secs: 2 * 3600,
            absolute_timeout_secs: 12 * 3600,
        }
    }
}

impl Default for LoginConfig {
    fn default() -> Self {
        Self {
            max_failures_per_account: 5,
            max_failures_per_ip: 50,
            throttle_window_secs: 15 * 60,
        }
    }
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            format: LogFormat::Text,
            level: "info".into(),
        }
    }
}

/// A configuration problem, always naming the setting it is about.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("config file {path}: {message}")]
    File { path: PathBuf, message: String },
    #[error("{0}")]
    Load(Box<figment::Error>),
    #[error("{setting}: {problem}")]
    Invalid {
        setting: &'static str,
        problem: String,
    },
}

fn invalid(setting: &'static str, problem: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        setting,
        problem: problem.into(),
    }
}

/// Values given on the command line; `None` leaves the lower layers alone.
#[derive(Debug, Default, Clone, Serialize)]
pub struct Overrides {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub issuer: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bind: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub database_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auto_migrate: Option<bool>,
}

impl Config {
    /// Loads and validates the layered configuration. An explicitly named
    /// file must exist; the default `latchkey.toml` is optional.
    pub fn load(file: Option<&Path>, overrides: &Overrides) -> Result<Config, ConfigError> {
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        match file {
            Some(path) => {
                if !path.is_file() {
                    return Err(ConfigError::File {
                        path: path.to_owned(),
                        message: "no such file".into(),
                    });
                }
                figment = figment.merge(Toml::file_exact(path));
            }
            None => figment = figment.merge(Toml::file(DEFAULT_CONFIG_FILE)),
        }
        figment = figment.merge(
            Env::prefixed("LATCHKEY_")
                .filter(|key| {
                    let key = key.as_str().to_ascii_lowercase();
                    !NON_SETTING_ENV.contains(&key.as_str()) && !key.starts_with("test_")
                })
                .split("__"),
        );
        figment = figment.merge(Serialized::defaults(overrides.as_layer()));
        let config: Config = figment
            .extract()
            .map_err(|e| ConfigError::Load(Box::new(e)))?;
        config.validate()
    }

    /// Checks cross-field and semantic rules; returns the normalised config.
    pub fn validate(mut self) -> Result<Config, ConfigError> {
        self.issuer = validate_issuer(&self.issuer)?;
        resolve_bind(&self.server.bind)?;
        crate::store::DatabaseUrl::parse(&self.database.url)
            .map_err(|e| invalid("database.url", e.to_string()))?;
        if !(1..=512).contains(&self.database.pool_max_size) {
            return Err(invalid(
                "database.pool_max_size",
                "must be between 1 and 512",
            ));
        }
        if !(1..=300).contains(&self.database.connect_timeout_secs) {
            return Err(invalid(
                "database.connect_timeout_secs",
                "must be between 1 and 300",
            ));
        }
        for origin in &mut self.server.cors_origins {
            let u = Url::parse(origin).map_err(|_| {
                invalid(
                    "server.cors_origins",
                    format!("{origin:?} is not an origin"),
                )
            })?;
            if u.path() != "/" || u.query().is_some() || !matches!(u.scheme(), "https" | "http") {
                return Err(invalid(
                    "server.cors_origins",
                    format!("{origin:?} must be scheme://host[:port] only"),
                ));
            }
            *origin = u.origin().ascii_serialization();
        }
        if self.server.workers > 1024 {
            return Err(invalid("server.workers", "must be at most 1024"));
        }
        let s = &self.session;
        if s.idle_timeout_secs == 0 {
            return Err(invalid("session.idle_timeout_secs", "must be positive"));
        }
        if s.absolute_timeout_secs < s.idle_timeout_secs {
            return Err(invalid(
                "session.absolute_timeout_secs",
                "must be at least session.idle_timeout_secs",
            ));
        }
        let l = &self.login;
        if l.max_failures_per_account == 0 {
            return Err(invalid(
                "login.max_failures_per_account",
                "must be positive",
            ));
        }
        if l.max_failures_per_ip == 0 {
            return Err(invalid("login.max_failures_per_ip", "must be positive"));
        }
        if l.throttle_window_secs == 0 {
            return Err(invalid("login.throttle_window_secs", "must be positive"));
        }
        tracing_subscriber::EnvFilter::try_new(&self.log.level)
            .map_err(|e| invalid("log.level", e.to_string()))?;
        self.validate_keys()?;
        Ok(self)
    }

    fn validate_keys(&mut self) -> Result<(), ConfigError> {
        let k = &mut self.keys;
        k.algorithms.sort();
        k.algorithms.dedup();
        if k.algorithms.is_empty() {
            return Err(invalid("keys.algorithms", "name at least one algorithm"));
        }
        if !k.algorithms.contains(&k.id_token_alg) {
            return Err(invalid(
                "keys.id_token_alg",
                format!("{} is not in keys.algorithms", k.id_token_alg),
            ));
        }
        if !k.algorithms.contains(&k.access_token_alg) {
            return Err(invalid(
                "keys.access_token_alg",
                format!("{} is not in keys.algorithms", k.access_token_alg),
            ));
        }
        if k.kek_file.trim().is_empty() {
            return Err(invalid("keys.kek_file", "must not be empty"));
        }
        if k.reload_interval_secs == 0 {
            return Err(invalid("keys.reload_interval_secs", "must be positive"));
        }
        // Every verifier must have seen a key before it signs anything.
        if k.prepublication_delay_secs < k.jwks_max_age_secs + k.reload_interval_secs {
            return Err(invalid(
                "keys.prepublication_delay_secs",
                "must be at least keys.jwks_max_age_secs + keys.reload_interval_secs, \
                 so caches and other instances see a new key before it signs",
            ));
        }
        if k.rotate_every_secs != 0 && k.rotate_every_secs <= k.prepublication_delay_secs {
            return Err(invalid(
                "keys.rotate_every_secs",
                "must be 0 (off) or longer than keys.prepublication_delay_secs",
            ));
        }
        let t = &self.tokens;
        if t.id_token_ttl_secs == 0
            || t.access_token_ttl_secs == 0
            || t.code_ttl_secs == 0
            || t.refresh_token_ttl_secs == 0
        {
            return Err(invalid("tokens", "token lifetimes must be positive"));
        }
        if t.code_ttl_secs > 600 {
            return Err(invalid(
                "tokens.code_ttl_secs",
                "at most 600 (RFC 6749 4.1.2)",
            ));
        }
        if t.refresh_reuse_grace_secs > 60 {
            return Err(invalid(
                "tokens.refresh_reuse_grace_secs",
                "at most 60 seconds",
            ));
        }
        Ok(())
    }

    /// The parsed issuer URL (validated at load).
    pub fn issuer_url(&self) -> Result<Url, ConfigError> {
        Url::parse(&self.issuer).map_err(|e| invalid("issuer", e.to_string()))
    }

    /// The `aud` of access tokens by default.
    pub fn default_audience(&self) -> &str {
        if self.tokens.default_audience.is_empty() {
            &self.issuer
        } else {
            &self.tokens.default_audience
        }
    }

    /// Whether cookies must carry the `Secure` attribute.
    pub fn secure_cookies(&self) -> bool {
        self.issuer.starts_with("https://")
    }

    /// The socket address to bind.
    pub fn bind_addr(&self) -> Result<SocketAddr, ConfigError> {
        resolve_bind(&self.server.bind)
    }
}

impl Overrides {
    fn as_layer(&self) -> serde_json::Value {
        let mut root = serde_json::Map::new();
        if let Some(issuer) = &self.issuer {
            root.insert("issuer".into(), issuer.clone().into());
        }
        if let Some(bind) = &self.bind {
            root.insert("server".into(), serde_json::json!({ "bind": bind }));
        }
        let mut db = serde_json::Map::new();
        if let Some(url) = &self.database_url {
            db.insert("url".into(), url.clone().into());
        }
        if let Some(auto) = self.auto_migrate {
            db.insert("auto_migrate".into(), auto.into());
        }
        if !db.is_empty() {
            root.insert("database".into(), db.into());
        }
        serde_json::Value::Object(root)
    }
}

fn resolve_bind(bind: &str) -> Result<SocketAddr, ConfigError> {
    bind.to_socket_addrs()
        .map_err(|e| invalid("server.bind", format!("{bind:?} is not HOST:PORT ({e})")))?
        .next()
        .ok_or_else(|| invalid("server.bind", format!("{bind:?} resolves to no address")))
}

/// An issuer is an https URL without query or fragment (OIDC Discovery 3);
/// plain http is allowed only on a loopback host, for development.
fn validate_issuer(raw: &str) -> Result<String, ConfigError> {
    let url =
        Url::parse(raw).map_err(|e| invalid("issuer", format!("{raw:?} is not a URL ({e})")))?;
    if url.query().is_some() || url.fragment().is_some() {
        return Err(invalid("issuer", "must not have a query or fragment"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(invalid("issuer", "must not contain credentials"));
    }
    match url.scheme() {
        "https" => {}
        "http" if is_loopback_host(&url) => {}
        "http" => {
            return Err(invalid(
                "issuer",
                format!("{raw:?} must use https unless its host is loopback"),
            ));
        }
        other => return Err(invalid("issuer", format!("unsupported scheme {other:?}"))),
    }
    // The issuer is compared as a string by relying parties: keep one form.
    Ok(url.as_str().trim_end_matches('/').to_owned())
}

/// Whether a URL's host is a loopback address (or `localhost`).
pub fn is_loopback_host(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip).is_loopback(),
        Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip).is_loopback(),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        let c = Config::default().validate().unwrap();
        assert_eq!(c.issuer, "http://127.0.0.1:8080");
        assert_eq!(c.server.bind, "127.0.0.1:8080");
        assert_eq!(c.database.url, "sqlite://data/latchkey.db");
    }

    #[test]
    fn issuer_rules() {
        assert!(validate_issuer("https://id.example.com/").is_ok());
        assert_eq!(
            validate_issuer("https://id.example.com/").unwrap(),
            "https://id.example.com"
        );
        assert!(validate_issuer("http://localhost:8080").is_ok());
        assert!(validate_issuer("http://[::1]:8080").is_ok());
        assert!(validate_issuer("http://127.0.0.2").is_ok());
        let err = validate_issuer("http://id.example.com").unwrap_err();
        assert!(err.to_string().starts_with("issuer:"), "{err}");
        assert!(validate_issuer("https://id.example.com/?x=1").is_err());
        assert!(validate_issuer("https://id.example.com/#x").is_err());
        assert!(validate_issuer("ftp://id.example.com").is_err());
        assert!(validate_issuer("not a url").is_err());
    }

    #[test]
    fn bad_values_name_their_setting() {
        let mut c = Config::default();
        c.database.pool_max_size = 0;
        assert!(
            c.validate()
                .unwrap_err()
                .to_string()
                .starts_with("database.pool_max_size")
        );
        let mut c = Config::default();
        c.server.bind = "nowhere".into();
        assert!(
            c.validate()
                .unwrap_err()
                .to_string()
                .starts_with("server.bind")
        );
        let mut c = Config::default();
        c.database.url = "mysql://x".into();
        assert!(
            c.validate()
                .unwrap_err()
                .to_string()
                .starts_with("database.url")
        );
        let mut c = Config::default();
        c.session.absolute_timeout_secs = 1;
        assert!(
            c.validate()
                .unwrap_err()
                .to_string()
                .starts_with("session.absolute_timeout_secs")
        );
    }
}

#[cfg(test)]
mod drift {
    use super::*;

    /// The documented example file must say exactly what the defaults are.
    #[test]
    fn example_file_matches_defaults() {
        let example: Config = Figment::new()
            .merge(Toml::string(include_str!("../latchkey.example.toml")))
            .extract()
            .unwrap();
        assert_eq!(example, Config::default());
    }
}

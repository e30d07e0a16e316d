//! Typed configuration.
//!
//! Layers, later wins: built-in defaults < `latchkey.toml` (or `--config PATH`)
//! < `LATCHKEY_*` environment variables (nested keys joined with `__`, e.g.
//! `LATCHKEY_DATABASE__URL`) < command-line flags. [`Config::validate`] checks
//! what serde cannot, and every error names the setting it is about.

pub mod database_url;
mod load;
mod metrics;

use std::net::SocketAddr;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use url::Url;

use crate::domain::alg::SigningAlg;

pub use load::Overrides;
pub use metrics::MetricsConfig;

/// Default config file, read from the working directory when present.
pub const DEFAULT_CONFIG_FILE: &str = "latchkey.toml";

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
    pub logout: LogoutConfig,
    pub device: DeviceConfig,
    pub pat: PatConfig,
    pub mfa: MfaConfig,
    pub legacy: LegacyConfig,
    /// Prometheus metrics (`GET /metrics`), off by default.
    pub metrics: MetricsConfig,
    /// Pre-configured clients (`[[clients]]`): created or updated at every
    /// start, and locked against edits in the console and the API.
    pub clients: Vec<DeclaredClient>,
}

/// Dynamic client registration (RFC 7591) at `/register`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct RegistrationConfig {
    /// Let anyone register a client without an initial access token. Off:
    /// registration needs a token an admin issued.
    pub open: bool,
    /// Open registrations (without an initial access token) from one
    /// network (IPv4 address, IPv6 /64) within `login.throttle_window_secs`;
    /// 0 = no limit.
    pub max_per_network: u32,
}

impl Default for RegistrationConfig {
    fn default() -> Self {
        Self {
            open: false,
            max_per_network: 10,
        }
    }
}

/// What ending a session does to tokens, and how logout tokens reach
/// relying parties (OpenID Connect Back-Channel Logout 1.0).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct LogoutConfig {
    /// Also revoke the ended session's `offline_access` grants (their
    /// refresh tokens stop working). Off: offline access survives a
    /// sign-out, as the scope promises.
    pub revoke_offline_grants: bool,
    /// Seconds one delivery (a POST to a client's back-channel logout URI)
    /// may take before it counts as failed.
    pub delivery_timeout_secs: u64,
    /// Deliveries tried per logout token before giving up.
    pub max_attempts: u32,
    /// Seconds after the sign-out after which delivery is given up.
    pub max_age_secs: u64,
    /// How often each instance looks for logout tokens due for delivery
    /// (milliseconds); it also looks at once when it ended a session itself.
    pub poll_interval_ms: u64,
}

impl Default for LogoutConfig {
    fn default() -> Self {
        Self {
            revoke_offline_grants: false,
            delivery_timeout_secs: 5,
            max_attempts: 10,
            max_age_secs: 24 * 3600,
            poll_interval_ms: 1000,
        }
    }
}

/// The device authorization grant (RFC 8628): sign-in on devices without
/// a browser, confirmed by the person at `/device`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct DeviceConfig {
    /// Lifetime of a device code and its user code.
    pub code_ttl_secs: u64,
    /// Seconds a device waits between polls of the token endpoint.
    pub interval_secs: u64,
    /// Wrong user codes one browser session may enter within
    /// `login.throttle_window_secs` before it must wait for the window's end.
    pub max_failures_per_session: u32,
    /// Wrong user codes from one network (IPv4 address, IPv6 /64) within
    /// the window.
    pub max_failures_per_ip: u32,
    /// Device authorizations (`POST /device/authorize`) one network may
    /// start within `login.throttle_window_secs`; each stores a request,
    /// and public clients need no secret to ask. 0 = no limit.
    pub max_starts_per_network: u32,
}

impl Default for DeviceConfig {
    fn default() -> Self {
        Self {
            code_ttl_secs: 600,
            interval_secs: 5,
            max_failures_per_session: 5,
            max_failures_per_ip: 20,
            max_starts_per_network: 60,
        }
    }
}

/// Personal access tokens (`lkp_…`): long-lived credentials users create
/// in My account (admins through the API and CLI) for scripts; resource
/// servers accept them through introspection.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct PatConfig {
    /// Off: nobody may create personal access tokens, and existing ones
    /// stop working (they work again when this is turned back on).
    pub enabled: bool,
    /// The longest lifetime a new token may be given, in days (1 to 3650).
    pub max_ttl_days: u32,
    /// Groups whose members may create and use tokens; empty: every user.
    /// Checked at every use, so leaving the groups stops a user's tokens.
    pub allowed_groups: Vec<String>,
}

impl Default for PatConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            max_ttl_days: 365,
            allowed_groups: Vec::new(),
        }
    }
}

/// Legacy grants (RFC 9700 2.1.2 and 2.4 say not to use them), off unless
/// turned on here, and then only for clients an administrator allows them.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct LegacyConfig {
    /// The implicit flow: `response_type` `id_token`, `id_token token` and
    /// `token` at `/authorize`, answered in the fragment or by form_post.
    pub implicit: bool,
    /// The resource owner password grant (`grant_type=password`), for
    /// confidential clients.
    pub password_grant: bool,
    /// Lifetime of access tokens the implicit flow returns (1 to 3600;
    /// never longer than `tokens.access_token_ttl_secs`). Short: such a
    /// token passed through the browser, and no refresh token comes with it.
    pub implicit_access_token_ttl_secs: u64,
}

impl Default for LegacyConfig {
    fn default() -> Self {
        Self {
            implicit: false,
            password_grant: false,
            implicit_access_token_ttl_secs: 300,
        }
    }
}

/// A setting's group names, well-formed (trimmed), duplicates dropped.
fn group_names(field: &'static str, names: &[String]) -> Result<Vec<String>, ConfigError> {
    let mut groups = Vec::with_capacity(names.len());
    for g in names {
        let name = crate::domain::group::group_name(g).map_err(|e| invalid(field, e.problem))?;
        if !groups.contains(&name) {
            groups.push(name);
        }
    }
    Ok(groups)
}

/// Who must sign in with a second factor (`[mfa]`). A user the policy
/// covers who has none is sent to set one up at each sign-in; after the
/// grace period (from the first such sign-in) no code is issued to any
/// app until they have.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct MfaConfig {
    /// Everyone.
    pub required: bool,
    /// Members of any of these groups.
    pub required_groups: Vec<String>,
    /// Days a covered user may still sign in without one (0 to 365).
    pub enrol_grace_days: u32,
}

impl Default for MfaConfig {
    fn default() -> Self {
        Self {
            required: false,
            required_groups: Vec::new(),
            enrol_grace_days: 7,
        }
    }
}

impl MfaConfig {
    /// `enrol_grace_days` within 0..=365; group names well-formed.
    fn validate(&mut self) -> Result<(), ConfigError> {
        if self.enrol_grace_days > 365 {
            return Err(invalid("mfa.enrol_grace_days", "must be between 0 and 365"));
        }
        self.required_groups = group_names("mfa.required_groups", &self.required_groups)?;
        Ok(())
    }
}

impl PatConfig {
    /// `max_ttl_days` within 1..=3650; group names well-formed (trimmed,
    /// duplicates dropped).
    fn validate(&mut self) -> Result<(), ConfigError> {
        if !(1..=3650).contains(&self.max_ttl_days) {
            return Err(invalid("pat.max_ttl_days", "must be between 1 and 3650"));
        }
        self.allowed_groups = group_names("pat.allowed_groups", &self.allowed_groups)?;
        Ok(())
    }
}

impl LegacyConfig {
    /// The lifetime of implicit access tokens: the setting, capped at
    /// `access_ttl` (the ordinary access token lifetime).
    pub fn implicit_access_ttl(&self, access_ttl: u64) -> u64 {
        self.implicit_access_token_ttl_secs.min(access_ttl)
    }
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
    /// Audiences it serves as a resource server (may introspect their tokens).
    pub resource_audiences: Vec<String>,
    /// Back-Channel Logout 1.0: where logout tokens are POSTed.
    pub backchannel_logout_uri: Option<String>,
    pub backchannel_logout_session_required: bool,
    /// Its tokens are issued only after a sign-in with a second factor.
    pub require_mfa: bool,
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
    /// Longest a refresh token family lives, counted from the sign-in that
    /// started it; after that the user signs in again, however often the
    /// family was refreshed.
    pub refresh_absolute_ttl_secs: u64,
    /// Seconds during which a just-rotated refresh token may be used again
    /// (a client's retry, or concurrent uses) and answers with the same
    /// successor, instead of revoking its family; 0 = off.
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
    /// Take the client IP from `X-Forwarded-For` (only behind a reverse
    /// proxy that appends to it). It is read from the right: the entry the
    /// proxy in front of Latchkey appended, then further left past each
    /// address in `trusted_proxies`.
    pub trust_forwarded_for: bool,
    /// Further proxies (addresses or CIDR blocks) whose `X-Forwarded-For`
    /// entries are believed, for chains of more than one proxy.
    pub trusted_proxies: Vec<String>,
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
            logout: LogoutConfig::default(),
            device: DeviceConfig::default(),
            pat: PatConfig::default(),
            mfa: MfaConfig::default(),
            legacy: LegacyConfig::default(),
            metrics: MetricsConfig::default(),
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
            refresh_absolute_ttl_secs: 90 * 24 * 3600,
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
            trusted_proxies: Vec::new(),
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

pub(crate) fn invalid(setting: &'static str, problem: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        setting,
        problem: problem.into(),
    }
}

impl Config {
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
        load::resolve_bind(&self.server.bind)
    }
}

#[cfg(test)]
mod drift {
    use figment::Figment;
    use figment::providers::{Format, Toml};

    use super::*;

    /// The documented example file must say exactly what the defaults are.
    #[test]
    fn example_file_matches_defaults() {
        let example: Config = Figment::new()
            .merge(Toml::string(include_str!("../../latchkey.example.toml")))
            .extract()
            .unwrap();
        assert_eq!(example, Config::default());
    }
}

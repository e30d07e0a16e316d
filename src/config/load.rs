//! Loading the layers (defaults < file < environment < flags) and
//! validating what serde cannot check.

use std::net::{SocketAddr, ToSocketAddrs};
use std::path::Path;

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::Serialize;
use url::Url;

use super::{Config, ConfigError, DEFAULT_CONFIG_FILE, invalid};
use crate::domain::client::is_loopback_host;

/// The longest duration any setting may name: 10 years.
const MAX_DURATION_SECS: u64 = 10 * 365 * 24 * 3600;

/// Environment variables with the `LATCHKEY_` prefix that are not settings.
const NON_SETTING_ENV: &[&str] = &["admin_password", "kek"];

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
        Self::extract(figment)
    }

    /// Defaults < the TOML `text`, validated: the file layer of [`load`]
    /// alone, without the environment or flags (for tests and fuzzing).
    ///
    /// [`load`]: Config::load
    pub fn from_toml_str(text: &str) -> Result<Config, ConfigError> {
        Self::extract(
            Figment::from(Serialized::defaults(Config::default())).merge(Toml::string(text)),
        )
    }

    fn extract(figment: Figment) -> Result<Config, ConfigError> {
        let config: Config = figment
            .extract()
            .map_err(|e| ConfigError::Load(Box::new(e)))?;
        config.validate()
    }

    /// Checks cross-field and semantic rules; returns the normalised config.
    pub fn validate(mut self) -> Result<Config, ConfigError> {
        self.issuer = validate_issuer(&self.issuer)?;
        resolve_bind(&self.server.bind)?;
        super::database_url::DatabaseUrl::parse(&self.database.url)
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
        self.validate_device()?;
        self.pat.validate()?;
        self.mfa.validate()?;
        if !(1..=3600).contains(&self.legacy.implicit_access_token_ttl_secs) {
            return Err(invalid(
                "legacy.implicit_access_token_ttl_secs",
                "must be between 1 and 3600",
            ));
        }
        tracing_subscriber::EnvFilter::try_new(&self.log.level)
            .map_err(|e| invalid("log.level", e.to_string()))?;
        self.validate_keys()?;
        self.validate_logout()?;
        self.metrics.validate(&self.server.bind)?;
        Ok(self)
    }

    fn validate_device(&self) -> Result<(), ConfigError> {
        let d = &self.device;
        // Longer-lived user codes give a guesser more time (RFC 8628 5.1).
        if !(1..=1800).contains(&d.code_ttl_secs) {
            return Err(invalid(
                "device.code_ttl_secs",
                "must be between 1 and 1800",
            ));
        }
        if !(1..=60).contains(&d.interval_secs) {
            return Err(invalid("device.interval_secs", "must be between 1 and 60"));
        }
        if d.max_failures_per_session == 0 {
            return Err(invalid(
                "device.max_failures_per_session",
                "must be positive",
            ));
        }
        if d.max_failures_per_ip == 0 {
            return Err(invalid("device.max_failures_per_ip", "must be positive"));
        }
        Ok(())
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
        for c in &self.clients {
            let declared = c.id_token_alg.as_deref().and_then(|a| a.parse().ok());
            crate::domain::client::check_id_token_alg(declared, &k.algorithms).map_err(|e| {
                invalid(
                    "clients",
                    format!("client {:?}: id_token_alg: {}", c.client_id, e.problem),
                )
            })?;
        }
        if k.kek_file.trim().is_empty() {
            return Err(invalid("keys.kek_file", "must not be empty"));
        }
        if k.reload_interval_secs == 0 {
            return Err(invalid("keys.reload_interval_secs", "must be positive"));
        }
        // Every verifier must have seen a key before it signs anything.
        if k.prepublication_delay_secs < k.jwks_max_age_secs.saturating_add(k.reload_interval_secs)
        {
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
            || t.refresh_absolute_ttl_secs == 0
        {
            return Err(invalid("tokens", "token lifetimes must be positive"));
        }
        if t.refresh_absolute_ttl_secs < t.refresh_token_ttl_secs {
            return Err(invalid(
                "tokens.refresh_absolute_ttl_secs",
                "must be at least tokens.refresh_token_ttl_secs",
            ));
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
        for (i, p) in self.server.trusted_proxies.iter().enumerate() {
            if let Err(e) = crate::domain::net::IpBlock::parse(p) {
                return Err(invalid(
                    "server.trusted_proxies",
                    format!("entry {}: {e}", i + 1),
                ));
            }
        }
        self.validate_durations()
    }

    fn validate_logout(&self) -> Result<(), ConfigError> {
        let o = &self.logout;
        if !(1..=60).contains(&o.delivery_timeout_secs) {
            return Err(invalid(
                "logout.delivery_timeout_secs",
                "must be between 1 and 60",
            ));
        }
        if !(1..=100).contains(&o.max_attempts) {
            return Err(invalid("logout.max_attempts", "must be between 1 and 100"));
        }
        if !(60..=30 * 24 * 3600).contains(&o.max_age_secs) {
            return Err(invalid(
                "logout.max_age_secs",
                "must be between 60 and 2592000 (30 days)",
            ));
        }
        if !(10..=60_000).contains(&o.poll_interval_ms) {
            return Err(invalid(
                "logout.poll_interval_ms",
                "must be between 10 and 60000",
            ));
        }
        Ok(())
    }

    /// Every duration is bounded, so date arithmetic on it cannot overflow
    /// (a lifetime of u64::MAX seconds used to wrap or panic at use).
    fn validate_durations(&self) -> Result<(), ConfigError> {
        let (k, t, s) = (&self.keys, &self.tokens, &self.session);
        let durations: [(&'static str, u64); 16] = [
            (
                "keys.prepublication_delay_secs",
                k.prepublication_delay_secs,
            ),
            ("keys.retirement_margin_secs", k.retirement_margin_secs),
            ("keys.rotate_every_secs", k.rotate_every_secs),
            ("keys.reload_interval_secs", k.reload_interval_secs),
            ("keys.jwks_max_age_secs", k.jwks_max_age_secs),
            ("tokens.id_token_ttl_secs", t.id_token_ttl_secs),
            ("tokens.access_token_ttl_secs", t.access_token_ttl_secs),
            ("tokens.code_ttl_secs", t.code_ttl_secs),
            ("tokens.refresh_token_ttl_secs", t.refresh_token_ttl_secs),
            (
                "tokens.refresh_absolute_ttl_secs",
                t.refresh_absolute_ttl_secs,
            ),
            (
                "tokens.refresh_reuse_grace_secs",
                t.refresh_reuse_grace_secs,
            ),
            (
                "server.shutdown_timeout_secs",
                self.server.shutdown_timeout_secs,
            ),
            (
                "database.connect_timeout_secs",
                self.database.connect_timeout_secs,
            ),
            ("session.idle_timeout_secs", s.idle_timeout_secs),
            ("session.absolute_timeout_secs", s.absolute_timeout_secs),
            (
                "login.throttle_window_secs",
                self.login.throttle_window_secs,
            ),
        ];
        for (setting, secs) in durations {
            if secs > MAX_DURATION_SECS {
                return Err(invalid(
                    setting,
                    format!("at most {MAX_DURATION_SECS} seconds (10 years)"),
                ));
            }
        }
        Ok(())
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

pub(super) fn resolve_bind(bind: &str) -> Result<SocketAddr, ConfigError> {
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
    fn declared_clients_sign_id_tokens_with_a_configured_algorithm() {
        let mut c = Config::default();
        c.clients.push(super::super::DeclaredClient {
            client_id: "app".into(),
            id_token_alg: Some("ES256".into()),
            ..Default::default()
        });
        let err = c.clone().validate().unwrap_err().to_string();
        assert!(err.starts_with("clients"), "{err}");
        assert!(err.contains("ES256") && err.contains("RS256"), "{err}");
        c.keys
            .algorithms
            .push(crate::domain::alg::SigningAlg::ES256);
        assert!(c.validate().is_ok());
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

    #[test]
    fn logout_settings_are_bounded() {
        type Change = fn(&mut Config);
        let cases: [(&str, Change); 5] = [
            ("logout.delivery_timeout_secs", |c| {
                c.logout.delivery_timeout_secs = 0
            }),
            ("logout.delivery_timeout_secs", |c| {
                c.logout.delivery_timeout_secs = 61
            }),
            ("logout.max_attempts", |c| c.logout.max_attempts = 0),
            ("logout.max_age_secs", |c| c.logout.max_age_secs = 59),
            ("logout.poll_interval_ms", |c| c.logout.poll_interval_ms = 5),
        ];
        for (setting, change) in cases {
            let mut c = Config::default();
            change(&mut c);
            let e = c.validate().unwrap_err().to_string();
            assert!(e.starts_with(setting), "{e}");
        }
    }

    #[test]
    fn durations_are_bounded() {
        let mut c = Config::default();
        c.tokens.access_token_ttl_secs = u64::MAX;
        let e = c.validate().unwrap_err().to_string();
        assert!(e.starts_with("tokens.access_token_ttl_secs"), "{e}");
        let mut c = Config::default();
        c.session.idle_timeout_secs = MAX_DURATION_SECS + 1;
        c.session.absolute_timeout_secs = MAX_DURATION_SECS + 1;
        assert!(c.validate().is_err());
        let mut c = Config::default();
        c.tokens.refresh_token_ttl_secs = MAX_DURATION_SECS;
        c.tokens.refresh_absolute_ttl_secs = MAX_DURATION_SECS;
        assert!(c.validate().is_ok(), "ten years is the limit, inclusive");
    }

    #[test]
    fn from_toml_str_merges_over_defaults_and_validates() {
        let c = Config::from_toml_str("issuer = \"https://id.example.com/\"\n").unwrap();
        assert_eq!(c.issuer, "https://id.example.com");
        assert_eq!(c.server.bind, "127.0.0.1:8080", "defaults fill the rest");
        let e = Config::from_toml_str("[database]\npool_max_size = 0\n").unwrap_err();
        assert!(e.to_string().starts_with("database.pool_max_size"), "{e}");
        assert!(matches!(
            Config::from_toml_str("issuer = ["),
            Err(ConfigError::Load(_))
        ));
    }

    #[test]
    fn huge_key_intervals_are_refused_not_overflowed() {
        // Beyond what TOML can hold (i64::MAX), but not beyond the other
        // layers: this sum used to overflow and panic in debug builds.
        let mut c = Config::default();
        c.keys.jwks_max_age_secs = u64::MAX;
        c.keys.reload_interval_secs = 60;
        assert!(c.validate().is_err());
    }

    #[test]
    fn device_settings_are_bounded() {
        let mut c = Config::default();
        c.device.code_ttl_secs = 3600;
        let e = c.validate().unwrap_err().to_string();
        assert!(e.starts_with("device.code_ttl_secs"), "{e}");
        let mut c = Config::default();
        c.device.interval_secs = 0;
        let e = c.validate().unwrap_err().to_string();
        assert!(e.starts_with("device.interval_secs"), "{e}");
        let mut c = Config::default();
        c.device.max_failures_per_session = 0;
        assert!(c.validate().is_err());
    }

    #[test]
    fn refresh_family_outlives_its_tokens() {
        let mut c = Config::default();
        c.tokens.refresh_absolute_ttl_secs = c.tokens.refresh_token_ttl_secs - 1;
        let e = c.validate().unwrap_err().to_string();
        assert!(e.starts_with("tokens.refresh_absolute_ttl_secs"), "{e}");
    }

    #[test]
    fn implicit_access_tokens_stay_short_lived() {
        for bad in [0, 3601] {
            let mut c = Config::default();
            c.legacy.implicit_access_token_ttl_secs = bad;
            let e = c.validate().unwrap_err().to_string();
            assert!(
                e.starts_with("legacy.implicit_access_token_ttl_secs"),
                "{e}"
            );
        }
        let c = Config::default();
        assert!(!c.legacy.implicit && !c.legacy.password_grant);
        assert_eq!(c.legacy.implicit_access_ttl(600), 300);
        // Never longer than the ordinary access tokens.
        assert_eq!(c.legacy.implicit_access_ttl(120), 120);
    }
}

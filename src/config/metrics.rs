//! `[metrics]`: Prometheus metrics at `GET /metrics`, off unless turned on,
//! and then never public by accident.

use serde::{Deserialize, Serialize};

use super::{ConfigError, invalid};

/// Where and how `GET /metrics` is served (see `telemetry::metrics`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsConfig {
    /// Serve `GET /metrics` (Prometheus text format). Off: not served
    /// anywhere, and recording costs next to nothing.
    pub enabled: bool,
    /// Serve metrics on their own address (HOST:PORT, e.g.
    /// `127.0.0.1:9464`), a small second server that answers only
    /// `/metrics` (recommended). Empty: on the main listener, which then
    /// requires a bearer token (`token_env` or `token_sha256`).
    pub bind: String,
    /// The environment variable holding the bearer token scrapers present
    /// (`Authorization: Bearer …`).
    pub token_env: String,
    /// Or the token's SHA-256, 64 hex digits (`printf %s TOKEN | sha256sum`):
    /// then no copy of the token is kept by Latchkey.
    pub token_sha256: String,
    /// Label token counters with the authenticated `client_id`. Off by
    /// default: with open registration, every new client adds series.
    pub client_id_labels: bool,
}

impl MetricsConfig {
    /// Whether `/metrics` is served on the main listener (with a token).
    pub fn on_main_listener(&self) -> bool {
        self.enabled && self.bind.is_empty()
    }

    /// Whether a bearer token was configured.
    pub fn has_token(&self) -> bool {
        !self.token_env.is_empty() || !self.token_sha256.is_empty()
    }

    /// Checks the settings; `server_bind` is the main listener's address.
    pub(super) fn validate(&mut self, server_bind: &str) -> Result<(), ConfigError> {
        self.bind = self.bind.trim().to_owned();
        self.token_sha256 = self.token_sha256.trim().to_ascii_lowercase();
        if !self.token_env.is_empty() && !self.token_sha256.is_empty() {
            return Err(invalid(
                "metrics.token_env",
                "set either metrics.token_env or metrics.token_sha256, not both",
            ));
        }
        if !self.token_sha256.is_empty()
            && (self.token_sha256.len() != 64
                || !self.token_sha256.bytes().all(|b| b.is_ascii_hexdigit()))
        {
            return Err(invalid(
                "metrics.token_sha256",
                "must be 64 hex digits (the SHA-256 of the token)",
            ));
        }
        if !self.bind.is_empty() {
            let addr = super::load::resolve_bind(&self.bind)
                .map_err(|_| invalid("metrics.bind", "must be HOST:PORT"))?;
            if addr.port() != 0 && super::load::resolve_bind(server_bind).ok() == Some(addr) {
                return Err(invalid(
                    "metrics.bind",
                    "must differ from server.bind (leave it empty to serve on the main listener with a token)",
                ));
            }
        }
        if self.on_main_listener() && !self.has_token() {
            return Err(invalid(
                "metrics.bind",
                "metrics are enabled on the main listener without a token: set metrics.bind \
                 (a separate address) or metrics.token_env / metrics.token_sha256",
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(m: MetricsConfig) -> Result<MetricsConfig, String> {
        let mut m = m;
        m.validate("127.0.0.1:8080")
            .map(|_| m)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn never_on_the_main_listener_without_a_token() {
        let on = MetricsConfig {
            enabled: true,
            ..Default::default()
        };
        let e = check(on.clone()).unwrap_err();
        assert!(e.starts_with("metrics.bind:"), "{e}");
        assert!(
            check(MetricsConfig {
                token_env: "METRICS_TOKEN".into(),
                ..on.clone()
            })
            .is_ok()
        );
        assert!(
            check(MetricsConfig {
                bind: "127.0.0.1:9464".into(),
                ..on.clone()
            })
            .is_ok()
        );
        // Off: nothing is required.
        assert!(check(MetricsConfig::default()).is_ok());
    }

    #[test]
    fn rejects_bad_tokens_and_addresses() {
        let on = MetricsConfig {
            enabled: true,
            bind: "127.0.0.1:9464".into(),
            ..Default::default()
        };
        for (m, setting) in [
            (
                MetricsConfig {
                    token_sha256: "abc".into(),
                    ..on.clone()
                },
                "metrics.token_sha256",
            ),
            (
                MetricsConfig {
                    token_sha256: "a".repeat(64),
                    token_env: "X".into(),
                    ..on.clone()
                },
                "metrics.token_env",
            ),
            (
                MetricsConfig {
                    bind: "nowhere".into(),
                    ..on.clone()
                },
                "metrics.bind",
            ),
            (
                MetricsConfig {
                    bind: "127.0.0.1:8080".into(),
                    ..on.clone()
                },
                "metrics.bind",
            ),
        ] {
            let e = check(m).unwrap_err();
            assert!(e.starts_with(setting), "{e}");
        }
        let upper = check(MetricsConfig {
            token_sha256: "A".repeat(64),
            ..on
        })
        .unwrap();
        assert_eq!(upper.token_sha256, "a".repeat(64));
    }
}

//! The bearer token `GET /metrics` may require (`metrics.token_env` or
//! `metrics.token_sha256`). Only its SHA-256 is kept; a presented token is
//! hashed and compared in constant time.

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::config::MetricsConfig;

/// The SHA-256 of the token scrapers must present.
#[derive(Clone)]
pub struct ScrapeToken([u8; 32]);

impl std::fmt::Debug for ScrapeToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ScrapeToken(<redacted>)")
    }
}

/// Why the configured token cannot be had (start-up fails).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ScrapeTokenError {
    #[error("the environment variable {0} is not set or empty")]
    MissingEnv(String),
    #[error("the token in {0} is shorter than 16 characters")]
    TooShort(String),
    #[error("must be 64 hex digits")]
    BadHash,
}

impl ScrapeTokenError {
    /// The setting the problem is about.
    pub fn setting(&self) -> &'static str {
        match self {
            ScrapeTokenError::BadHash => "metrics.token_sha256",
            _ => "metrics.token_env",
        }
    }
}

/// Tokens shorter than this are refused at start: they could be guessed.
const MIN_TOKEN_LEN: usize = 16;

impl ScrapeToken {
    /// The token `config` names, if any; `env` reads an environment
    /// variable (`std::env::var` in the server, a map in tests).
    pub fn from_config(
        config: &MetricsConfig,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Option<ScrapeToken>, ScrapeTokenError> {
        if !config.token_sha256.is_empty() {
            let mut hash = [0u8; 32];
            let hex = config.token_sha256.as_bytes();
            if hex.len() != 64 {
                return Err(ScrapeTokenError::BadHash);
            }
            for (i, byte) in hash.iter_mut().enumerate() {
                let pair = std::str::from_utf8(&hex[2 * i..2 * i + 2])
                    .map_err(|_| ScrapeTokenError::BadHash)?;
                *byte = u8::from_str_radix(pair, 16).map_err(|_| ScrapeTokenError::BadHash)?;
            }
            return Ok(Some(ScrapeToken(hash)));
        }
        if config.token_env.is_empty() {
            return Ok(None);
        }
        let var = config.token_env.as_str();
        let token = env(var)
            .filter(|t| !t.trim().is_empty())
            .ok_or_else(|| ScrapeTokenError::MissingEnv(var.to_owned()))?;
        let token = token.trim();
        if token.len() < MIN_TOKEN_LEN {
            return Err(ScrapeTokenError::TooShort(var.to_owned()));
        }
        Ok(Some(ScrapeToken(Sha256::digest(token.as_bytes()).into())))
    }

    /// Whether an `Authorization` header value carries the token
    /// (`Bearer TOKEN`, the scheme case-insensitive).
    pub fn allows(&self, authorization: Option<&str>) -> bool {
        let Some(value) = authorization else {
            return false;
        };
        let Some((scheme, token)) = value.trim().split_once(' ') else {
            return false;
        };
        if !scheme.eq_ignore_ascii_case("bearer") {
            return false;
        }
        let presented: [u8; 32] = Sha256::digest(token.trim().as_bytes()).into();
        presented.ct_eq(&self.0).into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOKEN: &str = "scrape-token-0123456789";

    fn env_with(var: &'static str, value: &'static str) -> impl Fn(&str) -> Option<String> {
        move |k| (k == var).then(|| value.to_owned())
    }

    #[test]
    fn token_from_the_environment_or_its_hash() {
        let by_env = MetricsConfig {
            token_env: "METRICS_TOKEN".into(),
            ..Default::default()
        };
        let t = ScrapeToken::from_config(&by_env, &env_with("METRICS_TOKEN", TOKEN))
            .unwrap()
            .unwrap();
        assert!(t.allows(Some(&format!("Bearer {TOKEN}"))));
        assert!(t.allows(Some(&format!("bearer {TOKEN}"))));
        assert!(!t.allows(Some(&format!("Bearer {TOKEN}x"))));
        assert!(!t.allows(Some(&format!("Basic {TOKEN}"))));
        assert!(!t.allows(Some(TOKEN)));
        assert!(!t.allows(None));
        let hex: String = Sha256::digest(TOKEN.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let by_hash = MetricsConfig {
            token_sha256: hex,
            ..Default::default()
        };
        let h = ScrapeToken::from_config(&by_hash, &|_| None)
            .unwrap()
            .unwrap();
        assert!(h.allows(Some(&format!("Bearer {TOKEN}"))));
        assert!(!format!("{h:?}").contains(TOKEN));
    }

    #[test]
    fn a_missing_or_short_token_stops_the_start() {
        let c = MetricsConfig {
            token_env: "METRICS_TOKEN".into(),
            ..Default::default()
        };
        assert_eq!(
            ScrapeToken::from_config(&c, &|_| None).unwrap_err(),
            ScrapeTokenError::MissingEnv("METRICS_TOKEN".into())
        );
        assert_eq!(
            ScrapeToken::from_config(&c, &env_with("METRICS_TOKEN", "short")).unwrap_err(),
            ScrapeTokenError::TooShort("METRICS_TOKEN".into())
        );
        assert!(
            ScrapeToken::from_config(&MetricsConfig::default(), &|_| None)
                .unwrap()
                .is_none()
        );
    }
}

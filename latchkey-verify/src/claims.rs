//! The claims of a verified access token, typed.

use std::collections::BTreeSet;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{Map, Value};

use crate::error::VerifyError;

/// A verified JWT access token (RFC 9068 section 2.2).
#[derive(Debug, Clone, PartialEq)]
pub struct AccessToken {
    /// `sub`: the user, or for `client_credentials` the client itself.
    pub subject: String,
    /// `client_id`: the app the token was issued to.
    pub client_id: String,
    /// `scope`, split on spaces.
    pub scopes: BTreeSet<String>,
    /// `groups` (RFC 9068 section 2.2.3.1), empty when absent.
    pub groups: BTreeSet<String>,
    /// `iss`.
    pub issuer: String,
    /// `aud`, always as a list.
    pub audience: Vec<String>,
    /// `jti`: unique per token.
    pub jwt_id: String,
    /// `exp`.
    pub expires_at: SystemTime,
    /// `iat`.
    pub issued_at: SystemTime,
    /// `auth_time`, when a user signed in for this grant.
    pub auth_time: Option<SystemTime>,
    /// Every claim, for anything not lifted into a field above.
    pub claims: Map<String, Value>,
}

impl AccessToken {
    /// True when the token was granted `scope`.
    pub fn has_scope(&self, scope: &str) -> bool {
        self.scopes.contains(scope)
    }

    /// The first of `required` the token lacks, if any.
    pub fn missing_scope<'s>(&self, required: &[&'s str]) -> Option<&'s str> {
        required.iter().copied().find(|s| !self.has_scope(s))
    }

    /// True when the token acts for the client itself (no user): its
    /// subject is its client id, as with `client_credentials`.
    pub fn is_client_token(&self) -> bool {
        self.auth_time.is_none() && self.subject == self.client_id
    }
}

/// What the claims must say besides the signature.
#[derive(Debug, Clone)]
pub(crate) struct ClaimRules {
    pub issuer: String,
    pub audience: String,
    pub leeway_secs: i64,
}

fn string(map: &Map<String, Value>, name: &'static str) -> Result<String, VerifyError> {
    match map.get(name) {
        Some(Value::String(s)) if !s.is_empty() => Ok(s.clone()),
        _ => Err(VerifyError::InvalidClaim(name)),
    }
}

/// A NumericDate (RFC 7519 section 2): seconds, possibly fractional;
/// truncated to whole seconds.
fn numeric_date(map: &Map<String, Value>, name: &'static str) -> Result<Option<i64>, VerifyError> {
    match map.get(name) {
        None => Ok(None),
        Some(Value::Number(n)) => n
            .as_i64()
            .or_else(|| n.as_f64().filter(|f| f.is_finite()).map(|f| f as i64))
            .map(Some)
            .ok_or(VerifyError::InvalidClaim(name)),
        Some(_) => Err(VerifyError::InvalidClaim(name)),
    }
}

fn system_time(secs: i64) -> SystemTime {
    match u64::try_from(secs) {
        Ok(s) => UNIX_EPOCH + Duration::from_secs(s),
        Err(_) => UNIX_EPOCH,
    }
}

fn string_set(
    map: &Map<String, Value>,
    name: &'static str,
) -> Result<BTreeSet<String>, VerifyError> {
    match map.get(name) {
        None => Ok(BTreeSet::new()),
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| {
                v.as_str()
                    .map(str::to_owned)
                    .ok_or(VerifyError::InvalidClaim(name))
            })
            .collect(),
        Some(_) => Err(VerifyError::InvalidClaim(name)),
    }
}

/// Checks `iss`, `aud`, `exp`, `nbf` and `iat` at `now` (Unix seconds)
/// and lifts the claims into an [`AccessToken`]. Checks run in an order
/// that reports the most useful reason first: who issued it, for whom,
/// then when.
pub(crate) fn check(
    claims: Map<String, Value>,
    rules: &ClaimRules,
    now: i64,
) -> Result<AccessToken, VerifyError> {
    let issuer = string(&claims, "iss").map_err(|_| VerifyError::WrongIssuer)?;
    if issuer != rules.issuer {
        return Err(VerifyError::WrongIssuer);
    }
    let audience = match claims.get("aud") {
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| v.as_str().map(str::to_owned))
            .collect::<Option<Vec<_>>>()
            .ok_or(VerifyError::InvalidClaim("aud"))?,
        _ => return Err(VerifyError::InvalidClaim("aud")),
    };
    if !audience.contains(&rules.audience) {
        return Err(VerifyError::WrongAudience);
    }
    let leeway = rules.leeway_secs;
    let exp = numeric_date(&claims, "exp")?.ok_or(VerifyError::InvalidClaim("exp"))?;
    if now > exp.saturating_add(leeway) {
        return Err(VerifyError::Expired);
    }
    if let Some(nbf) = numeric_date(&claims, "nbf")?
        && now.saturating_add(leeway) < nbf
    {
        return Err(VerifyError::NotYetValid);
    }
    let iat = numeric_date(&claims, "iat")?.ok_or(VerifyError::InvalidClaim("iat"))?;
    if now.saturating_add(leeway) < iat {
        return Err(VerifyError::IssuedInFuture);
    }
    let scopes = match claims.get("scope") {
        None => BTreeSet::new(),
        Some(Value::String(s)) => s
            .split(' ')
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect(),
        Some(_) => return Err(VerifyError::InvalidClaim("scope")),
    };
    Ok(AccessToken {
        subject: string(&claims, "sub")?,
        client_id: string(&claims, "client_id")?,
        jwt_id: string(&claims, "jti")?,
        groups: string_set(&claims, "groups")?,
        auth_time: numeric_date(&claims, "auth_time")?.map(system_time),
        scopes,
        issuer,
        audience,
        expires_at: system_time(exp),
        issued_at: system_time(iat),
        claims,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const NOW: i64 = 1_800_000_000;

    fn rules() -> ClaimRules {
        ClaimRules {
            issuer: "https://id.example".into(),
            audience: "https://api.example".into(),
            leeway_secs: 30,
        }
    }

    fn claims(edit: impl FnOnce(&mut Map<String, Value>)) -> Map<String, Value> {
        let mut m = json!({
            "iss": "https://id.example",
            "aud": ["https://api.example", "https://id.example"],
            "sub": "u1", "client_id": "c1", "jti": "j1",
            "iat": NOW - 10, "exp": NOW + 600,
            "scope": "read:notes  openid", "groups": ["staff"],
        })
        .as_object()
        .cloned()
        .unwrap();
        edit(&mut m);
        m
    }

    #[test]
    fn good_claims_are_lifted() {
        let t = check(claims(|_| {}), &rules(), NOW).unwrap();
        assert_eq!(t.subject, "u1");
        assert_eq!(t.client_id, "c1");
        assert_eq!(t.scopes, ["openid", "read:notes"].map(String::from).into());
        assert_eq!(t.groups, ["staff".to_owned()].into());
        assert!(t.has_scope("read:notes") && !t.has_scope("write:notes"));
        assert_eq!(
            t.missing_scope(&["read:notes", "write:notes"]),
            Some("write:notes")
        );
        assert_eq!(
            t.expires_at,
            UNIX_EPOCH + Duration::from_secs((NOW + 600) as u64)
        );
        assert!(!t.is_client_token());
    }

    #[test]
    fn audience_may_be_a_single_string() {
        let t = check(
            claims(|m| {
                m.insert("aud".into(), json!("https://api.example"));
            }),
            &rules(),
            NOW,
        )
        .unwrap();
        assert_eq!(t.audience, ["https://api.example"]);
    }

    #[test]
    fn each_rule_is_enforced() {
        type Edit = Box<dyn FnOnce(&mut Map<String, Value>)>;
        let cases: Vec<(Edit, VerifyError)> = vec![
            (
                Box::new(|m| {
                    m.insert("iss".into(), json!("https://evil.example"));
                }),
                VerifyError::WrongIssuer,
            ),
            (
                Box::new(|m| {
                    m.remove("iss");
                }),
                VerifyError::WrongIssuer,
            ),
            (
                Box::new(|m| {
                    m.insert("aud".into(), json!(["https://other.example"]));
                }),
                VerifyError::WrongAudience,
            ),
            (
                Box::new(|m| {
                    m.remove("aud");
                }),
                VerifyError::InvalidClaim("aud"),
            ),
            (
                Box::new(|m| {
                    m.insert("exp".into(), json!(NOW - 31));
                }),
                VerifyError::Expired,
            ),
            (
                Box::new(|m| {
                    m.remove("exp");
                }),
                VerifyError::InvalidClaim("exp"),
            ),
            (
                Box::new(|m| {
                    m.insert("exp".into(), json!("soon"));
                }),
                VerifyError::InvalidClaim("exp"),
            ),
            (
                Box::new(|m| {
                    m.insert("nbf".into(), json!(NOW + 31));
                }),
                VerifyError::NotYetValid,
            ),
            (
                Box::new(|m| {
                    m.insert("iat".into(), json!(NOW + 31));
                }),
                VerifyError::IssuedInFuture,
            ),
            (
                Box::new(|m| {
                    m.remove("iat");
                }),
                VerifyError::InvalidClaim("iat"),
            ),
            (
                Box::new(|m| {
                    m.remove("sub");
                }),
                VerifyError::InvalidClaim("sub"),
            ),
            (
                Box::new(|m| {
                    m.remove("client_id");
                }),
                VerifyError::InvalidClaim("client_id"),
            ),
            (
                Box::new(|m| {
                    m.remove("jti");
                }),
                VerifyError::InvalidClaim("jti"),
            ),
            (
                Box::new(|m| {
                    m.insert("scope".into(), json!(["a"]));
                }),
                VerifyError::InvalidClaim("scope"),
            ),
            (
                Box::new(|m| {
                    m.insert("groups".into(), json!("staff"));
                }),
                VerifyError::InvalidClaim("groups"),
            ),
        ];
        for (edit, want) in cases {
            assert_eq!(
                check(claims(edit), &rules(), NOW),
                Err(want.clone()),
                "{want}"
            );
        }
    }

    #[test]
    fn leeway_is_inclusive_at_its_edge() {
        let edge = claims(|m| {
            m.insert("exp".into(), json!(NOW - 30));
            m.insert("nbf".into(), json!(NOW + 30));
            m.insert("iat".into(), json!(NOW + 30));
        });
        assert!(check(edge, &rules(), NOW).is_ok());
        let no_leeway = ClaimRules {
            leeway_secs: 0,
            ..rules()
        };
        let past = claims(|m| {
            m.insert("exp".into(), json!(NOW - 1));
        });
        assert_eq!(check(past, &no_leeway, NOW), Err(VerifyError::Expired));
    }
}

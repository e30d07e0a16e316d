//! The claims of a verified access token, typed.

use std::collections::BTreeSet;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{Map, Value};

use crate::error::VerifyError;

/// What kind of token an [`AccessToken`] was verified from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TokenKind {
    /// A JWT access token (RFC 9068), issued to an app: checked offline by
    /// [`Verifier::verify`](crate::Verifier::verify), or at the issuer by
    /// [`Verifier::introspect`](crate::Verifier::introspect).
    Jwt,
    /// A personal access token (`lkp_…`) a user created for scripts: an
    /// opaque string only the issuer can judge, always checked by
    /// introspection. It was issued to no app and names no audience.
    PersonalAccessToken,
}

/// A verified access token: a JWT access token (RFC 9068 section 2.2) or a
/// personal access token the issuer vouched for by introspection (RFC
/// 7662). Scopes, subject and times mean the same for both; see
/// [`kind`](Self::kind) for what is absent from a personal access token.
#[derive(Debug, Clone, PartialEq)]
pub struct AccessToken {
    /// What was presented: a JWT or a personal access token.
    pub kind: TokenKind,
    /// `sub`: the user, or for `client_credentials` the client itself.
    pub subject: String,
    /// `client_id`: the app the token was issued to. Always present for a
    /// JWT; `None` for a personal access token, which a user created for
    /// themselves, not for an app.
    pub client_id: Option<String>,
    /// `scope`, split on spaces.
    pub scopes: BTreeSet<String>,
    /// `groups` (RFC 9068 section 2.2.3.1), empty when absent (Latchkey's
    /// introspection answers carry no groups).
    pub groups: BTreeSet<String>,
    /// `iss`.
    pub issuer: String,
    /// `aud`, always as a list; it contains the verifier's audience. Empty
    /// for a personal access token: it is addressed to no particular API,
    /// and the issuer tells only registered resource servers about it.
    pub audience: Vec<String>,
    /// `jti`: unique per JWT. `None` for a personal access token (the
    /// token itself is the secret; no identifier of it is exposed).
    pub jwt_id: Option<String>,
    /// `exp`.
    pub expires_at: SystemTime,
    /// `iat`.
    pub issued_at: SystemTime,
    /// `auth_time`, when a user signed in for this grant.
    pub auth_time: Option<SystemTime>,
    /// Every claim, for anything not lifted into a field above: the JWT's
    /// payload, or for a token checked by introspection the members of
    /// the issuer's answer (`active`, `token_type`, …).
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
        self.auth_time.is_none() && self.client_id.as_deref() == Some(self.subject.as_str())
    }

    /// True for a personal access token.
    pub fn is_personal_access_token(&self) -> bool {
        self.kind == TokenKind::PersonalAccessToken
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

fn optional_string(
    map: &Map<String, Value>,
    name: &'static str,
) -> Result<Option<String>, VerifyError> {
    match map.get(name) {
        None => Ok(None),
        Some(_) => string(map, name).map(Some),
    }
}

/// Checks `iss`, `aud`, `exp`, `nbf` and `iat` at `now` (Unix seconds)
/// and lifts the claims of a signature-checked JWT into an
/// [`AccessToken`].
pub(crate) fn check(
    claims: Map<String, Value>,
    rules: &ClaimRules,
    now: i64,
) -> Result<AccessToken, VerifyError> {
    lift(claims, rules, now, TokenKind::Jwt)
}

/// The same checks on an RFC 7662 answer the issuer marked `active`,
/// for a token of `kind`, plus `token_type`: a refresh token (which
/// Latchkey shows its own client as active) is not an access token.
pub(crate) fn check_introspected(
    answer: Map<String, Value>,
    rules: &ClaimRules,
    now: i64,
    kind: TokenKind,
) -> Result<AccessToken, VerifyError> {
    match answer.get("token_type") {
        None => {}
        Some(Value::String(t)) if t.eq_ignore_ascii_case("bearer") => {}
        Some(_) => return Err(VerifyError::InvalidClaim("token_type")),
    }
    lift(answer, rules, now, kind)
}

/// Checks run in an order that reports the most useful reason first: who
/// issued it, for whom, then when. A JWT must name the audience and carry
/// `client_id` and `jti`; a personal access token names no audience and
/// no app, but if the issuer's answer does, the audience must match.
fn lift(
    claims: Map<String, Value>,
    rules: &ClaimRules,
    now: i64,
    kind: TokenKind,
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
        None if kind == TokenKind::PersonalAccessToken => Vec::new(),
        _ => return Err(VerifyError::InvalidClaim("aud")),
    };
    let unaddressed_pat = audience.is_empty() && kind == TokenKind::PersonalAccessToken;
    if !unaddressed_pat && !audience.contains(&rules.audience) {
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
    let (client_id, jwt_id) = match kind {
        TokenKind::Jwt => (
            Some(string(&claims, "client_id")?),
            Some(string(&claims, "jti")?),
        ),
        TokenKind::PersonalAccessToken => (
            optional_string(&claims, "client_id")?,
            optional_string(&claims, "jti")?,
        ),
    };
    Ok(AccessToken {
        kind,
        subject: string(&claims, "sub")?,
        client_id,
        jwt_id,
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
        assert_eq!(t.client_id.as_deref(), Some("c1"));
        assert_eq!(t.kind, TokenKind::Jwt);
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

    fn pat_answer(edit: impl FnOnce(&mut Map<String, Value>)) -> Map<String, Value> {
        let mut m = json!({
            "active": true, "scope": "read:notes write:notes", "sub": "u1",
            "iss": "https://id.example", "exp": NOW + 600, "iat": NOW - 10,
            "token_type": "Bearer",
        })
        .as_object()
        .cloned()
        .unwrap();
        edit(&mut m);
        m
    }

    #[test]
    fn a_personal_access_token_answer_is_lifted() {
        let pat = TokenKind::PersonalAccessToken;
        let t = check_introspected(pat_answer(|_| {}), &rules(), NOW, pat).unwrap();
        assert_eq!(t.kind, pat);
        assert!(t.is_personal_access_token() && !t.is_client_token());
        assert_eq!(t.subject, "u1");
        assert_eq!(
            t.scopes,
            ["read:notes", "write:notes"].map(String::from).into()
        );
        assert_eq!((t.client_id, t.jwt_id), (None, None));
        assert!(t.audience.is_empty());
        assert_eq!(t.claims["token_type"], "Bearer");
        assert_eq!(
            t.expires_at,
            UNIX_EPOCH + Duration::from_secs((NOW + 600) as u64)
        );
        // If the issuer ever names audiences, this API must be one of them.
        let other_api = pat_answer(|m| {
            m.insert("aud".into(), json!(["https://other.example"]));
        });
        assert_eq!(
            check_introspected(other_api, &rules(), NOW, pat),
            Err(VerifyError::WrongAudience)
        );
    }

    #[test]
    fn introspection_answers_are_checked_like_claims() {
        let pat = TokenKind::PersonalAccessToken;
        // (member, new value or None to remove it, the refusal)
        let cases = [
            (
                "iss",
                Some(json!("https://evil.example")),
                VerifyError::WrongIssuer,
            ),
            ("iss", None, VerifyError::WrongIssuer),
            ("exp", Some(json!(NOW - 31)), VerifyError::Expired),
            ("exp", None, VerifyError::InvalidClaim("exp")),
            ("sub", None, VerifyError::InvalidClaim("sub")),
            // Latchkey shows a client its own refresh tokens as active.
            (
                "token_type",
                Some(json!("refresh_token")),
                VerifyError::InvalidClaim("token_type"),
            ),
        ];
        for (member, value, want) in cases {
            let answer = pat_answer(|m| match value {
                Some(v) => {
                    m.insert(member.into(), v);
                }
                None => {
                    m.remove(member);
                }
            });
            assert_eq!(
                check_introspected(answer, &rules(), NOW, pat),
                Err(want.clone()),
                "{member}: {want}"
            );
        }
        let lower = pat_answer(|m| {
            m.insert("token_type".into(), json!("bearer"));
        });
        assert!(check_introspected(lower, &rules(), NOW, pat).is_ok());
    }

    #[test]
    fn a_jwt_answer_must_name_the_audience_app_and_id() {
        let jwt = TokenKind::Jwt;
        // An answer like a PAT's, for a JWT: no audience, no app.
        assert_eq!(
            check_introspected(pat_answer(|_| {}), &rules(), NOW, jwt),
            Err(VerifyError::InvalidClaim("aud"))
        );
        let full = pat_answer(|m| {
            m.insert("aud".into(), json!(["https://api.example"]));
            m.insert("client_id".into(), json!("c1"));
            m.insert("jti".into(), json!("j1"));
            m.insert("auth_time".into(), json!(NOW - 100));
        });
        let t = check_introspected(full.clone(), &rules(), NOW, jwt).unwrap();
        assert_eq!(t.kind, jwt);
        assert_eq!(t.client_id.as_deref(), Some("c1"));
        assert_eq!(t.jwt_id.as_deref(), Some("j1"));
        assert!(t.auth_time.is_some());
        let mut no_jti = full.clone();
        no_jti.remove("jti");
        assert_eq!(
            check_introspected(no_jti, &rules(), NOW, jwt),
            Err(VerifyError::InvalidClaim("jti"))
        );
        let mut elsewhere = full;
        elsewhere.insert("aud".into(), json!("https://other.example"));
        assert_eq!(
            check_introspected(elsewhere, &rules(), NOW, jwt),
            Err(VerifyError::WrongAudience)
        );
    }
}

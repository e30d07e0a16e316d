//! OAuth 2.0 Token Exchange (RFC 8693): the request's token types, the
//! `act` claim, and how much the exchanged token may carry. Plain rules;
//! the grant itself is `service::token::token_exchange`.
//!
//! Latchkey exchanges one kind of token for one kind: a Latchkey access
//! token (a JWT it signed, or a personal access token) for a new JWT
//! access token naming the exchanging client as the actor. Every refusal
//! of the subject token is `invalid_request`, as RFC 8693 2.2.2 requires
//! ("invalid for any reason, or unacceptable based on policy"); a target
//! the client may not have is `invalid_target`, a scope `invalid_scope`.

use serde_json::{Map, Value, json};

use super::OAuthError;
use crate::domain::scope::{ADMIN_SCOPE, ScopeSet};

/// `urn:ietf:params:oauth:token-type:access_token` (RFC 8693 3).
pub const ACCESS_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:access_token";
/// `urn:ietf:params:oauth:token-type:jwt` (RFC 8693 3, RFC 7519 9).
pub const JWT_TYPE: &str = "urn:ietf:params:oauth:token-type:jwt";

/// The subject token as its type says it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubjectType {
    /// An access token: a Latchkey JWT or a personal access token.
    AccessToken,
    /// A JWT: only a Latchkey JWT access token is accepted.
    Jwt,
}

/// The token-exchange parameters beyond the common ones, as sent.
#[derive(Debug, Clone, Copy, Default)]
pub struct ExchangeParams<'a> {
    pub subject_token: Option<&'a str>,
    pub subject_token_type: Option<&'a str>,
    pub actor_token: Option<&'a str>,
    pub actor_token_type: Option<&'a str>,
    pub requested_token_type: Option<&'a str>,
    pub resource: Option<&'a str>,
    pub audience: Option<&'a str>,
}

/// A request that passed the parameter rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExchangeRequest<'a> {
    pub subject_token: &'a str,
    pub subject_type: SubjectType,
    /// The one target service (`resource` or `audience`), if named.
    pub target: Option<&'a str>,
}

/// Checks the parameters of RFC 8693 2.1: a subject token and its type
/// (one Latchkey understands), no actor token (the actor is always the
/// authenticated client), an access token as the requested type, and at
/// most one target.
pub fn validate<'a>(p: &ExchangeParams<'a>) -> Result<ExchangeRequest<'a>, OAuthError> {
    let subject_token = p
        .subject_token
        .filter(|t| !t.is_empty())
        .ok_or_else(|| OAuthError::invalid_request("subject_token is required"))?;
    let subject_type = match p.subject_token_type {
        None | Some("") => {
            return Err(OAuthError::invalid_request(
                "subject_token_type is required",
            ));
        }
        Some(ACCESS_TOKEN_TYPE) => SubjectType::AccessToken,
        Some(JWT_TYPE) => SubjectType::Jwt,
        Some(other) => {
            return Err(OAuthError::invalid_request(format!(
                "unsupported subject_token_type {other:?}: only {ACCESS_TOKEN_TYPE} and {JWT_TYPE}"
            )));
        }
    };
    if p.actor_token_type.is_some() && p.actor_token.is_none() {
        return Err(OAuthError::invalid_request(
            "actor_token_type without actor_token",
        ));
    }
    if p.actor_token.is_some() {
        return Err(OAuthError::invalid_request(
            "actor_token is not supported: the authenticated client is the actor",
        ));
    }
    match p.requested_token_type {
        None | Some(ACCESS_TOKEN_TYPE) | Some(JWT_TYPE) => {}
        Some(other) => {
            return Err(OAuthError::invalid_request(format!(
                "unsupported requested_token_type {other:?}: only access tokens are issued by exchange"
            )));
        }
    }
    let target = match (p.resource, p.audience) {
        (Some(r), Some(a)) if r != a => {
            return Err(OAuthError::invalid_target(
                "resource and audience name different services; ask for one per request",
            ));
        }
        (Some(t), _) | (None, Some(t)) => Some(t),
        (None, None) => None,
    };
    Ok(ExchangeRequest {
        subject_token,
        subject_type,
        target,
    })
}

/// The scope of the exchanged token: what was asked (or, if nothing was,
/// all that is available), where available is what the subject token
/// carries, the client may hold, and the user may hold now. Asking for
/// more is `invalid_scope`; an empty result too. The admin API's scope
/// (`latchkey:admin`) is never passed on: a service acting for an
/// administrator must not act as one.
pub fn narrowed_scope(
    requested: Option<&ScopeSet>,
    subject: &ScopeSet,
    client_allowed: &ScopeSet,
    user_may_hold: &ScopeSet,
) -> Result<ScopeSet, OAuthError> {
    if requested.is_some_and(|asked| asked.contains(ADMIN_SCOPE)) {
        return Err(OAuthError::invalid_scope(format!(
            "{ADMIN_SCOPE} is never issued by token exchange"
        )));
    }
    let available = subject
        .intersection(client_allowed)
        .intersection(user_may_hold)
        .filter(|s| s != ADMIN_SCOPE);
    let scope = match requested {
        Some(asked) if !asked.is_subset(&available) => {
            return Err(OAuthError::invalid_scope(
                "a requested scope is beyond the subject token's, the client's or the user's",
            ));
        }
        Some(asked) => asked.clone(),
        None => available,
    };
    if scope.is_empty() {
        return Err(OAuthError::invalid_scope(
            "no scope is left to grant for this exchange",
        ));
    }
    Ok(scope)
}

/// The `act` claim (RFC 8693 4.1): the exchanging client is the current
/// actor; an actor the subject token already named is nested inside, so
/// the chain of delegation stays visible.
pub fn act_claim(client_id: &str, prior: Option<&Map<String, Value>>) -> Value {
    let mut act = Map::new();
    act.insert("sub".into(), json!(client_id));
    if let Some(prior) = prior {
        act.insert("act".into(), Value::Object(prior.clone()));
    }
    Value::Object(act)
}

/// Seconds the exchanged token lives: the usual access-token lifetime,
/// but never past the subject token's own expiry.
pub fn lifetime(access_ttl: i64, now: i64, subject_expires_at: i64) -> i64 {
    access_ttl.min(subject_expires_at - now).max(0)
}

/// The longest life of a JWT exchanged for a personal access token. It
/// names no grant, so revoking the personal access token (or disabling its
/// user) cannot end it early: it lives no longer than a resource server
/// caches a personal access token's introspection answer by default.
pub const FROM_PERSONAL_TOKEN_TTL_SECS: i64 = 60;

#[cfg(test)]
mod tests {
    use super::*;

    fn params() -> ExchangeParams<'static> {
        ExchangeParams {
            subject_token: Some("eyJ.a.b"),
            subject_token_type: Some(ACCESS_TOKEN_TYPE),
            ..Default::default()
        }
    }

    fn code(r: Result<ExchangeRequest<'_>, OAuthError>) -> &'static str {
        r.unwrap_err().error.as_str()
    }

    #[test]
    fn a_plain_request_passes() {
        let r = validate(&params()).unwrap();
        assert_eq!(r.subject_type, SubjectType::AccessToken);
        assert_eq!(r.target, None);
        let jwt = ExchangeParams {
            subject_token_type: Some(JWT_TYPE),
            requested_token_type: Some(ACCESS_TOKEN_TYPE),
            audience: Some("https://b.example"),
            ..params()
        };
        let r = validate(&jwt).unwrap();
        assert_eq!(r.subject_type, SubjectType::Jwt);
        assert_eq!(r.target, Some("https://b.example"));
    }

    #[test]
    fn missing_or_unsupported_types_are_invalid_request() {
        let no_token = ExchangeParams {
            subject_token: None,
            ..params()
        };
        assert_eq!(code(validate(&no_token)), "invalid_request");
        let no_type = ExchangeParams {
            subject_token_type: None,
            ..params()
        };
        assert_eq!(code(validate(&no_type)), "invalid_request");
        for t in [
            "urn:ietf:params:oauth:token-type:refresh_token",
            "urn:ietf:params:oauth:token-type:id_token",
            "urn:ietf:params:oauth:token-type:saml2",
            "access_token",
        ] {
            let p = ExchangeParams {
                subject_token_type: Some(t),
                ..params()
            };
            assert_eq!(code(validate(&p)), "invalid_request", "{t}");
            let p = ExchangeParams {
                requested_token_type: Some(t),
                ..params()
            };
            assert_eq!(code(validate(&p)), "invalid_request", "{t}");
        }
    }

    #[test]
    fn actor_tokens_are_refused() {
        let p = ExchangeParams {
            actor_token: Some("x"),
            actor_token_type: Some(ACCESS_TOKEN_TYPE),
            ..params()
        };
        assert_eq!(code(validate(&p)), "invalid_request");
        let p = ExchangeParams {
            actor_token_type: Some(ACCESS_TOKEN_TYPE),
            ..params()
        };
        assert_eq!(code(validate(&p)), "invalid_request");
    }

    #[test]
    fn one_target_per_request() {
        let same = ExchangeParams {
            resource: Some("https://b.example"),
            audience: Some("https://b.example"),
            ..params()
        };
        assert_eq!(validate(&same).unwrap().target, Some("https://b.example"));
        let two = ExchangeParams {
            resource: Some("https://b.example"),
            audience: Some("https://c.example"),
            ..params()
        };
        assert_eq!(code(validate(&two)), "invalid_target");
    }

    #[test]
    fn scope_is_never_widened() {
        let s = |v: &str| ScopeSet::parse(v).unwrap();
        let subject = s("openid read:notes write:notes");
        let client = s("openid read:notes write:notes admin:x");
        let user = s("openid read:notes");
        assert_eq!(
            narrowed_scope(None, &subject, &client, &user)
                .unwrap()
                .to_string(),
            "openid read:notes"
        );
        assert_eq!(
            narrowed_scope(Some(&s("read:notes")), &subject, &client, &user)
                .unwrap()
                .to_string(),
            "read:notes"
        );
        let e = narrowed_scope(Some(&s("write:notes")), &subject, &client, &user).unwrap_err();
        assert_eq!(e.error.as_str(), "invalid_scope");
        let e = narrowed_scope(None, &s("other"), &client, &user).unwrap_err();
        assert_eq!(e.error.as_str(), "invalid_scope");
        // The admin API's scope never passes through an exchange.
        let admin = s("read:notes latchkey:admin");
        assert_eq!(
            narrowed_scope(None, &admin, &admin, &admin)
                .unwrap()
                .to_string(),
            "read:notes"
        );
        let e = narrowed_scope(Some(&admin), &admin, &admin, &admin).unwrap_err();
        assert_eq!(e.error.as_str(), "invalid_scope");
    }

    #[test]
    fn act_nests_prior_actors() {
        assert_eq!(act_claim("svc-a", None), json!({"sub": "svc-a"}));
        let prior = json!({"sub": "gateway"});
        assert_eq!(
            act_claim("svc-a", prior.as_object()),
            json!({"sub": "svc-a", "act": {"sub": "gateway"}})
        );
    }

    #[test]
    fn lifetime_never_outlives_the_subject() {
        assert_eq!(lifetime(300, 1000, 5000), 300);
        assert_eq!(lifetime(300, 1000, 1100), 100);
        assert_eq!(lifetime(300, 1000, 900), 0);
    }
}

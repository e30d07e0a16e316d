//! What goes into ID tokens (OIDC Core 2, 3.1.3.6, 5.4) and JWT access
//! tokens (RFC 9068 2.2). NumericDates are whole seconds.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use josekit::jwt::JwtPayload;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256, Sha512};
use time::OffsetDateTime;

use crate::domain::alg::SigningAlg;
use crate::domain::mfa::Amr;
use crate::domain::scope::ScopeSet;
use crate::domain::user::UserClaims;

/// `at_hash`: base64url of the left half of the hash of the access token,
/// the hash being the one of the ID token's signing algorithm (SHA-512 for
/// Ed25519).
pub fn at_hash(access_token: &str, alg: SigningAlg) -> String {
    match alg {
        SigningAlg::EdDSA => {
            let d = Sha512::digest(access_token.as_bytes());
            URL_SAFE_NO_PAD.encode(&d[..32])
        }
        _ => {
            let d = Sha256::digest(access_token.as_bytes());
            URL_SAFE_NO_PAD.encode(&d[..16])
        }
    }
}

/// Claims about the user released by the granted scopes (OIDC Core 5.4),
/// plus `groups` (the names of the user's groups) with the `groups` scope.
pub fn user_claims(
    user: &UserClaims<'_>,
    scope: &ScopeSet,
    groups: &[String],
) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("sub".into(), json!(user.sub));
    if scope.contains("groups") {
        m.insert("groups".into(), json!(groups));
    }
    if scope.contains("profile") {
        m.insert("preferred_username".into(), json!(user.username));
        for (k, v) in [
            ("name", user.name),
            ("given_name", user.given_name),
            ("family_name", user.family_name),
            ("picture", user.picture),
            ("locale", user.locale),
        ] {
            if let Some(v) = v {
                m.insert(k.into(), json!(v));
            }
        }
        m.insert("updated_at".into(), json!(user.updated_at.unix_timestamp()));
    }
    if scope.contains("email")
        && let Some(email) = user.email
    {
        m.insert("email".into(), json!(email));
        m.insert("email_verified".into(), json!(user.email_verified));
    }
    m
}

fn secs(t: OffsetDateTime) -> Value {
    json!(t.unix_timestamp())
}

/// The `aud` of an access token: the requested resource, else the
/// client's first configured audience, else the default audience. When
/// `openid` was granted, the default audience is added, so the token also
/// works at this server's userinfo endpoint.
pub fn access_audience(
    resource: Option<&str>,
    client_audiences: &[String],
    default_audience: &str,
    scope: &ScopeSet,
) -> Vec<String> {
    let primary = resource
        .or(client_audiences.first().map(String::as_str))
        .unwrap_or(default_audience);
    let mut aud = vec![primary.to_owned()];
    if scope.contains("openid") && primary != default_audience {
        aud.push(default_audience.to_owned());
    }
    aud
}

/// Everything an ID token says.
pub struct IdTokenInput<'a> {
    pub issuer: &'a str,
    pub client_id: &'a str,
    pub user: UserClaims<'a>,
    pub scope: &'a ScopeSet,
    pub now: OffsetDateTime,
    pub ttl_secs: i64,
    pub auth_time: OffsetDateTime,
    pub nonce: Option<&'a str>,
    pub sid: Option<&'a str>,
    pub at_hash: Option<String>,
    /// The user's group names (released with the `groups` scope).
    pub groups: &'a [String],
    /// How the user signed in: `amr` (RFC 8176) and the `acr` it reaches.
    /// `None` for grants from before this was recorded: neither claim.
    pub amr: Option<&'a Amr>,
}

pub fn id_token(i: IdTokenInput<'_>) -> Result<JwtPayload, josekit::JoseError> {
    let mut m = user_claims(&i.user, i.scope, i.groups);
    m.insert("iss".into(), json!(i.issuer));
    m.insert("aud".into(), json!(i.client_id));
    m.insert("azp".into(), json!(i.client_id));
    m.insert("iat".into(), secs(i.now));
    m.insert("exp".into(), json!(i.now.unix_timestamp() + i.ttl_secs));
    m.insert("auth_time".into(), secs(i.auth_time));
    if let Some(n) = i.nonce {
        m.insert("nonce".into(), json!(n));
    }
    if let Some(s) = i.sid {
        m.insert("sid".into(), json!(s));
    }
    if let Some(h) = i.at_hash {
        m.insert("at_hash".into(), json!(h));
    }
    if let Some(amr) = i.amr {
        m.insert("amr".into(), json!(amr.values()));
        m.insert("acr".into(), json!(amr.acr()));
    }
    JwtPayload::from_map(m)
}

/// Everything an access token says.
pub struct AccessTokenInput<'a> {
    pub issuer: &'a str,
    /// One or more audiences; one is written as a string, more as an array.
    pub audience: &'a [String],
    pub client_id: &'a str,
    /// The user id, or the client id for client_credentials (RFC 9068 2.2).
    pub subject: &'a str,
    pub scope: &'a ScopeSet,
    pub now: OffsetDateTime,
    pub ttl_secs: i64,
    pub jti: &'a str,
    pub auth_time: Option<OffsetDateTime>,
    /// The grant it came from, so revoking the grant revokes it.
    pub grant_id: Option<&'a str>,
    /// The user's group names, written as `groups` (RFC 9068 2.2.3.1)
    /// when the `groups` scope was granted.
    pub groups: Option<&'a [String]>,
    /// RFC 8693 4.1 `act`: the actor, for tokens issued by exchange.
    pub act: Option<&'a Value>,
}

pub fn access_token(i: AccessTokenInput<'_>) -> Result<JwtPayload, josekit::JoseError> {
    let mut m = Map::new();
    m.insert("iss".into(), json!(i.issuer));
    m.insert("sub".into(), json!(i.subject));
    match i.audience {
        [one] => m.insert("aud".into(), json!(one)),
        many => m.insert("aud".into(), json!(many)),
    };
    m.insert("client_id".into(), json!(i.client_id));
    m.insert("iat".into(), secs(i.now));
    m.insert("exp".into(), json!(i.now.unix_timestamp() + i.ttl_secs));
    m.insert("jti".into(), json!(i.jti));
    m.insert("scope".into(), json!(i.scope.to_string()));
    if let Some(t) = i.auth_time {
        m.insert("auth_time".into(), secs(t));
    }
    if let Some(g) = i.grant_id {
        m.insert("grant_id".into(), json!(g));
    }
    if let Some(groups) = i.groups
        && i.scope.contains("groups")
    {
        m.insert("groups".into(), json!(groups));
    }
    if let Some(act) = i.act {
        m.insert("act".into(), act.clone());
    }
    JwtPayload::from_map(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn audience_rules() {
        let oidc = ScopeSet::parse("openid read").unwrap();
        let api = ScopeSet::parse("read").unwrap();
        let regs = vec![
            "https://api.example".to_owned(),
            "https://b.example".to_owned(),
        ];
        assert_eq!(
            access_audience(None, &[], "https://id", &oidc),
            vec!["https://id"]
        );
        assert_eq!(
            access_audience(None, &regs, "https://id", &api),
            vec!["https://api.example"]
        );
        assert_eq!(
            access_audience(Some("https://b.example"), &regs, "https://id", &oidc),
            vec!["https://b.example", "https://id"]
        );
    }

    #[test]
    fn at_hash_matches_oidc_example() {
        // OIDC Core A.3: access token and at_hash for RS256.
        assert_eq!(
            at_hash(
                "jHkWEdUXMU1BwAsC4vtUsZwnNvTIxEl0z9K3vx5KF0Y",
                SigningAlg::RS256
            ),
            "77QmUPtjPfzWtF2AnpK9RQ"
        );
    }
}

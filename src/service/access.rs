//! Checking Latchkey's own JWT access tokens (userinfo, introspection,
//! revocation): signature with a published key, `typ: at+jwt`, issuer,
//! expiry, and whether the token or its grant was revoked.

use time::OffsetDateTime;

use crate::domain::scope::ScopeSet;
use crate::keys::KeySet;
use crate::oidc::OAuthError;
use crate::store::{DbConn, repo};

#[derive(Debug, Clone, PartialEq)]
pub struct AccessClaims {
    pub sub: String,
    pub client_id: String,
    pub scope: ScopeSet,
    pub aud: Vec<String>,
    pub exp: i64,
    pub iat: i64,
    pub jti: String,
    pub auth_time: Option<i64>,
    pub grant_id: Option<String>,
    /// RFC 8693 4.1: the actor chain of a token issued by exchange.
    pub act: Option<serde_json::Map<String, serde_json::Value>>,
}

impl AccessClaims {
    /// Whether the token is meant for this server: its `aud` names the
    /// default audience or the issuer (tokens granted with `openid` do).
    pub fn is_for_this_server(&self, default_audience: &str, issuer: &str) -> bool {
        self.aud
            .iter()
            .any(|a| a == default_audience || a == issuer)
    }

    /// Whether the token acts for the client itself (`client_credentials`):
    /// no user signed in, and its subject is its client.
    pub fn is_client_token(&self) -> bool {
        self.auth_time.is_none() && self.sub == self.client_id
    }

    /// Whether `client` may read this token at introspection: the client
    /// it was issued to, or a resource server it is meant for, named in
    /// `aud` by its client id or by an audience an administrator says it
    /// serves.
    pub fn readable_by(&self, client: &crate::domain::client::Client) -> bool {
        self.client_id == client.client_id
            || self
                .aud
                .iter()
                .any(|a| *a == client.client_id || client.settings.resource_audiences.contains(a))
    }
}

fn invalid() -> OAuthError {
    OAuthError::invalid_token("the access token is invalid or expired")
}

/// Verifies signature and claims; no database access.
pub fn verify(
    keys: &KeySet,
    token: &str,
    issuer: &str,
    now: OffsetDateTime,
) -> Result<AccessClaims, OAuthError> {
    let (payload, header) = keys.verify(token).map_err(|_| invalid())?;
    let typ = header.token_type().unwrap_or_default().to_ascii_lowercase();
    if typ != "at+jwt" && typ != "application/at+jwt" {
        return Err(invalid());
    }
    let c = payload.claims_set();
    let s = |k: &str| c.get(k).and_then(|v| v.as_str()).map(str::to_owned);
    let n = |k: &str| c.get(k).and_then(|v| v.as_i64());
    if s("iss").as_deref() != Some(issuer) {
        return Err(invalid());
    }
    let exp = n("exp").ok_or_else(invalid)?;
    if exp <= now.unix_timestamp() {
        return Err(invalid());
    }
    if n("nbf").is_some_and(|nbf| nbf > now.unix_timestamp()) {
        return Err(invalid());
    }
    let aud = match c.get("aud") {
        Some(serde_json::Value::String(a)) => vec![a.clone()],
        Some(serde_json::Value::Array(v)) => v
            .iter()
            .filter_map(|a| a.as_str().map(str::to_owned))
            .collect(),
        _ => return Err(invalid()),
    };
    Ok(AccessClaims {
        sub: s("sub").ok_or_else(invalid)?,
        client_id: s("client_id").ok_or_else(invalid)?,
        scope: ScopeSet::parse(&s("scope").unwrap_or_default()).map_err(|_| invalid())?,
        aud,
        exp,
        iat: n("iat").ok_or_else(invalid)?,
        jti: s("jti").ok_or_else(invalid)?,
        auth_time: n("auth_time"),
        grant_id: s("grant_id"),
        act: c.get("act").and_then(|v| v.as_object()).cloned(),
    })
}

/// Whether the token, or the grant it came from, has been revoked.
pub fn is_revoked(conn: &mut DbConn, claims: &AccessClaims) -> diesel::QueryResult<bool> {
    if repo::revocations::is_revoked(conn, &claims.jti)? {
        return Ok(true);
    }
    match &claims.grant_id {
        None => Ok(false),
        Some(g) => Ok(repo::grants::grant(conn, g)?.is_none_or(|g| g.revoked_at.is_some())),
    }
}

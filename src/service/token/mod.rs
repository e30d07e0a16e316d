//! The token endpoint's use case ([`token`]): client authentication, then
//! one module per grant type behind [`exchange`].

pub mod authorization_code;
pub mod client_auth;
pub mod client_credentials;
pub mod device_code;
pub mod mint;
pub mod password;
pub mod refresh_token;
pub mod scope_cache;
pub mod token_exchange;

use serde::{Deserialize, Serialize};

pub use client_auth::{ClientCache, PresentedClient, authenticate_client};
pub use mint::TokenContext;
pub use password::PasswordLogin;
pub use scope_cache::ScopeCache;

use crate::domain::client::GrantType;
use crate::oidc::OAuthError;
use crate::service::clients::Client;
use crate::store::{Db, DbConn};
use crate::telemetry::metrics::grant_label;

/// Longest value accepted for any token endpoint parameter.
pub const PARAM_MAX: usize = 4096;

/// Token request parameters (RFC 6749 4.1.3, 4.4.2, 6), from a form or JSON.
/// `Debug` redacts the code, verifier, refresh token and client secret.
#[derive(Clone, Default, Deserialize, PartialEq, Eq)]
pub struct TokenRequest {
    pub grant_type: Option<String>,
    pub code: Option<String>,
    pub redirect_uri: Option<String>,
    pub code_verifier: Option<String>,
    pub refresh_token: Option<String>,
    pub scope: Option<String>,
    pub client_id: Option<String>,
    pub client_secret: Option<String>,
    /// RFC 8707 resource indicator.
    pub resource: Option<String>,
    /// RFC 8628 3.4.
    pub device_code: Option<String>,
    /// RFC 8693 2.1 (token exchange).
    pub subject_token: Option<String>,
    pub subject_token_type: Option<String>,
    pub actor_token: Option<String>,
    pub actor_token_type: Option<String>,
    pub requested_token_type: Option<String>,
    pub audience: Option<String>,
    /// RFC 6749 4.3.2 (the legacy password grant).
    pub username: Option<String>,
    pub password: Option<String>,
}

fn redacted(v: &Option<String>) -> Option<&'static str> {
    v.as_ref().map(|_| "<redacted>")
}

impl std::fmt::Debug for TokenRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenRequest")
            .field("grant_type", &self.grant_type)
            .field("code", &redacted(&self.code))
            .field("redirect_uri", &self.redirect_uri)
            .field("code_verifier", &redacted(&self.code_verifier))
            .field("refresh_token", &redacted(&self.refresh_token))
            .field("scope", &self.scope)
            .field("client_id", &self.client_id)
            .field("client_secret", &redacted(&self.client_secret))
            .field("resource", &self.resource)
            .field("device_code", &redacted(&self.device_code))
            .field("subject_token", &redacted(&self.subject_token))
            .field("subject_token_type", &self.subject_token_type)
            .field("actor_token", &redacted(&self.actor_token))
            .field("actor_token_type", &self.actor_token_type)
            .field("requested_token_type", &self.requested_token_type)
            .field("audience", &self.audience)
            .field("username", &redacted(&self.username))
            .field("password", &redacted(&self.password))
            .finish()
    }
}

impl TokenRequest {
    pub fn check_bounds(&self) -> Result<(), OAuthError> {
        let fields = [
            &self.grant_type,
            &self.code,
            &self.redirect_uri,
            &self.code_verifier,
            &self.refresh_token,
            &self.scope,
            &self.client_id,
            &self.client_secret,
            &self.resource,
            &self.device_code,
            &self.subject_token,
            &self.subject_token_type,
            &self.actor_token,
            &self.actor_token_type,
            &self.requested_token_type,
            &self.audience,
            &self.username,
            &self.password,
        ];
        if fields
            .iter()
            .any(|f| f.as_ref().is_some_and(|v| v.len() > PARAM_MAX))
        {
            return Err(OAuthError::invalid_request("a parameter is too long"));
        }
        Ok(())
    }
}

/// A successful token response (RFC 6749 5.1, OIDC Core 3.1.3.3).
#[derive(Serialize, PartialEq, Eq)]
pub struct TokenResponse {
    pub access_token: String,
    pub token_type: &'static str,
    pub expires_in: i64,
    pub scope: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id_token: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    /// RFC 8693 2.2.1: what a token exchange issued.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub issued_token_type: Option<&'static str>,
}

impl std::fmt::Debug for TokenResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenResponse")
            .field("scope", &self.scope)
            .field("expires_in", &self.expires_in)
            .finish_non_exhaustive()
    }
}

/// The requested grant type, if the server answers it and the client may
/// use it. `implicit` is no token endpoint grant (its tokens come from
/// `/authorize`), and `password` is one only while `password_grant`
/// (`legacy.password_grant`) is on: both are otherwise unknown here.
pub fn check_grant(
    client: &Client,
    req: &TokenRequest,
    password_grant: bool,
) -> Result<GrantType, OAuthError> {
    let grant: GrantType = match req.grant_type.as_deref() {
        None => return Err(OAuthError::invalid_request("grant_type is required")),
        Some(g) => g
            .parse()
            .ok()
            .filter(|grant| match grant {
                GrantType::Implicit => false,
                GrantType::Password => password_grant,
                _ => true,
            })
            .ok_or_else(|| {
                OAuthError::unsupported_grant_type(format!("unsupported grant_type {g:?}"))
            })?,
    };
    if !client.settings.grant_types.contains(&grant) {
        return Err(OAuthError::unauthorized_client(format!(
            "this client may not use the {grant} grant"
        )));
    }
    Ok(grant)
}

/// `POST /token` (RFC 6749 3.2): bounds, client authentication, the grant
/// check (once), then the grant; the answer is counted in `ctx.metrics`
/// (tokens issued by grant type and algorithm, errors by grant type and
/// code). `client_credentials` signs on the calling
/// thread with no database work (the client and the scope registry come
/// from their caches); the password grant checks the password off the
/// pool (`password` is `None` while `legacy.password_grant` is off); the
/// other grants run on the blocking pool.
pub async fn token(
    db: &Db,
    clients: &ClientCache,
    scopes: &ScopeCache,
    presented: PresentedClient,
    req: TokenRequest,
    ctx: TokenContext,
    password: Option<PasswordLogin>,
) -> Result<TokenResponse, OAuthError> {
    let metrics = ctx.metrics.clone();
    if !metrics.is_enabled() {
        return answer(
            db, clients, scopes, presented, req, ctx, password, &mut None,
        )
        .await;
    }
    let (grant, alg) = (grant_label(req.grant_type.as_deref()), ctx.access_token_alg);
    let mut client_id = None;
    let result = answer(
        db,
        clients,
        scopes,
        presented,
        req,
        ctx,
        password,
        &mut client_id,
    )
    .await;
    let client_id = client_id.as_deref();
    match &result {
        Ok(_) => metrics.token_issued(grant, alg, client_id),
        Err(e) => metrics.token_error(grant, e.error.as_str(), client_id),
    }
    result
}

/// [`token`] without the counting; `client_id` is set once the client
/// authenticated, when the metrics label tokens with it.
#[allow(clippy::too_many_arguments)]
async fn answer(
    db: &Db,
    clients: &ClientCache,
    scopes: &ScopeCache,
    presented: PresentedClient,
    req: TokenRequest,
    ctx: TokenContext,
    password: Option<PasswordLogin>,
    client_id: &mut Option<String>,
) -> Result<TokenResponse, OAuthError> {
    req.check_bounds()?;
    let client = authenticate_client(db, clients, &presented).await?;
    if ctx.metrics.wants_client_id() {
        *client_id = Some(client.client_id.clone());
    }
    match check_grant(&client, &req, password.is_some())? {
        GrantType::ClientCredentials => {
            let registry = scopes.get(db).await?;
            client_credentials::issue(&client, &req, &ctx, &registry)
        }
        GrantType::Password => match password {
            Some(login) => password::exchange(db, client, req, ctx, login).await,
            None => Err(not_here(GrantType::Password)),
        },
        grant => {
            db.run(move |conn| exchange(conn, grant, &client, &req, &ctx))
                .await
        }
    }
}

/// Runs a grant (already checked with [`check_grant`]) for an
/// authenticated client.
pub fn exchange(
    conn: &mut DbConn,
    grant: GrantType,
    client: &Client,
    req: &TokenRequest,
    ctx: &TokenContext,
) -> Result<TokenResponse, OAuthError> {
    match grant {
        GrantType::AuthorizationCode => authorization_code::exchange(conn, client, req, ctx),
        GrantType::RefreshToken => refresh_token::exchange(conn, client, req, ctx),
        GrantType::ClientCredentials => {
            let registry = crate::service::scopes::registry(conn).map_err(OAuthError::from)?;
            client_credentials::issue(client, req, ctx, &registry)
        }
        GrantType::DeviceCode => device_code::exchange(conn, client, req, ctx),
        GrantType::TokenExchange => token_exchange::exchange(conn, client, req, ctx),
        GrantType::Implicit | GrantType::Password => Err(not_here(grant)),
    }
}

/// Grants [`exchange`] does not run: `implicit` has no token endpoint
/// step, and the password grant must not hold a connection while argon2
/// runs ([`token`] runs it).
fn not_here(grant: GrantType) -> OAuthError {
    OAuthError::unsupported_grant_type(format!("unsupported grant_type {:?}", grant.as_str()))
}

/// A database error as the token endpoint answers it: an outage or a full
/// disk is `temporarily_unavailable` (503), anything else `server_error`.
pub(crate) fn storage_error(e: diesel::result::Error) -> OAuthError {
    OAuthError::from(crate::store::StoreError::from(e))
}

pub(crate) fn db_error(e: impl std::fmt::Display) -> OAuthError {
    tracing::error!(error = %e, "token endpoint storage error");
    OAuthError::server_error("storage error")
}

/// An error inside a token transaction: protocol errors roll back too.
pub(crate) enum TxError {
    OAuth(OAuthError),
    Db(diesel::result::Error),
}

impl From<diesel::result::Error> for TxError {
    fn from(e: diesel::result::Error) -> Self {
        TxError::Db(e)
    }
}

impl From<OAuthError> for TxError {
    fn from(e: OAuthError) -> Self {
        TxError::OAuth(e)
    }
}

/// Runs `f` in a transaction. `Ok(Err(e))` commits and still fails (used
/// to revoke a family on replay); `Err` rolls back.
pub(crate) fn in_tx<T>(
    conn: &mut DbConn,
    f: impl FnOnce(&mut DbConn) -> Result<Result<T, OAuthError>, TxError>,
) -> Result<T, OAuthError> {
    use diesel::Connection;
    match conn.transaction(f) {
        Ok(result) => result,
        Err(TxError::OAuth(e)) => Err(e),
        Err(TxError::Db(e)) => Err(storage_error(e)),
    }
}

/// The user behind a grant, if it may still receive tokens.
pub(crate) fn grant_user(
    conn: &mut DbConn,
    grant: &crate::store::models::GrantRow,
) -> Result<crate::store::models::UserRow, TxError> {
    match crate::store::repo::users::by_id(conn, &grant.user_id)? {
        Some(u) if !u.disabled => Ok(u),
        _ => Err(OAuthError::invalid_grant("the user is no longer active").into()),
    }
}

impl From<crate::store::StoreError> for OAuthError {
    fn from(e: crate::store::StoreError) -> Self {
        match e {
            crate::store::StoreError::Unavailable(_) => {
                OAuthError::temporarily_unavailable("storage is unavailable; try again")
            }
            crate::store::StoreError::Query(q) => db_error(q),
        }
    }
}

impl From<crate::service::ServiceError> for OAuthError {
    fn from(e: crate::service::ServiceError) -> Self {
        use crate::service::ServiceError;
        match e {
            ServiceError::Unavailable(_) => {
                OAuthError::temporarily_unavailable("storage is unavailable; try again")
            }
            other => {
                tracing::error!(error = %other, "token endpoint failure");
                OAuthError::server_error("internal error")
            }
        }
    }
}

/// The resource a token is for: the one asked at the token endpoint (it
/// must be registered for the client, and within what was authorized),
/// else the one authorized (RFC 8707 2.2).
pub(crate) fn effective_resource<'a>(
    client: &Client,
    asked: Option<&'a str>,
    authorized: Option<&'a str>,
) -> Result<Option<&'a str>, OAuthError> {
    match (asked, authorized) {
        (None, a) => Ok(a),
        (Some(r), Some(a)) if r != a => Err(OAuthError::invalid_target(
            "the resource differs from the authorized one",
        )),
        (Some(r), _) if client.settings.audiences.iter().any(|x| x == r) => Ok(Some(r)),
        (Some(_), _) => Err(OAuthError::invalid_target(
            "the resource is not registered for this client",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_secrets() {
        let r = TokenRequest {
            grant_type: Some("authorization_code".into()),
            code: Some("the-code".into()),
            code_verifier: Some("the-verifier".into()),
            refresh_token: Some("the-refresh".into()),
            client_secret: Some("the-secret".into()),
            client_id: Some("app".into()),
            device_code: Some("the-device-code".into()),
            subject_token: Some("the-subject-token".into()),
            actor_token: Some("the-actor-token".into()),
            username: Some("the-username".into()),
            password: Some("the-password".into()),
            ..Default::default()
        };
        let shown = format!("{r:?}");
        for secret in [
            "the-code",
            "the-verifier",
            "the-refresh",
            "the-secret",
            "the-device-code",
            "the-subject-token",
            "the-actor-token",
            "the-username",
            "the-password",
        ] {
            assert!(!shown.contains(secret), "{shown}");
        }
        assert!(shown.contains("app") && shown.contains("authorization_code"));
        let m = crate::service::registration::ClientMetadata {
            client_secret: Some("the-secret".into()),
            client_name: Some("Portal".into()),
            ..Default::default()
        };
        let shown = format!("{m:?}");
        assert!(
            !shown.contains("the-secret") && shown.contains("Portal"),
            "{shown}"
        );
    }
}

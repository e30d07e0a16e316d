//! Minting the tokens of a response: JWT access tokens (RFC 9068), ID
//! tokens (OIDC Core), and opaque rotating refresh tokens.

use std::sync::Arc;

use time::{Duration, OffsetDateTime};
use zeroize::Zeroizing;

use super::{TokenResponse, db_error, storage_error};
use crate::clock::to_db;
use crate::domain::scope::ScopeSet;
use crate::domain::secret::OpaqueSecret;
use crate::keys::{KeySet, SigningAlg};
use crate::oidc::OAuthError;
use crate::oidc::claims::{self, AccessTokenInput, IdTokenInput};
use crate::service::clients::Client;
use crate::store::models::{GrantRow, RefreshRow, UserRow};
use crate::store::{DbConn, repo};
use crate::telemetry::metrics::Metrics;

/// What minting needs from configuration, the keys and the clock.
#[derive(Clone)]
pub struct TokenContext {
    pub issuer: String,
    pub audience: String,
    pub keys: Arc<KeySet>,
    pub id_token_alg: SigningAlg,
    pub access_token_alg: SigningAlg,
    pub access_ttl: i64,
    pub id_ttl: i64,
    pub refresh_ttl: i64,
    pub refresh_absolute_ttl: i64,
    pub refresh_grace: i64,
    /// Keys the MAC that derives a refresh token's successor.
    pub refresh_successor_key: Arc<Zeroizing<[u8; 32]>>,
    /// Who may use personal access tokens (`[pat]`).
    pub pat: crate::config::PatConfig,
    pub now: OffsetDateTime,
    /// Where the token endpoint counts what it answers (`[metrics]`).
    pub metrics: Metrics,
}

impl TokenContext {
    pub fn new(
        config: &crate::config::Config,
        keys: &crate::keys::KeyStore,
        now: OffsetDateTime,
    ) -> Self {
        let s = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
        Self {
            issuer: config.issuer.clone(),
            audience: config.default_audience().to_owned(),
            keys: keys.current(),
            id_token_alg: keys.id_token_alg(),
            access_token_alg: keys.access_token_alg(),
            access_ttl: s(config.tokens.access_token_ttl_secs),
            id_ttl: s(config.tokens.id_token_ttl_secs),
            refresh_ttl: s(config.tokens.refresh_token_ttl_secs),
            refresh_absolute_ttl: s(config.tokens.refresh_absolute_ttl_secs),
            refresh_grace: s(config.tokens.refresh_reuse_grace_secs),
            refresh_successor_key: keys.refresh_successor_key(),
            pat: config.pat.clone(),
            now,
            metrics: keys.metrics().clone(),
        }
    }
}

impl TokenContext {
    /// The context of the tokens the implicit flow returns, when
    /// `legacy.implicit` is on: access tokens live
    /// `legacy.implicit_access_token_ttl_secs` (at most the ordinary
    /// lifetime).
    pub fn implicit(
        config: &crate::config::Config,
        keys: &crate::keys::KeyStore,
        now: OffsetDateTime,
    ) -> Option<Self> {
        let legacy = &config.legacy;
        legacy.implicit.then(|| {
            let ttl = legacy.implicit_access_ttl(config.tokens.access_token_ttl_secs);
            Self {
                access_ttl: i64::try_from(ttl).unwrap_or(i64::MAX),
                ..Self::new(config, keys, now)
            }
        })
    }
}

fn sign_error(e: impl std::fmt::Display) -> OAuthError {
    tracing::error!(error = %e, "signing failed");
    OAuthError::server_error("token signing failed")
}

/// Who and what an access token is for.
pub struct AccessSubject<'a> {
    /// The user id, or the client id for `client_credentials`.
    pub subject: &'a str,
    pub scope: &'a ScopeSet,
    pub auth_time: Option<OffsetDateTime>,
    pub grant_id: Option<&'a str>,
    pub resource: Option<&'a str>,
    /// The user's group names, for the `groups` claim.
    pub groups: Option<&'a [String]>,
    /// RFC 8693 4.1: who acts for the subject (token exchange only).
    pub act: Option<&'a serde_json::Value>,
}

/// A signed access token with a fresh `jti`, for `resource` if given.
pub fn access_token(
    ctx: &TokenContext,
    client: &Client,
    a: AccessSubject<'_>,
) -> Result<String, OAuthError> {
    let jti = uuid::Uuid::new_v4().to_string();
    let audience = claims::access_audience(
        a.resource,
        &client.settings.audiences,
        &ctx.audience,
        a.scope,
    );
    let payload = claims::access_token(AccessTokenInput {
        issuer: &ctx.issuer,
        audience: &audience,
        client_id: &client.client_id,
        subject: a.subject,
        scope: a.scope,
        now: ctx.now,
        ttl_secs: ctx.access_ttl,
        jti: &jti,
        auth_time: a.auth_time,
        grant_id: a.grant_id,
        groups: a.groups,
        act: a.act,
    })
    .map_err(sign_error)?;
    ctx.keys
        .sign(ctx.access_token_alg, "at+jwt", &payload)
        .map_err(sign_error)
}

/// Which refresh token a response carries.
pub enum RefreshIssue {
    /// None (no `offline_access`, or not a user grant).
    None,
    /// A new random token starting `grant`'s family (code exchange).
    New,
    /// The successor of a token just rotated: stored now.
    Successor(OpaqueSecret),
    /// A successor that is already stored (a replay within the grace
    /// window answers with the same one).
    Existing(OpaqueSecret),
}

impl RefreshIssue {
    /// A new family for a user grant of `scope` to `client` when
    /// `offline_access` was granted and the client may refresh, else none.
    pub fn new_if_allowed(client: &Client, scope: &ScopeSet) -> Self {
        let may = client
            .settings
            .grant_types
            .contains(&crate::domain::client::GrantType::RefreshToken);
        if may && scope.contains("offline_access") {
            RefreshIssue::New
        } else {
            RefreshIssue::None
        }
    }
}

/// When a refresh token issued now expires: its own lifetime, but never
/// past the family's absolute lifetime, counted from the grant.
pub fn refresh_expiry(ctx: &TokenContext, grant: &GrantRow) -> OffsetDateTime {
    let own = ctx.now + Duration::seconds(ctx.refresh_ttl);
    let family_end = grant.created_at.assume_utc() + Duration::seconds(ctx.refresh_absolute_ttl);
    own.min(family_end)
}

/// Stores `secret` as a live refresh token in `grant`'s family.
fn store_refresh(
    conn: &mut DbConn,
    ctx: &TokenContext,
    grant: &GrantRow,
    secret: &OpaqueSecret,
) -> Result<(), OAuthError> {
    repo::grants::insert_refresh(
        conn,
        &RefreshRow {
            token_hash: secret.hash(),
            grant_id: grant.id.clone(),
            scope: grant.scope.clone(),
            created_at: to_db(ctx.now),
            expires_at: to_db(refresh_expiry(ctx, grant)),
            rotated_at: None,
        },
    )
    .map_err(storage_error)
}

/// What a user grant's token response is for.
pub struct UserGrant<'a> {
    pub client: &'a Client,
    pub grant: &'a GrantRow,
    pub user: &'a UserRow,
    pub scope: &'a ScopeSet,
    pub nonce: Option<&'a str>,
    pub resource: Option<&'a str>,
    pub refresh: RefreshIssue,
}

/// The user's group names when `scope` releases them (`groups`), else
/// none.
pub fn groups_for(
    conn: &mut DbConn,
    user: &UserRow,
    scope: &ScopeSet,
) -> Result<Vec<String>, OAuthError> {
    if scope.contains("groups") {
        repo::groups::names_for_user(conn, &user.id).map_err(storage_error)
    } else {
        Ok(Vec::new())
    }
}

/// The access token of a user grant (`groups` from [`groups_for`]).
pub fn user_access_token(
    ctx: &TokenContext,
    g: &UserGrant<'_>,
    groups: &[String],
) -> Result<String, OAuthError> {
    access_token(
        ctx,
        g.client,
        AccessSubject {
            subject: &g.user.id,
            scope: g.scope,
            auth_time: Some(g.grant.auth_time.assume_utc()),
            grant_id: Some(&g.grant.id),
            resource: g.resource,
            groups: Some(groups),
            act: None,
        },
    )
}

/// The ID token of a user grant, signed with the client's algorithm (else
/// the default), with `at_hash` when it comes with `access` (OIDC Core
/// 3.1.3.6, 3.2.2.10).
pub fn user_id_token(
    ctx: &TokenContext,
    g: &UserGrant<'_>,
    groups: &[String],
    access: Option<&str>,
) -> Result<String, OAuthError> {
    let id_alg = g.client.settings.id_token_alg.unwrap_or(ctx.id_token_alg);
    let amr = g
        .grant
        .amr
        .as_deref()
        .map(|a| crate::domain::mfa::Amr::parse(Some(a)));
    let payload = claims::id_token(IdTokenInput {
        issuer: &ctx.issuer,
        client_id: &g.grant.client_id,
        user: g.user.claims(),
        scope: g.scope,
        now: ctx.now,
        ttl_secs: ctx.id_ttl,
        auth_time: g.grant.auth_time.assume_utc(),
        nonce: g.nonce,
        sid: g.grant.sid.as_deref(),
        at_hash: access.map(|a| claims::at_hash(a, id_alg)),
        groups,
        amr: amr.as_ref(),
    })
    .map_err(sign_error)?;
    ctx.keys.sign(id_alg, "JWT", &payload).map_err(sign_error)
}

/// The tokens for a user grant: access token, an ID token when `openid`
/// was granted, and the refresh token `refresh` says.
pub fn user_tokens(
    conn: &mut DbConn,
    ctx: &TokenContext,
    g: UserGrant<'_>,
) -> Result<TokenResponse, OAuthError> {
    let groups = groups_for(conn, g.user, g.scope)?;
    let access = user_access_token(ctx, &g, &groups)?;
    let id_token = if g.scope.contains("openid") {
        Some(user_id_token(ctx, &g, &groups, Some(&access))?)
    } else {
        None
    };
    let refresh_token = match g.refresh {
        RefreshIssue::None => None,
        RefreshIssue::New => {
            let secret = OpaqueSecret::generate().map_err(db_error)?;
            store_refresh(conn, ctx, g.grant, &secret)?;
            Some(secret)
        }
        RefreshIssue::Successor(secret) => {
            store_refresh(conn, ctx, g.grant, &secret)?;
            Some(secret)
        }
        RefreshIssue::Existing(secret) => Some(secret),
    }
    .map(|s| s.expose().to_owned());
    Ok(TokenResponse {
        access_token: access,
        token_type: "Bearer",
        expires_in: ctx.access_ttl,
        scope: g.scope.to_string(),
        id_token,
        refresh_token,
        issued_token_type: None,
    })
}

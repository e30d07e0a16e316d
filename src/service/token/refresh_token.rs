//! `grant_type=refresh_token` (RFC 6749 6) with rotation: each use returns
//! a new refresh token; using a rotated one again revokes the family
//! (RFC 9700 4.14.2), unless within the configured grace period.

use time::Duration;

use super::{
    TokenContext, TokenRequest, TokenResponse, TxError, effective_resource, grant_user, in_tx, mint,
};
use crate::clock::{from_db, to_db};
use crate::domain::scope::ScopeSet;
use crate::domain::secret::hash_secret;
use crate::oidc::OAuthError;
use crate::service::clients::Client;
use crate::store::{DbConn, repo};

pub fn exchange(
    conn: &mut DbConn,
    client: &Client,
    req: &TokenRequest,
    ctx: &TokenContext,
) -> Result<TokenResponse, OAuthError> {
    let token = req
        .refresh_token
        .as_deref()
        .ok_or_else(|| OAuthError::invalid_request("refresh_token is required"))?;
    let requested = match req.scope.as_deref() {
        None => None,
        Some(s) => Some(ScopeSet::parse(s).map_err(|e| OAuthError::invalid_scope(e.problem))?),
    };
    let hash = hash_secret(token);
    let bad = || OAuthError::invalid_grant("the refresh token is invalid, expired or revoked");
    in_tx(conn, |conn| {
        let Some((row, grant)) = repo::grants::refresh(conn, &hash)? else {
            return Err(bad().into());
        };
        if grant.client_id != client.client_id || grant.revoked_at.is_some() {
            return Err(bad().into());
        }
        let now = to_db(ctx.now);
        if row.expires_at <= now {
            return Err(bad().into());
        }
        let within_grace = |rotated: time::PrimitiveDateTime| {
            ctx.refresh_grace > 0
                && ctx.now - from_db(rotated) <= Duration::seconds(ctx.refresh_grace)
        };
        let reused = match row.rotated_at {
            Some(rotated) => !within_grace(rotated),
            None => repo::grants::rotate_refresh(conn, &hash, now)? == 0,
        };
        if reused {
            repo::grants::revoke_grant(conn, &grant.id, now)?;
            tracing::warn!(client_id = %client.client_id, grant_id = %grant.id, "refresh token reused; family revoked");
            return Ok(Err(bad()));
        }
        let granted = ScopeSet::parse(&row.scope)
            .map_err(|e| TxError::OAuth(OAuthError::server_error(e.to_string())))?;
        let scope = match &requested {
            Some(r) if !r.is_subset(&granted) => {
                return Err(OAuthError::invalid_scope("scope may narrow, never widen").into());
            }
            Some(r) if !r.is_empty() => r.clone(),
            _ => granted,
        };
        let user = grant_user(conn, &grant)?;
        // The user may have lost a group (or admin rights) since: a
        // refresh never carries more than they have now.
        let scope = crate::service::scopes::permitted_for_user(conn, &user, &scope)
            .map_err(|e| TxError::OAuth(OAuthError::from(e)))?;
        let resource =
            effective_resource(client, req.resource.as_deref(), grant.resource.as_deref())?;
        let tokens = mint::user_tokens(
            conn,
            ctx,
            mint::UserGrant {
                client,
                grant: &grant,
                user: &user,
                scope: &scope,
                nonce: None,
                resource,
                with_refresh: true,
            },
        )?;
        Ok(Ok(tokens))
    })
}

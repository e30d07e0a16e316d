//! `grant_type=refresh_token` (RFC 6749 6) with rotation (RFC 9700
//! 4.14.2): each use returns a successor and retires the token used.
//!
//! - **One at a time per family.** The transaction starts by locking the
//!   family ([`repo::grants::lock_family`]): on SQLite that first statement
//!   is a write, so concurrent refreshes wait for the write lock instead
//!   of failing; on PostgreSQL it locks the grant row, so rotations,
//!   replays and revocations of one family never deadlock.
//! - **Reuse revokes the family**: a rotated token used again ends the
//!   grant and every token in it.
//! - **Replays inside `tokens.refresh_reuse_grace_secs`** (a client that
//!   retried, or sent the same token twice at once) get fresh access and ID
//!   tokens and the *same* successor as the first use: the successor is an
//!   HMAC of the token under a key derived from the KEK, so it can be
//!   recomputed from the token alone and is never stored in the clear. A
//!   family therefore never holds more than one live refresh token. Once
//!   the successor has itself been used, a replay of its parent is reuse.
//! - **Never more than the client and user may have now**: the scope is
//!   narrowed to the client's current registration and the user's current
//!   groups on every refresh.
//! - **An absolute lifetime** (`tokens.refresh_absolute_ttl_secs`, from the
//!   sign-in): no successor outlives it, and past it the family ends.

use time::Duration;

use super::mint::RefreshIssue;
use super::{
    TokenContext, TokenRequest, TokenResponse, TxError, effective_resource, grant_user, in_tx, mint,
};
use crate::clock::{from_db, to_db};
use crate::domain::mfa::Amr;
use crate::domain::scope::ScopeSet;
use crate::domain::secret::{OpaqueSecret, hash_secret};
use crate::oidc::{ErrorCode, OAuthError};
use crate::service::clients::Client;
use crate::store::{DbConn, repo};

fn bad() -> OAuthError {
    OAuthError::invalid_grant("the refresh token is invalid, expired or revoked")
}

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
    let mut reused = false;
    let result = in_tx(conn, |conn| {
        // Claim first: nothing is read before the family is locked.
        if repo::grants::lock_family(conn, &hash)? == 0 {
            return Err(bad().into());
        }
        let Some((row, grant)) = repo::grants::refresh(conn, &hash)? else {
            return Err(bad().into());
        };
        if grant.client_id != client.client_id || grant.revoked_at.is_some() {
            return Err(bad().into());
        }
        // A client that requires a second factor keeps requiring it: a
        // grant from a sign-in without one (made before it was required)
        // is not refreshed.
        if client.settings.require_mfa && !Amr::parse(grant.amr.as_deref()).is_mfa() {
            return Err(OAuthError::invalid_grant(
                "this client requires a second factor: sign in again with it",
            )
            .into());
        }
        let now = to_db(ctx.now);
        let family_end =
            grant.created_at.assume_utc() + Duration::seconds(ctx.refresh_absolute_ttl);
        if family_end <= ctx.now {
            repo::grants::revoke_grant(conn, &grant.id, now)?;
            return Ok(Err(OAuthError::invalid_grant(
                "the sign-in behind this refresh token has expired; sign in again",
            )));
        }
        if row.expires_at <= now {
            return Err(bad().into());
        }
        let successor = OpaqueSecret::derived(&ctx.refresh_successor_key, token);
        let within_grace = |rotated: time::PrimitiveDateTime| {
            ctx.refresh_grace > 0
                && ctx.now - from_db(rotated) <= Duration::seconds(ctx.refresh_grace)
        };
        let refresh = match row.rotated_at {
            None => {
                repo::grants::rotate_refresh(conn, &hash, now)?;
                RefreshIssue::Successor(successor)
            }
            Some(rotated)
                if within_grace(rotated)
                    && repo::grants::live_refresh_exists(conn, &successor.hash())? =>
            {
                RefreshIssue::Existing(successor)
            }
            Some(_) => {
                repo::grants::revoke_grant(conn, &grant.id, now)?;
                tracing::warn!(client_id = %client.client_id, grant_id = %grant.id, "refresh token reused; family revoked");
                reused = true;
                return Ok(Err(bad()));
            }
        };
        let granted = ScopeSet::parse(&row.scope)
            .map_err(|e| TxError::OAuth(OAuthError::server_error(e.to_string())))?;
        let scope = match &requested {
            Some(r) if !r.is_subset(&granted) => {
                return Err(OAuthError::invalid_scope("scope may narrow, never widen").into());
            }
            Some(r) if !r.is_empty() => r.clone(),
            _ => granted,
        };
        // The client's registration or the user's groups may have changed
        // since: a refresh never carries more than both allow now.
        let scope = scope.intersection(&client.settings.allowed_scopes);
        let user = grant_user(conn, &grant)?;
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
                refresh,
            },
        )?;
        Ok(Ok(tokens))
    });
    // Counted once the revocation committed (`in_tx` passed its answer on).
    if reused
        && result
            .as_ref()
            .is_err_and(|e| e.error == ErrorCode::InvalidGrant)
    {
        ctx.metrics.refresh_token_reuse();
    }
    result
}

//! `grant_type=authorization_code` (RFC 6749 4.1.3, RFC 7636 4.6, OIDC Core
//! 3.1.3). Codes are single use: a second use fails and revokes everything
//! the first one issued (RFC 9700 4.5).

use super::{
    TokenContext, TokenRequest, TokenResponse, TxError, effective_resource, grant_user, in_tx, mint,
};
use crate::clock::to_db;
use crate::domain::scope::ScopeSet;
use crate::domain::secret::hash_secret;
use crate::oidc::{OAuthError, pkce};
use crate::service::clients::Client;
use crate::store::{DbConn, repo};

pub fn exchange(
    conn: &mut DbConn,
    client: &Client,
    req: &TokenRequest,
    ctx: &TokenContext,
) -> Result<TokenResponse, OAuthError> {
    let code = req
        .code
        .as_deref()
        .ok_or_else(|| OAuthError::invalid_request("code is required"))?;
    let redirect_uri = req
        .redirect_uri
        .as_deref()
        .ok_or_else(|| OAuthError::invalid_request("redirect_uri is required"))?;
    let code_hash = hash_secret(code);
    let bad = || OAuthError::invalid_grant("the code is invalid, expired or already used");
    in_tx(conn, |conn| {
        let now = to_db(ctx.now);
        // Claim the code first: the write takes the lock up front (SQLite
        // would otherwise fail to upgrade a read under concurrency), and two
        // concurrent redemptions cannot both win. Errors below roll it back.
        let claimed = repo::grants::use_code(conn, &code_hash, now)? == 1;
        let Some((row, grant)) = repo::grants::code(conn, &code_hash)? else {
            return Err(bad().into());
        };
        if grant.client_id != client.client_id {
            return Err(bad().into());
        }
        if !claimed {
            // Replay: whoever holds this code must not keep what it bought.
            repo::grants::revoke_grant(conn, &grant.id, now)?;
            tracing::warn!(client_id = %client.client_id, grant_id = %grant.id, "authorization code replayed; grant revoked");
            return Ok(Err(bad()));
        }
        if row.expires_at <= now || grant.revoked_at.is_some() {
            return Err(bad().into());
        }
        if row.redirect_uri != redirect_uri {
            return Err(OAuthError::invalid_grant(
                "redirect_uri does not match the authorization request",
            )
            .into());
        }
        match (row.code_challenge.as_deref(), req.code_verifier.as_deref()) {
            (Some(challenge), Some(verifier)) if pkce::verify_s256(verifier, challenge) => {}
            (Some(_), _) => {
                return Err(OAuthError::invalid_grant("PKCE verification failed").into());
            }
            (None, Some(_)) => {
                return Err(OAuthError::invalid_grant(
                    "code_verifier sent, but no code_challenge was",
                )
                .into());
            }
            (None, None) => {}
        }
        let user = grant_user(conn, &grant)?;
        let scope = ScopeSet::parse(&grant.scope)
            .map_err(|e| TxError::OAuth(OAuthError::server_error(e.to_string())))?;
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
                nonce: row.nonce.as_deref(),
                resource,
                refresh: mint::RefreshIssue::new_if_allowed(client, &scope),
            },
        )?;
        Ok(Ok(tokens))
    })
}

//! `grant_type=urn:ietf:params:oauth:grant-type:device_code` (RFC 8628
//! 3.4, 3.5): a device polls until the person answers at `/device`.
//!
//! Cheap by construction, since devices poll every few seconds: at most
//! two statements, and no transaction.
//!
//! 1. One read: the request, with its grant and user once approved.
//! 2. One conditional write, whose row count decides:
//!    - pending: record the poll, only if no other poll was recorded since
//!      the one read (else `slow_down`); a poll before the interval is up
//!      answers `slow_down` and adds 5 s to that code's interval (3.5);
//!    - approved: claim the redemption (`redeemed_at` set only if unset),
//!      so of two concurrent polls exactly one gets tokens and the other
//!      `invalid_grant`, as does any later one.
//!
//! Being single statements, the writes take SQLite's write lock at once
//! (no read lock to upgrade) and need no rollback. The refresh token that
//! goes with `offline_access` was stored when the person approved: it is
//! an HMAC of the device code (under the key that derives refresh
//! successors), so only the holder of the device code can learn it, and
//! redeeming writes nothing else. Minting then only signs (and reads the
//! user's groups when `groups` was granted).

use time::Duration;

use super::mint::{self, RefreshIssue};
use super::{TokenContext, TokenRequest, TokenResponse, effective_resource, storage_error};
use crate::clock::{from_db, to_db};
use crate::domain::client::GrantType;
use crate::domain::scope::ScopeSet;
use crate::domain::secret::{OpaqueSecret, hash_secret};
use crate::oidc::OAuthError;
use crate::service::clients::Client;
use crate::store::DbConn;
use crate::store::models::DeviceCodeRow;
use crate::store::repo::device_codes::{self, SLOW_DOWN_STEP_SECS};

/// The refresh token a device code's grant hands out with
/// `offline_access`: derivable only from the device code itself.
pub fn refresh_token_for(key: &[u8; 32], device_code: &str) -> OpaqueSecret {
    // The prefix keeps these apart from refresh successors (whose input is
    // a refresh token: base64url, never a colon).
    OpaqueSecret::derived(key, &format!("device_code:{device_code}"))
}

fn bad() -> OAuthError {
    OAuthError::invalid_grant("the device code is invalid or was already used")
}

pub fn exchange(
    conn: &mut DbConn,
    client: &Client,
    req: &TokenRequest,
    ctx: &TokenContext,
) -> Result<TokenResponse, OAuthError> {
    let code = req
        .device_code
        .as_deref()
        .ok_or_else(|| OAuthError::invalid_request("device_code is required"))?;
    let hash = hash_secret(code);
    let Some((row, grant, user)) = device_codes::poll_view(conn, &hash).map_err(storage_error)?
    else {
        return Err(bad());
    };
    // Another client's code reads as unknown, and changes nothing.
    if row.client_id != client.client_id || row.redeemed_at.is_some() {
        return Err(bad());
    }
    if from_db(row.expires_at) <= ctx.now {
        return Err(OAuthError::expired_token(
            "the device code has expired; start again",
        ));
    }
    if row.denied_at.is_some() {
        return Err(OAuthError::access_denied("the user denied access"));
    }
    let (Some(grant), Some(user)) = (grant, user) else {
        return Err(pending(conn, &row, ctx));
    };
    if grant.revoked_at.is_some() {
        return Err(OAuthError::access_denied(
            "the user revoked this access before the device collected it",
        ));
    }
    if user.disabled {
        return Err(OAuthError::invalid_grant("the user is no longer active"));
    }
    if device_codes::redeem(conn, &hash, to_db(ctx.now)).map_err(storage_error)? != 1 {
        tracing::warn!(client_id = %client.client_id, grant_id = %grant.id, "device code redeemed twice; refused");
        return Err(bad());
    }
    let scope = ScopeSet::parse(&grant.scope).map_err(|e| OAuthError::server_error(e.problem))?;
    // Stored at approval whenever offline_access was granted; handed out
    // while the client may use refresh tokens.
    let refresh = if scope.contains("offline_access")
        && client
            .settings
            .grant_types
            .contains(&GrantType::RefreshToken)
    {
        RefreshIssue::Existing(refresh_token_for(&ctx.refresh_successor_key, code))
    } else {
        RefreshIssue::None
    };
    let resource = effective_resource(client, req.resource.as_deref(), grant.resource.as_deref())?;
    mint::user_tokens(
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
    )
}

/// The answer to a poll of a request nobody answered yet:
/// `authorization_pending`, or `slow_down` when it came too early (the
/// interval grows) or at the same moment as another poll.
fn pending(conn: &mut DbConn, row: &DeviceCodeRow, ctx: &TokenContext) -> OAuthError {
    let now = to_db(ctx.now);
    let interval = Duration::seconds(i64::from(row.interval_secs));
    let too_early = row
        .last_polled_at
        .is_some_and(|at| ctx.now < from_db(at) + interval);
    let written = if too_early {
        device_codes::slow_down(conn, &row.device_code_hash, now)
    } else {
        device_codes::record_poll(conn, &row.device_code_hash, row.last_polled_at, now)
    };
    match written {
        Err(e) => storage_error(e),
        Ok(_) if too_early => OAuthError::slow_down(format!(
            "polled too soon: wait {} seconds between polls",
            row.interval_secs.saturating_add(SLOW_DOWN_STEP_SECS)
        )),
        Ok(0) => OAuthError::slow_down(format!(
            "another poll of this device code came in at the same time: wait {} seconds",
            row.interval_secs
        )),
        Ok(_) => OAuthError::authorization_pending("the user has not answered yet"),
    }
}

#[cfg(test)]
mod tests {
    use super::refresh_token_for;
    use crate::domain::secret::OpaqueSecret;

    #[test]
    fn the_refresh_token_depends_on_the_key_and_the_code_and_is_no_successor() {
        let (k1, k2) = ([1u8; 32], [2u8; 32]);
        let a = refresh_token_for(&k1, "code-a");
        assert_eq!(a, refresh_token_for(&k1, "code-a"));
        assert_ne!(a, refresh_token_for(&k1, "code-b"));
        assert_ne!(a, refresh_token_for(&k2, "code-a"));
        assert_ne!(a, OpaqueSecret::derived(&k1, "code-a"));
    }
}

//! `grant_type=client_credentials` (RFC 6749 4.4): a confidential client
//! acting for itself. No user, so no ID token and no refresh token, and
//! nothing is written: this path is pure CPU (the client and the scope
//! registry are cached).
//!
//! Scopes: requested ∩ the client's allowed scopes ∩ what a machine client
//! may hold (`ScopeRegistry::machine_may_hold`: custom scopes an admin
//! marked machine-grantable, never a group-restricted one for a
//! dynamically registered client; `latchkey:admin` for admin-created
//! clients). As for scopes outside the allowed set, an explicitly
//! requested scope the client may not hold is `invalid_scope`; with no
//! `scope` parameter the default is the allowed scopes it may hold,
//! narrowed silently (RFC 6749 3.3; the response's `scope` says which).

use super::{TokenContext, TokenRequest, TokenResponse, mint};
use crate::domain::scope::{STANDARD_SCOPES, ScopeRegistry, ScopeSet};
use crate::oidc::OAuthError;
use crate::service::clients::Client;

pub fn issue(
    client: &Client,
    req: &TokenRequest,
    ctx: &TokenContext,
    registry: &ScopeRegistry,
) -> Result<TokenResponse, OAuthError> {
    let allowed = &client.settings.allowed_scopes;
    let registered = client.registration_token_hash.is_some();
    let scope = match req.scope.as_deref() {
        Some(raw) => {
            let s = ScopeSet::parse(raw).map_err(|e| OAuthError::invalid_scope(e.problem))?;
            if let Some(user_scope) = s.iter().find(|x| STANDARD_SCOPES.contains(x)) {
                return Err(OAuthError::invalid_scope(format!(
                    "{user_scope} needs a user; not available with client_credentials"
                )));
            }
            if !s.is_subset(allowed) {
                return Err(OAuthError::invalid_scope(
                    "a requested scope is not allowed for this client",
                ));
            }
            if let Some(refused) = registry.first_refused(&s, registered) {
                return Err(OAuthError::invalid_scope(format!(
                    "{refused} is not grantable to a client acting for itself"
                )));
            }
            s
        }
        None => registry.machine_subset(allowed, registered),
    };
    let resource = super::effective_resource(client, req.resource.as_deref(), None)?;
    let access = mint::access_token(
        ctx,
        client,
        mint::AccessSubject {
            subject: &client.client_id,
            scope: &scope,
            auth_time: None,
            grant_id: None,
            resource,
            groups: None,
            act: None,
        },
    )?;
    Ok(TokenResponse {
        access_token: access,
        token_type: "Bearer",
        expires_in: ctx.access_ttl,
        scope: scope.to_string(),
        id_token: None,
        refresh_token: None,
        issued_token_type: None,
    })
}

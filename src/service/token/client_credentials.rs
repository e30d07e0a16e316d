//! `grant_type=client_credentials` (RFC 6749 4.4): a confidential client
//! acting for itself. No user, so no ID token and no refresh token, and
//! nothing is written: this path is pure CPU (lookup is cached).

use super::{TokenContext, TokenRequest, TokenResponse, mint};
use crate::domain::scope::{STANDARD_SCOPES, ScopeSet};
use crate::oidc::OAuthError;
use crate::service::clients::Client;

pub fn issue(
    client: &Client,
    req: &TokenRequest,
    ctx: &TokenContext,
) -> Result<TokenResponse, OAuthError> {
    let allowed = &client.settings.allowed_scopes;
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
            s
        }
        None => ScopeSet::from_items(allowed.iter().filter(|s| !STANDARD_SCOPES.contains(s)))
            .map_err(|e| OAuthError::server_error(e.problem))?,
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
        },
    )?;
    Ok(TokenResponse {
        access_token: access,
        token_type: "Bearer",
        expires_in: ctx.access_ttl,
        scope: scope.to_string(),
        id_token: None,
        refresh_token: None,
    })
}

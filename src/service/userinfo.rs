//! The userinfo use case (OIDC Core 5.3): the claims the granted scopes
//! release, for the bearer of a valid, unrevoked access token meant for
//! this server, about a user who is still active.

use serde_json::{Map, Value};

use crate::oidc::OAuthError;
use crate::oidc::claims::user_claims;
use crate::service::access;
use crate::service::token::TokenContext;
use crate::store::{Db, StoreError, repo};

/// The scope userinfo requires (named in the `insufficient_scope` challenge).
pub const REQUIRED_SCOPE: &str = "openid";

pub async fn userinfo(
    db: &Db,
    token: &str,
    ctx: TokenContext,
) -> Result<Map<String, Value>, OAuthError> {
    let claims = access::verify(&ctx.keys, token, &ctx.issuer, ctx.now)?;
    if !claims.is_for_this_server(&ctx.audience, &ctx.issuer) {
        return Err(OAuthError::invalid_token(
            "the token is not for this audience",
        ));
    }
    if !claims.scope.contains(REQUIRED_SCOPE) {
        return Err(OAuthError::insufficient_scope(
            "the openid scope is required",
        ));
    }
    let c = claims.clone();
    let found = db
        .run(move |conn| {
            if access::is_revoked(conn, &c)? {
                return Ok(None);
            }
            let Some(user) = repo::users::by_id(conn, &c.sub)?.filter(|u| !u.disabled) else {
                return Ok(None);
            };
            let groups = if c.scope.contains("groups") {
                repo::groups::names_for_user(conn, &user.id)?
            } else {
                Vec::new()
            };
            Ok::<_, StoreError>(Some((user, groups)))
        })
        .await?;
    match found {
        Some((user, groups)) => Ok(user_claims(&user.claims(), &claims.scope, &groups)),
        None => Err(OAuthError::invalid_token("the access token was revoked")),
    }
}

//! Token introspection (RFC 7662) and revocation (RFC 7009) for an
//! authenticated client. Revocation touches only the client's own tokens
//! (a foreign one is a no-op, RFC 7009 2.2). Introspection also answers a
//! resource server about access tokens meant for it (`aud` names its
//! client id or an audience it serves); any other token reads inactive
//! (RFC 7662 2.2), so a client learns nothing about tokens not for it.
//!
//! Personal access tokens (`lkp_…`) belong to a user, not to a client:
//! any resource server (a confidential client serving at least one
//! audience) may read one, every other client reads it inactive, and no
//! client can revoke one here (RFC 7009 2.2 lets the answer be a no-op);
//! its owner or an admin revokes it.

use serde_json::{Value, json};

use crate::clock::{from_db, to_db};
use crate::domain::pat::looks_like as is_personal_access_token;
use crate::domain::secret::hash_secret;
use crate::oidc::OAuthError;
use crate::service::clients::Client;
use crate::service::token::{ClientCache, PresentedClient, TokenContext, authenticate_client};
use crate::service::{access, pat};
use crate::store::{Db, StoreError, repo};

/// Longest token accepted at these endpoints.
const TOKEN_MAX: usize = 8192;

fn required(token: Option<String>) -> Result<String, OAuthError> {
    token
        .filter(|t| !t.is_empty() && t.len() <= TOKEN_MAX)
        .ok_or_else(|| OAuthError::invalid_request("token is required"))
}

fn looks_like_jwt(t: &str) -> bool {
    t.bytes().filter(|b| *b == b'.').count() == 2
}

fn inactive() -> Value {
    json!({ "active": false })
}

/// `POST /introspect`: the RFC 7662 2.2 answer for `token`: the calling
/// (confidential) client's own access or refresh token, or an access token
/// whose audience is the caller as a resource server.
pub async fn introspect(
    db: &Db,
    clients: &ClientCache,
    presented: PresentedClient,
    token: Option<String>,
    ctx: TokenContext,
) -> Result<Value, OAuthError> {
    let client = authenticate_client(db, clients, &presented).await?;
    let token = required(token)?;
    if client.secret_hash.is_none() {
        return Err(OAuthError::invalid_client(
            "introspection needs a confidential client",
        ));
    }
    if is_personal_access_token(&token) {
        return introspect_pat(db, &client, token, ctx).await;
    }
    if looks_like_jwt(&token) {
        let Ok(claims) = access::verify(&ctx.keys, &token, &ctx.issuer, ctx.now) else {
            return Ok(inactive());
        };
        if !claims.readable_by(&client) {
            return Ok(inactive());
        }
        let c = claims.clone();
        let revoked = db
            .run(move |conn| Ok::<_, StoreError>(access::is_revoked(conn, &c)?))
            .await?;
        if revoked {
            return Ok(inactive());
        }
        let mut body = json!({
            "active": true,
            "scope": claims.scope.to_string(),
            "client_id": claims.client_id,
            "sub": claims.sub,
            "aud": claims.aud,
            "iss": ctx.issuer,
            "exp": claims.exp,
            "iat": claims.iat,
            "jti": claims.jti,
            "token_type": "Bearer",
        });
        if let Some(t) = claims.auth_time {
            body["auth_time"] = json!(t);
        }
        return Ok(body);
    }
    let hash = hash_secret(&token);
    let found = db
        .run(move |conn| Ok::<_, StoreError>(repo::grants::refresh(conn, &hash)?))
        .await?;
    Ok(match found {
        Some((row, grant))
            if grant.client_id == client.client_id
                && grant.revoked_at.is_none()
                && row.rotated_at.is_none()
                && row.expires_at > to_db(ctx.now) =>
        {
            json!({
                "active": true,
                "scope": row.scope,
                "client_id": grant.client_id,
                "sub": grant.user_id,
                "iss": ctx.issuer,
                "exp": from_db(row.expires_at).unix_timestamp(),
                "iat": from_db(row.created_at).unix_timestamp(),
                "token_type": "refresh_token",
            })
        }
        _ => inactive(),
    })
}

/// A personal access token, for a resource server only: who it speaks
/// for and with which scopes now (see [`pat::resolve`]). There is no
/// `client_id`: no client was issued it.
async fn introspect_pat(
    db: &Db,
    client: &Client,
    token: String,
    ctx: TokenContext,
) -> Result<Value, OAuthError> {
    if client.settings.resource_audiences.is_empty() {
        return Ok(inactive());
    }
    let (config, now) = (ctx.pat.clone(), ctx.now);
    let found = db
        .run(move |conn| pat::resolve(conn, &config, &token, now))
        .await?;
    Ok(match found {
        Some(p) => json!({
            "active": true,
            "scope": p.scope.to_string(),
            "sub": p.user_id,
            "iss": ctx.issuer,
            "exp": p.expires_at.unix_timestamp(),
            "iat": p.issued_at.unix_timestamp(),
            "token_type": "Bearer",
        }),
        None => inactive(),
    })
}

/// `POST /revoke`: ends the client's own refresh token (its whole grant)
/// or access token (by `jti`). Unknown or foreign tokens succeed too, and
/// so do personal access tokens, which no client may revoke.
pub async fn revoke(
    db: &Db,
    clients: &ClientCache,
    presented: PresentedClient,
    token: Option<String>,
    ctx: TokenContext,
) -> Result<(), OAuthError> {
    let client = authenticate_client(db, clients, &presented).await?;
    let token = required(token)?;
    if is_personal_access_token(&token) {
        return Ok(());
    }
    let client_id = client.client_id.clone();
    let now = ctx.now;
    if looks_like_jwt(&token) {
        return match access::verify(&ctx.keys, &token, &ctx.issuer, now) {
            Ok(claims) if claims.client_id == client_id => {
                let exp = time::OffsetDateTime::from_unix_timestamp(claims.exp).unwrap_or(now);
                db.run(move |conn| {
                    Ok::<_, StoreError>(repo::revocations::revoke(conn, &claims.jti, to_db(exp))?)
                })
                .await
                .map_err(OAuthError::from)
            }
            _ => Ok(()),
        };
    }
    let hash = hash_secret(&token);
    db.run(move |conn| {
        if let Some((_, grant)) = repo::grants::refresh(conn, &hash)?
            && grant.client_id == client_id
        {
            repo::grants::revoke_grant(conn, &grant.id, to_db(now))?;
        }
        Ok::<_, StoreError>(())
    })
    .await
    .map_err(OAuthError::from)
}

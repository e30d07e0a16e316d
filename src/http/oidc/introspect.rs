//! `POST /introspect` (RFC 7662) and `POST /revoke` (RFC 7009).

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;
use serde_json::json;

use super::client_auth;
use super::response::{no_store_json, oauth_error};
use crate::app::AppState;
use crate::clock::{from_db, to_db};
use crate::oidc::OAuthError;
use crate::service::access;
use crate::store::repo;
use crate::token::opaque::hash_secret;

#[derive(Deserialize)]
pub struct TokenParam {
    token: Option<String>,
    #[allow(dead_code)]
    token_type_hint: Option<String>,
    client_id: Option<String>,
    client_secret: Option<String>,
}

async fn authenticate(
    req: &HttpRequest,
    state: &AppState,
    body: &[u8],
) -> Result<(std::sync::Arc<crate::service::clients::Client>, String), OAuthError> {
    let p: TokenParam = super::token::parse_body(req, body, false)?;
    let presented =
        client_auth::presented(req, p.client_id.as_deref(), p.client_secret.as_deref())?;
    let client = client_auth::authenticated(state, &presented).await?;
    let token = p
        .token
        .filter(|t| !t.is_empty() && t.len() <= 8192)
        .ok_or_else(|| OAuthError::invalid_request("token is required"))?;
    Ok((client, token))
}

fn looks_like_jwt(t: &str) -> bool {
    t.bytes().filter(|b| *b == b'.').count() == 2
}

pub async fn introspect(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: web::Bytes,
) -> HttpResponse {
    let (client, token) = match authenticate(&req, &state, &body).await {
        Ok(v) => v,
        Err(e) => return oauth_error(&e),
    };
    if client.secret_hash.is_none() {
        return oauth_error(&OAuthError::invalid_client(
            "introspection needs a confidential client",
        ));
    }
    let inactive = || no_store_json(StatusCode::OK, &json!({ "active": false }));
    let now = state.clock.now();
    let issuer = state.config.issuer.clone();
    if looks_like_jwt(&token) {
        let Ok(claims) = access::verify(&state.keys.current(), &token, &issuer, now) else {
            return inactive();
        };
        if claims.client_id != client.client_id {
            return inactive();
        }
        let c = claims.clone();
        match state
            .db
            .run(move |conn| Ok::<_, crate::store::StoreError>(access::is_revoked(conn, &c)?))
            .await
        {
            Ok(false) => {}
            Ok(true) => return inactive(),
            Err(e) => return oauth_error(&OAuthError::from(e)),
        }
        let mut body = json!({
            "active": true,
            "scope": claims.scope.to_string(),
            "client_id": claims.client_id,
            "sub": claims.sub,
            "aud": claims.aud,
            "iss": issuer,
            "exp": claims.exp,
            "iat": claims.iat,
            "jti": claims.jti,
            "token_type": "Bearer",
        });
        if let Some(t) = claims.auth_time {
            body["auth_time"] = json!(t);
        }
        return no_store_json(StatusCode::OK, &body);
    }
    let hash = hash_secret(&token);
    let found = state
        .db
        .run(move |conn| Ok::<_, crate::store::StoreError>(repo::grants::refresh(conn, &hash)?))
        .await;
    match found {
        Ok(Some((row, grant)))
            if grant.client_id == client.client_id
                && grant.revoked_at.is_none()
                && row.rotated_at.is_none()
                && row.expires_at > to_db(now) =>
        {
            no_store_json(
                StatusCode::OK,
                &json!({
                    "active": true,
                    "scope": row.scope,
                    "client_id": grant.client_id,
                    "sub": grant.user_id,
                    "iss": issuer,
                    "exp": from_db(row.expires_at).unix_timestamp(),
                    "iat": from_db(row.created_at).unix_timestamp(),
                    "token_type": "refresh_token",
                }),
            )
        }
        Ok(_) => inactive(),
        Err(e) => oauth_error(&OAuthError::from(e)),
    }
}

/// Revokes the client's own refresh token (its whole grant) or access
/// token (by jti). Unknown or foreign tokens still get 200 (RFC 7009 2.2).
pub async fn revoke(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: web::Bytes,
) -> HttpResponse {
    let (client, token) = match authenticate(&req, &state, &body).await {
        Ok(v) => v,
        Err(e) => return oauth_error(&e),
    };
    let now = state.clock.now();
    let client_id = client.client_id.clone();
    let result = if looks_like_jwt(&token) {
        match access::verify(&state.keys.current(), &token, &state.config.issuer, now) {
            Ok(claims) if claims.client_id == client_id => {
                let exp = time::OffsetDateTime::from_unix_timestamp(claims.exp).unwrap_or(now);
                state
                    .db
                    .run(move |conn| {
                        Ok::<_, crate::store::StoreError>(repo::revocations::revoke(
                            conn,
                            &claims.jti,
                            to_db(exp),
                        )?)
                    })
                    .await
            }
            _ => Ok(()),
        }
    } else {
        let hash = hash_secret(&token);
        state
            .db
            .run(move |conn| {
                if let Some((_, grant)) = repo::grants::refresh(conn, &hash)?
                    && grant.client_id == client_id
                {
                    repo::grants::revoke_grant(conn, &grant.id, to_db(now))?;
                }
                Ok::<_, crate::store::StoreError>(())
            })
            .await
    };
    match result {
        Ok(()) => HttpResponse::Ok()
            .insert_header((actix_web::http::header::CACHE_CONTROL, "no-store"))
            .finish(),
        Err(e) => oauth_error(&OAuthError::from(e)),
    }
}

//! The token-exchange grant (RFC 8693): a confidential client presents a
//! user's Latchkey access token and receives a new JWT access token for
//! the same user, for itself (`client_id`), naming itself as the actor
//! (`act`), with at most the subject token's scope, for an audience it is
//! registered for. No refresh token, no ID token, nothing written.
//!
//! Which subject tokens a client may exchange, by the introspection rules:
//! - a JWT access token that was issued to it or is meant for an audience
//!   it serves as a resource server (`AccessClaims::readable_by`), still
//!   valid, not revoked, for a user who is still active;
//! - a personal access token (`lkp_…`), if the client is a resource
//!   server (serves at least one audience), as `service::pat::resolve`
//!   finds it now: unexpired, unrevoked, its user active and still allowed
//!   tokens, with the scopes the user may still hold. So a service that
//!   verifies only JWTs offline can still serve a script's requests.

use serde_json::{Map, Value};
use time::OffsetDateTime;

use super::mint::{self, AccessSubject};
use super::{Client, TokenContext, TokenRequest, TokenResponse, effective_resource, storage_error};
use crate::domain::mfa::Amr;
use crate::domain::scope::ScopeSet;
use crate::oidc::OAuthError;
use crate::oidc::token_exchange::{
    ACCESS_TOKEN_TYPE, ExchangeParams, ExchangeRequest, FROM_PERSONAL_TOKEN_TTL_SECS, SubjectType,
    act_claim, lifetime, narrowed_scope, validate,
};
use crate::service::access;
use crate::store::models::UserRow;
use crate::store::{DbConn, repo};

/// Who and what the subject token stands for.
struct Subject {
    user: UserRow,
    scope: ScopeSet,
    expires_at: i64,
    auth_time: Option<OffsetDateTime>,
    /// The grant it came from: revoking that grant revokes the new token
    /// too at introspection and userinfo.
    grant_id: Option<String>,
    /// An actor the subject token already named.
    prior_act: Option<Map<String, Value>>,
    /// A personal access token: the new token's life is capped.
    from_personal_token: bool,
}

fn refused(why: &str) -> OAuthError {
    OAuthError::invalid_request(format!("the subject token cannot be exchanged: {why}"))
}

/// For a client that requires a second factor: the subject token must come
/// from a sign-in with one (its grant's `amr`). A personal access token
/// never does.
fn second_factor_behind(conn: &mut DbConn, subject: &Subject) -> Result<(), OAuthError> {
    if subject.from_personal_token {
        return Err(refused(
            "this client requires a second factor, which a personal access token does not carry",
        ));
    }
    let grant = match subject.grant_id.as_deref() {
        Some(id) => repo::grants::grant(conn, id).map_err(storage_error)?,
        None => None,
    };
    if grant.is_some_and(|g| Amr::parse(g.amr.as_deref()).is_mfa()) {
        return Ok(());
    }
    Err(refused(
        "this client requires a second factor, and the sign-in behind it had none",
    ))
}

/// Runs the grant for an authenticated client allowed it.
pub fn exchange(
    conn: &mut DbConn,
    client: &Client,
    req: &TokenRequest,
    ctx: &TokenContext,
) -> Result<TokenResponse, OAuthError> {
    let r = validate(&ExchangeParams {
        subject_token: req.subject_token.as_deref(),
        subject_token_type: req.subject_token_type.as_deref(),
        actor_token: req.actor_token.as_deref(),
        actor_token_type: req.actor_token_type.as_deref(),
        requested_token_type: req.requested_token_type.as_deref(),
        resource: req.resource.as_deref(),
        audience: req.audience.as_deref(),
    })?;
    let requested = req
        .scope
        .as_deref()
        .map(ScopeSet::parse)
        .transpose()
        .map_err(|e| OAuthError::invalid_scope(e.problem))?;
    let resource = effective_resource(client, r.target, None)?;
    let subject = if crate::domain::pat::looks_like(r.subject_token) {
        pat_subject(conn, client, &r, ctx)?
    } else {
        jwt_subject(conn, client, &r, ctx)?
    };
    if client.settings.require_mfa {
        second_factor_behind(conn, &subject)?;
    }
    let user_may_hold =
        crate::service::scopes::permitted_for_user(conn, &subject.user, &subject.scope)?;
    let scope = narrowed_scope(
        requested.as_ref(),
        &subject.scope,
        &client.settings.allowed_scopes,
        &user_may_hold,
    )?;
    let mut ttl = lifetime(ctx.access_ttl, ctx.now.unix_timestamp(), subject.expires_at);
    if subject.from_personal_token {
        ttl = ttl.min(FROM_PERSONAL_TOKEN_TTL_SECS);
    }
    if ttl == 0 {
        return Err(refused("it has expired"));
    }
    let groups = if scope.contains("groups") {
        repo::groups::names_for_user(conn, &subject.user.id).map_err(storage_error)?
    } else {
        Vec::new()
    };
    let act = act_claim(&client.client_id, subject.prior_act.as_ref());
    let bounded = TokenContext {
        access_ttl: ttl,
        ..ctx.clone()
    };
    let access_token = mint::access_token(
        &bounded,
        client,
        AccessSubject {
            subject: &subject.user.id,
            scope: &scope,
            auth_time: subject.auth_time,
            grant_id: subject.grant_id.as_deref(),
            resource,
            groups: Some(&groups),
            act: Some(&act),
        },
    )?;
    Ok(TokenResponse {
        access_token,
        token_type: "Bearer",
        expires_in: ttl,
        scope: scope.to_string(),
        id_token: None,
        refresh_token: None,
        issued_token_type: Some(ACCESS_TOKEN_TYPE),
    })
}

/// A personal access token as the subject: for resource servers only,
/// presented as an access token (it is not a JWT).
fn pat_subject(
    conn: &mut DbConn,
    client: &Client,
    r: &ExchangeRequest<'_>,
    ctx: &TokenContext,
) -> Result<Subject, OAuthError> {
    if r.subject_type != SubjectType::AccessToken {
        return Err(refused(
            "a personal access token is an access token, not a JWT",
        ));
    }
    if client.settings.resource_audiences.is_empty() {
        return Err(refused(
            "only a resource server (a client serving an audience) may exchange personal access tokens",
        ));
    }
    let principal = crate::service::pat::resolve(conn, &ctx.pat, r.subject_token, ctx.now)?
        .ok_or_else(|| refused("it is not a usable personal access token"))?;
    let user = match repo::users::by_id(conn, &principal.user_id).map_err(storage_error)? {
        Some(u) if !u.disabled => u,
        _ => return Err(refused("its user is no longer active")),
    };
    Ok(Subject {
        user,
        scope: principal.scope,
        expires_at: principal.expires_at.unix_timestamp(),
        auth_time: None,
        grant_id: None,
        prior_act: None,
        from_personal_token: true,
    })
}

/// A Latchkey JWT access token as the subject.
fn jwt_subject(
    conn: &mut DbConn,
    client: &Client,
    r: &ExchangeRequest<'_>,
    ctx: &TokenContext,
) -> Result<Subject, OAuthError> {
    let claims = access::verify(&ctx.keys, r.subject_token, &ctx.issuer, ctx.now)
        .map_err(|_| refused("it is not a valid, unexpired Latchkey access token"))?;
    if !claims.readable_by(client) {
        return Err(refused(
            "it was neither issued to this client nor meant for an audience it serves",
        ));
    }
    if claims.is_client_token() {
        return Err(refused("it acts for a client, not for a user"));
    }
    if access::is_revoked(conn, &claims).map_err(storage_error)? {
        return Err(refused("it has been revoked"));
    }
    let user = match repo::users::by_id(conn, &claims.sub).map_err(storage_error)? {
        Some(u) if !u.disabled => u,
        _ => return Err(refused("its user is no longer active")),
    };
    Ok(Subject {
        user,
        scope: claims.scope,
        expires_at: claims.exp,
        auth_time: claims
            .auth_time
            .and_then(|t| OffsetDateTime::from_unix_timestamp(t).ok()),
        grant_id: claims.grant_id,
        prior_act: claims.act,
        from_personal_token: false,
    })
}

//! After validation and sign-in: consent, and issuing the code.

use time::{Duration, OffsetDateTime};

use super::{ServiceError, ServiceResult};
use crate::clock::to_db;
use crate::domain::scope::ScopeSet;
use crate::oidc::authorize::ValidRequest;
use crate::service::sessions::ActiveSession;
use crate::store::models::{CodeRow, ConsentRow, GrantRow, UserRow};
use crate::store::{DbConn, repo};
use crate::token::opaque::OpaqueSecret;

/// A request narrowed to what the signed-in user may be granted.
pub struct ForUser {
    pub request: ValidRequest,
    pub needs_consent: bool,
    /// `(scope, consent-page text)` for each scope asked.
    pub descriptions: Vec<(String, String)>,
}

/// Narrows the request's scopes to those `user` may be granted (a custom
/// scope limited to groups the user is not in, or `latchkey:admin` for a
/// non-admin, is dropped: the token response's `scope` tells the client,
/// RFC 6749 3.3), then decides about consent. `None` when nothing that
/// was asked for may be granted.
pub fn for_user(
    conn: &mut DbConn,
    mut request: ValidRequest,
    user: &UserRow,
) -> ServiceResult<Option<ForUser>> {
    let asked_for_something = !request.scope.is_empty();
    request.scope = super::scopes::permitted_for_user(conn, user, &request.scope)?;
    if asked_for_something && request.scope.is_empty() {
        return Ok(None);
    }
    let needs_consent = consent_needed(conn, &request, &user.id)?;
    let descriptions = super::scopes::descriptions(conn, &request.scope)?;
    Ok(Some(ForUser {
        request,
        needs_consent,
        descriptions,
    }))
}

/// Whether the user must be asked: never for first-party clients; always
/// with `prompt=consent`; otherwise when a scope was not granted before.
pub fn consent_needed(conn: &mut DbConn, req: &ValidRequest, user_id: &str) -> ServiceResult<bool> {
    if req.client.settings.first_party {
        return Ok(false);
    }
    if req.prompt.consent {
        return Ok(true);
    }
    let Some(row) = repo::consents::get(conn, user_id, &req.client.client_id)? else {
        return Ok(true);
    };
    let granted = ScopeSet::parse(&row.scope).map_err(ServiceError::Invalid)?;
    Ok(!req.scope.is_subset(&granted))
}

/// Remembers that the user granted these scopes to the client (adding to
/// what was granted before).
pub fn record_consent(
    conn: &mut DbConn,
    user_id: &str,
    client_id: &str,
    scope: &ScopeSet,
    now: OffsetDateTime,
) -> ServiceResult<()> {
    let previous = repo::consents::get(conn, user_id, client_id)?
        .and_then(|r| ScopeSet::parse(&r.scope).ok())
        .unwrap_or_default();
    let all = ScopeSet::from_items(previous.iter().chain(scope.iter()))?;
    repo::consents::put(
        conn,
        &ConsentRow {
            user_id: user_id.into(),
            client_id: client_id.into(),
            scope: all.to_string(),
            granted_at: to_db(now),
        },
    )?;
    Ok(())
}

/// Starts a grant and returns its single-use authorization code.
pub fn issue_code(
    conn: &mut DbConn,
    req: &ValidRequest,
    session: &ActiveSession,
    now: OffsetDateTime,
    code_ttl_secs: i64,
) -> ServiceResult<OpaqueSecret> {
    let code = OpaqueSecret::generate()?;
    let grant = GrantRow {
        id: uuid::Uuid::new_v4().to_string(),
        client_id: req.client.client_id.clone(),
        user_id: session.user.id.clone(),
        scope: req.scope.to_string(),
        auth_time: to_db(session.auth_time),
        sid: Some(session.sid.clone()),
        created_at: to_db(now),
        revoked_at: None,
        resource: req.resource.clone(),
    };
    let row = CodeRow {
        code_hash: code.hash(),
        grant_id: grant.id.clone(),
        redirect_uri: req.return_to.redirect_uri.clone(),
        nonce: req.nonce.clone(),
        code_challenge: req.code_challenge.clone(),
        expires_at: to_db(now + Duration::seconds(code_ttl_secs)),
        used_at: None,
    };
    diesel::Connection::transaction(conn, |conn| {
        repo::grants::insert_grant(conn, &grant)?;
        repo::grants::insert_code(conn, &row)
    })?;
    Ok(code)
}

//! The implicit flow's answer (legacy, on with `legacy.implicit`; OIDC
//! Core 3.2, RFC 6749 4.2): once `/authorize` decided as for the code flow
//! (sign-in, consent), tokens instead of a code. The grant is recorded as
//! the code flow records it (with the session's `sid`, so signing out
//! revokes it and the clients that took part hear of it); no refresh token
//! is ever issued, and access tokens live `legacy.implicit_access_token_ttl_secs`.

use super::ServiceResult;
use super::authorize::new_grant;
use super::sessions::ActiveSession;
use super::token::TokenContext;
use super::token::mint::{self, RefreshIssue, UserGrant};
use crate::oidc::OAuthError;
use crate::oidc::authorize::ValidRequest;
use crate::oidc::response_type::ResponseType;
use crate::store::{DbConn, repo};

/// The parameters of an implicit answer (before `state` and `iss`).
pub type TokenParams = Vec<(&'static str, String)>;

/// Records the grant, then mints what the response type asks for. A
/// signing failure is the client's `server_error` (RFC 6749 4.2.2.1);
/// storage failures are the caller's.
pub fn issue(
    conn: &mut DbConn,
    req: &ValidRequest,
    session: &ActiveSession,
    ctx: &TokenContext,
) -> ServiceResult<Result<TokenParams, OAuthError>> {
    let grant = new_grant(req, session, ctx.now);
    let groups = diesel::Connection::transaction(conn, |conn| {
        repo::grants::insert_grant(conn, &grant)?;
        if req.scope.contains("groups") {
            repo::groups::names_for_user(conn, &session.user.id)
        } else {
            Ok(Vec::new())
        }
    })?;
    let g = UserGrant {
        client: &req.client,
        grant: &grant,
        user: &session.user,
        scope: &req.scope,
        nonce: req.nonce.as_deref(),
        resource: req.resource.as_deref(),
        refresh: RefreshIssue::None,
    };
    Ok(params(ctx, &g, &groups, req.response_type))
}

/// `access_token`, `token_type`, `expires_in` and `scope` when an access
/// token is asked for; `id_token` (with `at_hash` beside an access token,
/// OIDC Core 3.2.2.10) when an ID token is.
fn params(
    ctx: &TokenContext,
    g: &UserGrant<'_>,
    groups: &[String],
    rt: ResponseType,
) -> Result<TokenParams, OAuthError> {
    let mut out = Vec::new();
    let access = if rt.returns_access_token() {
        Some(mint::user_access_token(ctx, g, groups)?)
    } else {
        None
    };
    if let Some(a) = &access {
        out.push(("access_token", a.clone()));
        out.push(("token_type", "Bearer".to_owned()));
        out.push(("expires_in", ctx.access_ttl.to_string()));
        out.push(("scope", g.scope.to_string()));
    }
    if rt.returns_id_token() {
        out.push((
            "id_token",
            mint::user_id_token(ctx, g, groups, access.as_deref())?,
        ));
    }
    Ok(out)
}

//! The `/authorize` use case: validate the request, decide whether the
//! person must sign in (again) or consent, and issue the code. The answer
//! is a [`Decision`] that `http` renders; no HTTP type is seen here.

use std::sync::Arc;

use time::{Duration, OffsetDateTime};

use super::token::TokenContext;
use super::{ServiceError, ServiceResult, clients, implicit};
use crate::clock::to_db;
use crate::domain::client::{CLIENT_ID_MAX, redirect_destination};
use crate::domain::scope::ScopeSet;
use crate::domain::secret::OpaqueSecret;
use crate::keys::KeySet;
use crate::oidc::authorize::{self, AuthorizeParams, Rejection, ReturnTo, ValidRequest};
use crate::oidc::{ErrorCode, OAuthError};
use crate::service::sessions::ActiveSession;
use crate::store::models::{CodeRow, ConsentRow, GrantRow, UserRow};
use crate::store::{Db, DbConn, repo};

/// What `/authorize` does next.
pub enum Decision {
    /// The client or its redirect URI cannot be trusted: show an error
    /// page, never redirect (RFC 6749 4.1.2.1).
    ErrorPage(String),
    /// Send this error back to the client.
    Error(ReturnTo, OAuthError),
    /// The person must sign in (again) first, then come back; a
    /// `prompt=login` on the way back is satisfied by a sign-in at or after
    /// `asked_at`.
    Login {
        login_hint: Option<String>,
        asked_at: OffsetDateTime,
    },
    /// The signed-in person must enter a second factor (step-up), then
    /// come back.
    SecondFactor,
    /// An `[mfa]` policy requires a second factor the person has not set
    /// up, past its grace period: send them to set it up.
    Enrol,
    /// Ask the signed-in person for consent.
    Consent(ConsentPrompt),
    /// A code was issued; send it back to the client.
    Code(IssuedCode),
    /// Tokens were issued (the legacy implicit flow); send them back.
    Tokens(IssuedTokens),
}

pub struct ConsentPrompt {
    pub request: ValidRequest,
    /// `(scope, consent-page text)` for each scope asked.
    pub descriptions: Vec<(String, String)>,
    pub username: String,
    /// Where the answer goes: the redirect URI's host (see
    /// [`redirect_destination`]); `None` for the out-of-band URI.
    pub destination: Option<String>,
    /// The client registered itself (RFC 7591): no administrator vouched
    /// for its name.
    pub unverified: bool,
}

pub struct IssuedCode {
    pub request: ValidRequest,
    pub code: OpaqueSecret,
    pub ttl_secs: i64,
}

pub struct IssuedTokens {
    pub request: ValidRequest,
    pub params: implicit::TokenParams,
}

/// What the decision needs besides the request and the session.
pub struct AuthorizeContext<'a> {
    pub db: &'a Db,
    pub keys: Arc<KeySet>,
    pub issuer: &'a str,
    pub now: OffsetDateTime,
    pub code_ttl_secs: i64,
    /// `legacy.implicit`: how implicit tokens are minted ([`TokenContext::implicit`]);
    /// `None` while the implicit flow is off.
    pub implicit: Option<TokenContext>,
    /// `[mfa]`: who must sign in with a second factor.
    pub mfa: &'a crate::config::MfaConfig,
}

async fn validated(
    ctx: &AuthorizeContext<'_>,
    params: &AuthorizeParams,
) -> ServiceResult<Result<ValidRequest, Decision>> {
    let client = match params.client_id.as_deref() {
        Some(id) if id.len() <= CLIENT_ID_MAX => {
            let id = id.to_owned();
            ctx.db
                .run(move |conn| clients::find_optional(conn, &id))
                .await?
        }
        _ => None,
    };
    let implicit = ctx.implicit.is_some();
    Ok(
        authorize::validate(params, client, implicit).map_err(|r| match r {
            Rejection::Page(msg) => Decision::ErrorPage(msg),
            Rejection::Redirect(to, e) => Decision::Error(to, e),
        }),
    )
}

/// `GET/POST /authorize` for a person with `session` (if signed in).
/// Errors go back to the client only where that is no open redirector
/// (see [`errors_may_redirect`]); the code always does.
pub async fn decide(
    ctx: &AuthorizeContext<'_>,
    params: &AuthorizeParams,
    session: Option<ActiveSession>,
) -> ServiceResult<Decision> {
    let user_id = session.as_ref().map(|s| s.user.id.clone());
    let decision = decide_for(ctx, params, session).await?;
    no_open_redirect(ctx, params, user_id, decision).await
}

async fn decide_for(
    ctx: &AuthorizeContext<'_>,
    params: &AuthorizeParams,
    session: Option<ActiveSession>,
) -> ServiceResult<Decision> {
    let valid = match validated(ctx, params).await? {
        Ok(v) => v,
        Err(d) => return Ok(d),
    };
    let now = ctx.now;
    // The sign-in our login redirect asked for (see the marker) answers
    // both `max_age` and `prompt=login`, however long the round trip took.
    let signed_in_since_asked = |s: &ActiveSession| {
        valid
            .login_after
            .is_some_and(|t| s.auth_time.unix_timestamp() >= t)
    };
    let fresh_enough = |s: &ActiveSession| {
        valid
            .max_age
            .is_none_or(|max| (now - s.auth_time).whole_seconds() <= max)
            || signed_in_since_asked(s)
    };
    let hinted = params
        .id_token_hint
        .as_deref()
        .and_then(|h| hinted_subject(&ctx.keys, ctx.issuer, h));
    let same_user = |s: &ActiveSession| hinted.as_deref().is_none_or(|sub| sub == s.user.id);
    let login_done = |s: &ActiveSession| !valid.prompt.login || signed_in_since_asked(s);
    let session = match session {
        Some(s) if login_done(&s) && fresh_enough(&s) && same_user(&s) => s,
        _ if valid.prompt.none => {
            return Ok(Decision::Error(
                valid.return_to,
                OAuthError::login_required("the user is not signed in"),
            ));
        }
        _ => {
            return Ok(Decision::Login {
                login_hint: valid.login_hint,
                asked_at: now,
            });
        }
    };
    if let Some(d) = second_factor_needed(ctx, &valid, &session).await? {
        return Ok(d);
    }
    let prepared = match narrowed(ctx, valid, &session).await? {
        Ok(p) => p,
        Err(d) => return Ok(d),
    };
    let valid = prepared.request;
    if prepared.needs_consent {
        if valid.prompt.none {
            return Ok(Decision::Error(
                valid.return_to,
                OAuthError::consent_required("consent is required"),
            ));
        }
        return Ok(Decision::Consent(ConsentPrompt {
            destination: redirect_destination(&valid.return_to.redirect_uri),
            unverified: valid.client.registration_token_hash.is_some(),
            request: valid,
            descriptions: prepared.descriptions,
            username: session.user.username.clone(),
        }));
    }
    issue(ctx, valid, session).await
}

/// `POST /authorize/consent`: the request is validated again; Allow
/// records consent and issues the code, Deny answers `access_denied`.
/// Deny goes back to the client even for a self-registered one the person
/// never approved: they chose it on the page that names the destination,
/// and Allow would have sent them there just the same. Other errors
/// follow [`errors_may_redirect`].
pub async fn answer_consent(
    ctx: &AuthorizeContext<'_>,
    params: &AuthorizeParams,
    session: Option<ActiveSession>,
    allow: bool,
) -> ServiceResult<Decision> {
    let user_id = session.as_ref().map(|s| s.user.id.clone());
    match answer_consent_for(ctx, params, session, allow).await? {
        Decision::Error(to, e) if e.error == ErrorCode::AccessDenied && !allow => {
            Ok(Decision::Error(to, e))
        }
        other => no_open_redirect(ctx, params, user_id, other).await,
    }
}

async fn answer_consent_for(
    ctx: &AuthorizeContext<'_>,
    params: &AuthorizeParams,
    session: Option<ActiveSession>,
    allow: bool,
) -> ServiceResult<Decision> {
    let valid = match validated(ctx, params).await? {
        Ok(v) => v,
        Err(d) => return Ok(d),
    };
    let Some(session) = session else {
        return Ok(Decision::Login {
            login_hint: None,
            asked_at: ctx.now,
        });
    };
    if let Some(d) = second_factor_needed(ctx, &valid, &session).await? {
        return Ok(d);
    }
    let valid = match narrowed(ctx, valid, &session).await? {
        Ok(p) => p.request,
        Err(d) => return Ok(d),
    };
    if !allow {
        return Ok(Decision::Error(
            valid.return_to,
            OAuthError::access_denied("the user denied access"),
        ));
    }
    let (user_id, client_id, scope, now) = (
        session.user.id.clone(),
        valid.client.client_id.clone(),
        valid.scope.clone(),
        ctx.now,
    );
    ctx.db
        .run(move |conn| record_consent(conn, &user_id, &client_id, &scope, now))
        .await?;
    issue(ctx, valid, session).await
}

/// Step-up: a request that needs a second factor (see
/// [`ValidRequest::needs_mfa`]), or a user an `[mfa]` policy covers, with
/// a session signed in without one: the person is sent to enter it; a
/// user with no second factor gets `unmet_authentication_requirements`
/// back (or, covered by a policy past its grace period, is sent to set
/// one up); with `prompt=none`, `interaction_required` (OIDC Core
/// 3.1.2.6).
async fn second_factor_needed(
    ctx: &AuthorizeContext<'_>,
    valid: &ValidRequest,
    session: &ActiveSession,
) -> ServiceResult<Option<Decision>> {
    use super::mfa::policy::{self, Need};
    if session.amr.is_mfa() || !(valid.needs_mfa || policy::any(ctx.mfa)) {
        return Ok(None);
    }
    let (cfg, user_id, asked, now) = (
        ctx.mfa.clone(),
        session.user.id.clone(),
        valid.needs_mfa,
        ctx.now,
    );
    let need = ctx
        .db
        .run(move |conn| policy::at_authorize(conn, &cfg, &user_id, asked, now))
        .await?;
    let to = valid.return_to.clone();
    let interaction = || {
        Decision::Error(
            to.clone(),
            OAuthError::interaction_required("the user must use a second factor first"),
        )
    };
    Ok(match need {
        Need::Nothing => None,
        Need::NoFactor => Some(Decision::Error(
            to.clone(),
            OAuthError::unmet_authentication_requirements(
                "this request needs a sign-in with a second factor, and the user has none",
            ),
        )),
        _ if valid.prompt.none => Some(interaction()),
        Need::SecondFactor => Some(Decision::SecondFactor),
        Need::Enrol => Some(Decision::Enrol),
    })
}

/// The request narrowed to what this user may be granted, or the
/// `invalid_scope` answer when that is nothing.
async fn narrowed(
    ctx: &AuthorizeContext<'_>,
    valid: ValidRequest,
    session: &ActiveSession,
) -> ServiceResult<Result<ForUser, Decision>> {
    let return_to = valid.return_to.clone();
    let user = session.user.clone();
    let prepared = ctx.db.run(move |conn| for_user(conn, valid, &user)).await?;
    Ok(prepared.ok_or_else(|| {
        Decision::Error(
            return_to,
            OAuthError::invalid_scope("none of the requested scopes may be granted to this user"),
        )
    }))
}

async fn issue(
    ctx: &AuthorizeContext<'_>,
    request: ValidRequest,
    session: ActiveSession,
) -> ServiceResult<Decision> {
    if request.response_type.is_implicit() {
        return issue_tokens(ctx, request, session).await;
    }
    let (now, ttl_secs) = (ctx.now, ctx.code_ttl_secs);
    let v = request.clone();
    let code = ctx
        .db
        .run(move |conn| issue_code(conn, &v, &session, now, ttl_secs))
        .await?;
    Ok(Decision::Code(IssuedCode {
        request,
        code,
        ttl_secs,
    }))
}

/// The implicit flow's tokens (validation let the request through only
/// while `ctx.implicit` is set).
async fn issue_tokens(
    ctx: &AuthorizeContext<'_>,
    request: ValidRequest,
    session: ActiveSession,
) -> ServiceResult<Decision> {
    let Some(tokens) = ctx.implicit.clone() else {
        return Ok(Decision::Error(
            request.return_to,
            OAuthError::unsupported_response_type("the implicit flow is off"),
        ));
    };
    let v = request.clone();
    let minted = ctx
        .db
        .run(move |conn| implicit::issue(conn, &v, &session, &tokens))
        .await?;
    Ok(match minted {
        Ok(params) => Decision::Tokens(IssuedTokens { request, params }),
        Err(e) => Decision::Error(request.return_to, e),
    })
}

/// Turns an error meant for the client into the error page when sending
/// it would make Latchkey an open redirector (RFC 9700 4.11.2).
async fn no_open_redirect(
    ctx: &AuthorizeContext<'_>,
    params: &AuthorizeParams,
    user_id: Option<String>,
    decision: Decision,
) -> ServiceResult<Decision> {
    let Decision::Error(to, e) = decision else {
        return Ok(decision);
    };
    let Some(client_id) = params.client_id.clone() else {
        return Ok(Decision::Error(to, e));
    };
    let may = ctx
        .db
        .run(move |conn| errors_may_redirect(conn, &client_id, user_id.as_deref()))
        .await?;
    if may {
        return Ok(Decision::Error(to, e));
    }
    Ok(Decision::ErrorPage(format!(
        "{} ({}). This app registered itself and you have not approved it, \
         so Latchkey does not send you on to it.",
        e.error_description,
        e.error.as_str()
    )))
}

/// Whether `/authorize` may send an error back to the client's redirect
/// URI. With open registration anyone can register a redirect URI, so a
/// self-registered (RFC 7591) client gets its errors redirected only for
/// a signed-in person who consented to it before; otherwise (nobody signed
/// in, never approved) the error page is shown. Clients an administrator
/// registered are trusted with their errors.
pub fn errors_may_redirect(
    conn: &mut DbConn,
    client_id: &str,
    user_id: Option<&str>,
) -> ServiceResult<bool> {
    let Some(client) = clients::find_optional(conn, client_id)? else {
        return Ok(false);
    };
    let consented = match user_id {
        Some(u) if client.registration_token_hash.is_some() => {
            repo::consents::get(conn, u, client_id)?.is_some()
        }
        _ => false,
    };
    Ok(redirect_errors(
        client.registration_token_hash.is_some(),
        consented,
    ))
}

/// The rule of [`errors_may_redirect`]: admin-registered clients always;
/// self-registered ones once the person consented.
fn redirect_errors(registered_itself: bool, consented: bool) -> bool {
    !registered_itself || consented
}

/// The subject of an `id_token_hint` we issued (expired ones count: it is
/// only a hint). Hints we cannot verify are ignored.
fn hinted_subject(keys: &KeySet, issuer: &str, hint: &str) -> Option<String> {
    let (payload, _) = keys.verify(hint).ok()?;
    let claims = payload.claims_set();
    if claims.get("iss").and_then(|v| v.as_str()) != Some(issuer) {
        return None;
    }
    claims
        .get("sub")
        .and_then(|v| v.as_str())
        .map(str::to_owned)
}

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

/// Whether the user must be asked: always with `prompt=consent` (OIDC
/// Core 3.1.2.1, first-party clients included); never otherwise for
/// first-party clients; else when a scope was not granted before.
pub fn consent_needed(conn: &mut DbConn, req: &ValidRequest, user_id: &str) -> ServiceResult<bool> {
    if req.prompt.consent {
        return Ok(true);
    }
    if req.client.settings.first_party {
        return Ok(false);
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

/// A new grant of `req`'s scope to its client, made in `session` (its
/// `sid`, so ending the session revokes it and tells the client).
pub fn new_grant(req: &ValidRequest, session: &ActiveSession, now: OffsetDateTime) -> GrantRow {
    GrantRow {
        id: uuid::Uuid::new_v4().to_string(),
        client_id: req.client.client_id.clone(),
        user_id: session.user.id.clone(),
        scope: req.scope.to_string(),
        auth_time: to_db(session.auth_time),
        sid: Some(session.sid.clone()),
        created_at: to_db(now),
        revoked_at: None,
        resource: req.resource.clone(),
        amr: Some(session.amr.to_string()),
    }
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
    let grant = new_grant(req, session, now);
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

#[cfg(test)]
mod tests {
    use super::redirect_errors;

    #[test]
    fn errors_go_to_self_registered_clients_only_after_consent() {
        assert!(redirect_errors(false, false));
        assert!(redirect_errors(false, true));
        assert!(!redirect_errors(true, false));
        assert!(redirect_errors(true, true));
    }
}

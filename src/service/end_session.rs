//! Signing out: OpenID Connect RP-Initiated Logout 1.0 at the
//! `end_session_endpoint`, and Latchkey's own sign-out page, which is the
//! same request without parameters. The answer is an [`Outcome`] that
//! `http` renders; the browser session ends through [`sessions::end_with`] (which also queues back-channel logout tokens).
//!
//! The rules: a hint must be one of our ID tokens (any key still in the
//! key set, retired ones included; expired is fine); the app is the
//! hint's audience or `client_id` (both must agree); a
//! `post_logout_redirect_uri` must be registered for that app exactly;
//! anything wrong is an error page, never a redirect. The person is asked
//! first unless the hint was issued in this very browser session.

use std::sync::Arc;

use time::OffsetDateTime;

use super::logout::LogoutPolicy;
use super::sessions::{self, SessionPolicy};
use super::{ServiceResult, clients};
use crate::domain::client::Client;
use crate::keys::KeySet;
use crate::oidc::OAuthError;
use crate::oidc::end_session::{self as rules, EndSessionParams, HintClaims, PostLogoutRedirect};
use crate::store::Db;

/// What a sign-out request needs besides its parameters and the cookie.
pub struct EndSessionContext<'a> {
    pub db: &'a Db,
    pub keys: Arc<KeySet>,
    pub issuer: &'a str,
    pub now: OffsetDateTime,
    pub policy: SessionPolicy,
    /// What signing out does to the session's grants (`[logout]`).
    pub logout: LogoutPolicy,
}

/// What happens next.
#[derive(Debug)]
pub enum Outcome {
    /// The request cannot be honoured: an error page (400), never a
    /// redirect.
    Error(OAuthError),
    /// Ask the signed-in person whether to sign out.
    Confirm(Confirmation),
    /// Signed out (or nobody was signed in): back to the app when it asked
    /// for a valid redirect, else the "You are signed out" page. The
    /// session cookie is to be cleared.
    SignedOut(Option<PostLogoutRedirect>),
    /// The person chose to stay signed in: back to the app when it asked
    /// for a valid redirect, else the start page.
    StayedSignedIn(Option<PostLogoutRedirect>),
}

/// The confirmation page's contents.
#[derive(Debug)]
pub struct Confirmation {
    pub username: String,
    /// The app asking, when the request names one.
    pub app_name: Option<String>,
    /// The app registered itself: no administrator vouched for its name.
    pub unverified: bool,
    /// The request's parameters, carried through the form.
    pub carried: Vec<(&'static str, String)>,
}

/// The person's answer on the confirmation page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    SignOut,
    StaySignedIn,
}

/// A request that passed every check.
struct Valid {
    hint: Option<HintClaims>,
    client: Option<Client>,
    redirect: Option<PostLogoutRedirect>,
}

/// Checks an `id_token_hint`: a JWS signed with a key in our set (its
/// `kid`, that key's algorithm), then its claims.
fn verify_hint(keys: &KeySet, issuer: &str, hint: &str) -> Result<HintClaims, OAuthError> {
    let (payload, header) = keys.verify(hint).map_err(|e| {
        tracing::info!(reason = %e, "id_token_hint does not verify");
        OAuthError::invalid_request("the id_token_hint is not an ID token issued by this server")
    })?;
    rules::check_hint_claims(header.token_type(), payload.claims_set(), issuer)
}

/// Everything that does not need the database: the hint and which app the
/// request names.
fn checked_hint(
    ctx: &EndSessionContext<'_>,
    params: &EndSessionParams,
) -> Result<(Option<HintClaims>, Option<String>), OAuthError> {
    let hint = params
        .id_token_hint
        .as_deref()
        .map(|h| verify_hint(&ctx.keys, ctx.issuer, h))
        .transpose()?;
    let client_id =
        rules::requested_client(hint.as_ref(), params.client_id.as_deref())?.map(str::to_owned);
    Ok((hint, client_id))
}

/// The whole validation: the app must exist, the redirect must be its.
fn validate(
    conn: &mut crate::store::DbConn,
    checked: Result<(Option<HintClaims>, Option<String>), OAuthError>,
    params: &EndSessionParams,
) -> ServiceResult<Result<Valid, OAuthError>> {
    let (hint, client_id) = match checked {
        Ok(c) => c,
        Err(e) => return Ok(Err(e)),
    };
    let client = match client_id {
        None => None,
        Some(id) => match clients::find_optional(conn, &id)? {
            Some(c) => Some(c),
            None => {
                return Ok(Err(OAuthError::invalid_request(
                    "the app this sign-out request names is not registered",
                )));
            }
        },
    };
    Ok(
        rules::post_logout_redirect(client.as_ref(), params).map(|redirect| Valid {
            hint,
            client,
            redirect,
        }),
    )
}

fn client_id_of(v: &Valid) -> Option<String> {
    v.client.as_ref().map(|c| c.client_id.clone())
}

/// A request at the `end_session_endpoint` (or `GET /logout`, with no
/// parameters) from a browser holding `cookie` (the session cookie's
/// value, if any). Signs out at once when the hint was issued in this
/// session; asks when there is a session and no such hint; with no
/// session there is nothing to end.
pub async fn request(
    ctx: &EndSessionContext<'_>,
    params: EndSessionParams,
    cookie: Option<String>,
) -> ServiceResult<Outcome> {
    let checked = checked_hint(ctx, &params);
    let (now, policy, logout) = (ctx.now, ctx.policy, ctx.logout);
    ctx.db
        .run(move |conn| {
            let valid = match validate(conn, checked, &params)? {
                Ok(v) => v,
                Err(e) => return Ok(Outcome::Error(e)),
            };
            let session = match &cookie {
                Some(c) => sessions::resolve(conn, c, now, policy)?,
                None => None,
            };
            let (Some(session), Some(cookie)) = (session, cookie) else {
                return Ok(Outcome::SignedOut(valid.redirect));
            };
            let this_session = valid.hint.as_ref().is_some_and(|h| {
                h.sid.as_deref() == Some(session.sid.as_str()) && h.sub == session.user.id
            });
            if this_session {
                let ended = sessions::end_with(conn, &cookie, logout, now)?;
                tracing::info!(
                    client_id = ?client_id_of(&valid),
                    logout_tokens = ended.logout_tokens,
                    "signed out at the app's request"
                );
                return Ok(Outcome::SignedOut(valid.redirect));
            }
            Ok(Outcome::Confirm(Confirmation {
                username: session.user.username,
                app_name: valid.client.as_ref().map(|c| c.settings.name.clone()),
                unverified: valid
                    .client
                    .as_ref()
                    .is_some_and(|c| c.registration_token_hash.is_some()),
                carried: params.carried(),
            }))
        })
        .await
}

/// The confirmation form came back (its CSRF token already checked) with
/// the carried parameters, which are validated again.
pub async fn confirm(
    ctx: &EndSessionContext<'_>,
    params: EndSessionParams,
    cookie: Option<String>,
    answer: Answer,
) -> ServiceResult<Outcome> {
    let checked = checked_hint(ctx, &params);
    let (now, logout) = (ctx.now, ctx.logout);
    ctx.db
        .run(move |conn| {
            let valid = match validate(conn, checked, &params)? {
                Ok(v) => v,
                Err(e) => return Ok(Outcome::Error(e)),
            };
            if answer == Answer::StaySignedIn {
                return Ok(Outcome::StayedSignedIn(valid.redirect));
            }
            if let Some(cookie) = &cookie {
                let ended = sessions::end_with(conn, cookie, logout, now)?;
                tracing::info!(
                    client_id = ?client_id_of(&valid),
                    logout_tokens = ended.logout_tokens,
                    "signed out"
                );
            }
            Ok(Outcome::SignedOut(valid.redirect))
        })
        .await
}

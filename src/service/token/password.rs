//! `grant_type=password` (legacy; RFC 6749 4.3, and RFC 9700 2.4 says not
//! to use it): only while `legacy.password_grant` is on, and only for
//! confidential clients an administrator allowed it. The password goes
//! through the sign-in form's own check ([`login::check_password`]):
//! the same throttling, argon2 behind the same gate, disabled users
//! refused. Wrong credentials, a disabled user and a throttled attempt
//! all answer the same `invalid_grant`.
//!
//! The grant is recorded as the code flow records one, but without a
//! `sid`: no browser session took part, so signing out of a session
//! leaves its tokens alone. A password change, disabling the user,
//! "Revoke" in My account and an admin's revocation end them.

use std::net::IpAddr;
use std::sync::Arc;

use zeroize::Zeroizing;

use super::{TokenContext, TokenRequest, TokenResponse, TxError, in_tx, mint};
use crate::clock::to_db;
use crate::domain::audit::Actor;
use crate::domain::client::ClientKind;
use crate::domain::scope::ScopeSet;
use crate::oidc::OAuthError;
use crate::oidc::authorize::{requested_resource, requested_scope};
use crate::service::clients::Client;
use crate::service::login::{self, Attempt, LoginError, ThrottlePolicy};
use crate::service::password::PasswordGate;
use crate::store::models::{GrantRow, UserRow};
use crate::store::{Db, DbConn, audit};

/// What the password grant needs besides the request: the sign-in form's
/// gate and throttle, and the caller's address (the throttle counts per
/// network, as for the form).
#[derive(Clone)]
pub struct PasswordLogin {
    pub gate: PasswordGate,
    pub throttle: ThrottlePolicy,
    pub ip: Option<IpAddr>,
}

fn refused() -> OAuthError {
    OAuthError::invalid_grant(
        "invalid username or password, or too many failed attempts (try again later)",
    )
}

/// Runs the grant for an authenticated `client` that may use it (see
/// `check_grant`). The request is judged before any password work.
pub async fn exchange(
    db: &Db,
    client: Arc<Client>,
    req: TokenRequest,
    ctx: TokenContext,
    login: PasswordLogin,
) -> Result<TokenResponse, OAuthError> {
    if client.settings.kind != ClientKind::Confidential {
        return Err(OAuthError::unauthorized_client(
            "the password grant is for confidential clients only",
        ));
    }
    if client.settings.require_mfa {
        return Err(OAuthError::unauthorized_client(
            "this client requires two-step sign-in, which the password grant cannot ask for",
        ));
    }
    let (Some(username), Some(password)) = (req.username, req.password) else {
        return Err(OAuthError::invalid_request(
            "username and password are required",
        ));
    };
    let scope = requested_scope(req.scope.as_deref(), &client)?;
    let resource = requested_resource(req.resource.as_deref(), &client)?;
    let attempt = Attempt {
        username,
        password: Zeroizing::new(password),
        ip: login.ip,
    };
    let now = ctx.now;
    let result = login::check_password(db, &login.gate, attempt, now, login.throttle, {
        let ip = login.ip;
        move |conn, user| {
            if !may_use_password_grant(conn, &user)? {
                return Err(LoginError::InvalidCredentials);
            }
            let caller = Caller {
                client: &client,
                ip,
            };
            Ok(issue(
                conn,
                &caller,
                &user,
                &scope,
                resource.as_deref(),
                &ctx,
            ))
        }
    })
    .await;
    match result {
        Ok(tokens) => tokens,
        Err(LoginError::InvalidCredentials | LoginError::Throttled { .. }) => Err(refused()),
        Err(LoginError::Service(e)) => Err(e.into()),
    }
}

/// The rules the password grant adds to the shared password check (which
/// already refuses disabled users), for a user whose password was right.
/// The one place for them: a user who has a second factor is refused (this
/// grant cannot ask for it), with the same `invalid_grant` as a wrong
/// password.
fn may_use_password_grant(conn: &mut DbConn, user: &UserRow) -> Result<bool, LoginError> {
    Ok(!crate::service::mfa::has_factor(conn, &user.id)?)
}

struct Caller<'a> {
    client: &'a Client,
    ip: Option<IpAddr>,
}

/// Records the grant (no `sid`) and an audit entry, and mints the tokens:
/// the scope narrowed to what the user may hold, an ID token with
/// `openid`, a refresh token with `offline_access` when the client may
/// refresh. In a savepoint: a failure leaves no half-made grant.
fn issue(
    conn: &mut DbConn,
    caller: &Caller<'_>,
    user: &UserRow,
    asked: &ScopeSet,
    resource: Option<&str>,
    ctx: &TokenContext,
) -> Result<TokenResponse, OAuthError> {
    let client = caller.client;
    in_tx(conn, |conn| {
        let scope = crate::service::scopes::permitted_for_user(conn, user, asked)
            .map_err(|e| TxError::OAuth(e.into()))?;
        if scope.is_empty() {
            return Err(OAuthError::invalid_scope(
                "none of the requested scopes may be granted to this user",
            )
            .into());
        }
        let actor = Actor {
            name: format!("client:{}", client.client_id),
            ip: caller.ip.map(|ip| ip.to_string()),
        };
        let detail = Some(format!("scope={scope}"));
        audit::record(
            conn,
            &actor,
            "token.password_grant",
            &user.username,
            detail,
            ctx.now,
        )?;
        let grant = GrantRow {
            id: uuid::Uuid::new_v4().to_string(),
            client_id: client.client_id.clone(),
            user_id: user.id.clone(),
            scope: scope.to_string(),
            auth_time: to_db(ctx.now),
            sid: None,
            created_at: to_db(ctx.now),
            revoked_at: None,
            resource: resource.map(str::to_owned),
            amr: Some(crate::domain::mfa::Amr::password().to_string()),
        };
        crate::store::repo::grants::insert_grant(conn, &grant)?;
        let tokens = mint::user_tokens(
            conn,
            ctx,
            mint::UserGrant {
                client,
                grant: &grant,
                user,
                scope: &scope,
                nonce: None,
                resource,
                refresh: mint::RefreshIssue::new_if_allowed(client, &scope),
            },
        )?;
        Ok(Ok(tokens))
    })
}

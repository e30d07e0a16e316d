//! Running an administrator's change, for the console and the admin API
//! alike, and deciding who an admin API token speaks for.

use time::OffsetDateTime;

use super::access::{self, AccessClaims};
use super::{ServiceResult, clients};
use crate::domain::audit::Actor;
use crate::domain::scope::ADMIN_SCOPE;
use crate::store::{Db, DbConn, StoreError, audit, repo};

/// The audit row a change opens with: action and target.
pub type AuditEntry = Option<(&'static str, String)>;

/// Runs `f(conn, actor, now)` on the blocking pool, in one transaction.
/// With `entry`, the audit row (action, target) is the transaction's first
/// statement ("claim first": on SQLite the write lock is taken before any
/// read), and a failing change rolls it back with everything else.
pub async fn change<T, E, F>(
    db: &Db,
    actor: Actor,
    entry: AuditEntry,
    now: OffsetDateTime,
    f: F,
) -> Result<T, E>
where
    F: FnOnce(&mut DbConn, &Actor, OffsetDateTime) -> Result<T, E> + Send + 'static,
    T: Send + 'static,
    E: From<diesel::result::Error> + From<StoreError> + Send + 'static,
{
    let result = db
        .run(move |conn| {
            let entry = entry.as_ref().map(|(a, t)| (*a, t.as_str()));
            audit::audited(conn, &actor, entry, now, |conn| f(conn, &actor, now))
        })
        .await;
    if result.is_ok() {
        // The change may have ended sessions (disabling a user, a new
        // password, ending their sessions): now that it committed, this
        // instance's logout delivery looks at once (one query if not).
        super::logout::wake();
    }
    result
}

/// Whom a verified `latchkey:admin` access token speaks for now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenHolder {
    /// Still an administrator: the audit actor's name (`client:<id>` or
    /// `user:<username>`).
    Admin(String),
    /// The token, or the grant it came from, was revoked; or, for a
    /// client's own token, the client was deleted or its secret changed
    /// after the token was issued. The reason is for the caller.
    Revoked(&'static str),
    /// A user's token whose user is no longer an enabled admin, or a
    /// client's own token whose client no longer holds `latchkey:admin`.
    NoLongerAdmin,
}

/// Checks a verified admin token against the database on every call: not
/// revoked; for a user's token, the user still an enabled admin; for a
/// token a client obtained for itself (`client_credentials`, acting as
/// `client:<id>`), the client still exists, still holds `latchkey:admin`,
/// and the token was issued at or after its last secret change (see
/// [`crate::domain::client::secret_changed_at`] for the whole-second rule).
/// The client is read from the database, not the short-lived cache, so a
/// change takes effect at once.
pub fn token_holder(conn: &mut DbConn, claims: &AccessClaims) -> ServiceResult<TokenHolder> {
    if access::is_revoked(conn, claims)? {
        return Ok(TokenHolder::Revoked("the access token was revoked"));
    }
    if claims.auth_time.is_none() && claims.sub == claims.client_id {
        let Some(client) = clients::find_optional(conn, &claims.client_id)? else {
            return Ok(TokenHolder::Revoked(
                "the client this token was issued to no longer exists",
            ));
        };
        if !client.issued_after_secret_change(claims.iat) {
            return Ok(TokenHolder::Revoked(
                "the client's secret changed after this token was issued",
            ));
        }
        if !client.settings.allowed_scopes.contains(ADMIN_SCOPE) {
            return Ok(TokenHolder::NoLongerAdmin);
        }
        return Ok(TokenHolder::Admin(format!("client:{}", claims.client_id)));
    }
    Ok(match repo::users::by_id(conn, &claims.sub)? {
        Some(u) if u.is_admin && !u.disabled => TokenHolder::Admin(format!("user:{}", u.username)),
        _ => TokenHolder::NoLongerAdmin,
    })
}

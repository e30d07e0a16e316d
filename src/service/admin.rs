//! Running an administrator's change, for the console and the admin API
//! alike, and deciding who an admin API token speaks for.

use time::OffsetDateTime;

use super::access::{self, AccessClaims};
use crate::domain::audit::Actor;
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
    db.run(move |conn| {
        let entry = entry.as_ref().map(|(a, t)| (*a, t.as_str()));
        audit::audited(conn, &actor, entry, now, |conn| f(conn, &actor, now))
    })
    .await
}

/// Whom a verified `latchkey:admin` access token speaks for now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenHolder {
    /// Still an administrator: the audit actor's name (`client:<id>` or
    /// `user:<username>`).
    Admin(String),
    /// The token, or the grant it came from, was revoked.
    Revoked,
    /// A user's token whose user is no longer an enabled admin.
    NoLongerAdmin,
}

/// Checks a verified admin token against the database: not revoked, and
/// for a user's token, the user still an enabled admin. A token a client
/// obtained for itself (`client_credentials`) acts as `client:<id>`.
pub fn token_holder(conn: &mut DbConn, claims: &AccessClaims) -> Result<TokenHolder, StoreError> {
    if access::is_revoked(conn, claims)? {
        return Ok(TokenHolder::Revoked);
    }
    if claims.auth_time.is_none() && claims.sub == claims.client_id {
        return Ok(TokenHolder::Admin(format!("client:{}", claims.client_id)));
    }
    Ok(match repo::users::by_id(conn, &claims.sub)? {
        Some(u) if u.is_admin && !u.disabled => TokenHolder::Admin(format!("user:{}", u.username)),
        _ => TokenHolder::NoLongerAdmin,
    })
}

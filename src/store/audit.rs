//! Recording the audit log: who did what to which object, when, from
//! where. Below both `keys` and `service`, which record their changes.

use time::OffsetDateTime;

use crate::clock::to_db;
use crate::domain::audit::Actor;
use crate::store::models::AuditRow;
use crate::store::{DbConn, repo};

pub fn record(
    conn: &mut DbConn,
    actor: &Actor,
    action: &str,
    target: &str,
    detail: Option<String>,
    now: OffsetDateTime,
) -> diesel::QueryResult<()> {
    repo::audit::insert(
        conn,
        &AuditRow {
            // Time-ordered (v7), so entries of the same second list in
            // the order they happened.
            id: uuid::Uuid::now_v7().to_string(),
            at: to_db(now),
            actor: actor.name.clone(),
            action: action.into(),
            target: target.into(),
            ip: actor.ip.clone(),
            detail,
        },
    )
}

/// Runs `f` in a transaction whose first statement is the audit row for
/// `entry` (action, target), when given: the write comes first ("claim
/// first", see `store`), and a failing `f` rolls the row back with it.
pub fn audited<T, E, F>(
    conn: &mut DbConn,
    actor: &Actor,
    entry: Option<(&str, &str)>,
    now: OffsetDateTime,
    f: F,
) -> Result<T, E>
where
    F: FnOnce(&mut DbConn) -> Result<T, E>,
    E: From<diesel::result::Error>,
{
    use diesel::Connection;
    conn.transaction(|conn| {
        if let Some((action, target)) = entry {
            record(conn, actor, action, target, None, now)?;
        }
        f(conn)
    })
}

//! The audit log: who did what to which object, when, from where.

use time::OffsetDateTime;

use crate::clock::to_db;
use crate::store::models::AuditRow;
use crate::store::{DbConn, repo};

/// Who acted: `cli:<os user>`, `user:<username>`, `client:<id>` or `system`.
#[derive(Debug, Clone)]
pub struct Actor {
    pub name: String,
    pub ip: Option<String>,
}

impl Actor {
    pub fn system() -> Self {
        Self {
            name: "system".into(),
            ip: None,
        }
    }

    pub fn cli() -> Self {
        let user = std::env::var("USER").unwrap_or_else(|_| "unknown".into());
        Self {
            name: format!("cli:{user}"),
            ip: None,
        }
    }
}

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

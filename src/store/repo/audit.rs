use diesel::prelude::*;

use crate::store::DbConn;
use crate::store::models::AuditRow;
use crate::store::schema::audit_log::dsl;

pub fn insert(conn: &mut DbConn, row: &AuditRow) -> QueryResult<()> {
    diesel::insert_into(dsl::audit_log)
        .values(row)
        .execute(conn)?;
    Ok(())
}

/// Newest first; `action_prefix` filters like `key.`.
pub fn recent(
    conn: &mut DbConn,
    action_prefix: Option<&str>,
    limit: i64,
) -> QueryResult<Vec<AuditRow>> {
    let mut q = dsl::audit_log.into_boxed();
    if let Some(p) = action_prefix {
        q = q.filter(
            dsl::action
                .like(format!("{}%", p.replace('%', "\\%").replace('_', "\\_")))
                .escape('\\'),
        );
    }
    q.order((dsl::at.desc(), dsl::id.desc()))
        .limit(limit)
        .select(AuditRow::as_select())
        .load(conn)
}

/// Newest first, filtered by exact actor, action prefix and exact target.
pub fn search(
    conn: &mut DbConn,
    actor: Option<&str>,
    action_prefix: Option<&str>,
    target: Option<&str>,
    limit: i64,
) -> QueryResult<Vec<AuditRow>> {
    let mut q = dsl::audit_log.into_boxed();
    if let Some(a) = actor {
        q = q.filter(dsl::actor.eq(a.to_owned()));
    }
    if let Some(p) = action_prefix {
        q = q.filter(
            dsl::action
                .like(format!(
                    "{}%",
                    p.replace('\\', "\\\\")
                        .replace('%', "\\%")
                        .replace('_', "\\_")
                ))
                .escape('\\'),
        );
    }
    if let Some(t) = target {
        q = q.filter(dsl::target.eq(t.to_owned()));
    }
    q.order((dsl::at.desc(), dsl::id.desc()))
        .limit(limit)
        .select(AuditRow::as_select())
        .load(conn)
}

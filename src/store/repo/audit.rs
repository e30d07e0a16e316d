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

/// What [`search`] selects: every filter optional.
#[derive(Debug, Default)]
pub struct AuditQuery<'a> {
    /// Exact actor.
    pub actor: Option<&'a str>,
    /// Action prefix, like `key.`.
    pub action_prefix: Option<&'a str>,
    /// Exact target.
    pub target: Option<&'a str>,
    /// Entries at or after this time.
    pub since: Option<time::PrimitiveDateTime>,
    /// Entries strictly past this one (`at`, `id`) in the listing order:
    /// the cursor of the page before.
    pub after: Option<(time::PrimitiveDateTime, String)>,
    /// Oldest first instead of newest first.
    pub oldest_first: bool,
    pub limit: i64,
}

/// Entries ordered by (`at`, `id`), newest first unless `oldest_first`.
pub fn search(conn: &mut DbConn, q: &AuditQuery<'_>) -> QueryResult<Vec<AuditRow>> {
    let mut b = dsl::audit_log.into_boxed();
    if let Some(a) = q.actor {
        b = b.filter(dsl::actor.eq(a.to_owned()));
    }
    if let Some(p) = q.action_prefix {
        b = b.filter(
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
    if let Some(t) = q.target {
        b = b.filter(dsl::target.eq(t.to_owned()));
    }
    if let Some(since) = q.since {
        b = b.filter(dsl::at.ge(since));
    }
    match (&q.after, q.oldest_first) {
        (Some((at, id)), false) => {
            b = b.filter(
                dsl::at
                    .lt(*at)
                    .or(dsl::at.eq(*at).and(dsl::id.lt(id.clone()))),
            );
        }
        (Some((at, id)), true) => {
            b = b.filter(
                dsl::at
                    .gt(*at)
                    .or(dsl::at.eq(*at).and(dsl::id.gt(id.clone()))),
            );
        }
        (None, _) => {}
    }
    b = if q.oldest_first {
        b.order((dsl::at.asc(), dsl::id.asc()))
    } else {
        b.order((dsl::at.desc(), dsl::id.desc()))
    };
    b.limit(q.limit).select(AuditRow::as_select()).load(conn)
}

/// One entry's position, to resume a listing after it.
pub fn position(conn: &mut DbConn, id: &str) -> QueryResult<Option<time::PrimitiveDateTime>> {
    dsl::audit_log
        .find(id)
        .select(dsl::at)
        .first(conn)
        .optional()
}

//! Reading the audit log: filtered by actor, action prefix, target and
//! time, newest first (or oldest first, for shipping to a SIEM), in pages
//! resumed with a cursor.

use serde::Serialize;
use time::OffsetDateTime;

use super::ServiceResult;
use crate::clock::{from_db, to_db};
use crate::domain::Invalid;
use crate::store::repo::audit::AuditQuery;
use crate::store::{DbConn, repo};

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct AuditEntry {
    /// Stable and unique: what a cursor names.
    pub id: String,
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    pub actor: String,
    pub action: String,
    pub target: String,
    pub ip: Option<String>,
    pub detail: Option<String>,
}

#[derive(Debug, Clone, Default, serde::Deserialize)]
pub struct AuditFilter {
    /// Exact actor, e.g. `user:root` or `client:ci-bot`.
    pub actor: Option<String>,
    /// Action prefix, e.g. `client.` or `key.rotate`.
    pub action: Option<String>,
    /// Exact target.
    pub target: Option<String>,
    /// Entries at or after this RFC 3339 time.
    pub since: Option<String>,
    /// Resume after the entry a previous page's `next_cursor` named.
    pub cursor: Option<String>,
    pub limit: Option<i64>,
    /// Oldest first (the CLI's JSON lines); never from a query string.
    #[serde(skip)]
    pub oldest_first: bool,
}

/// One page of entries; `next_cursor` is set when more may follow.
#[derive(Debug, Clone, Serialize)]
pub struct AuditPage {
    pub items: Vec<AuditEntry>,
    pub next_cursor: Option<String>,
}

fn nonempty(v: &Option<String>) -> Option<&str> {
    v.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

/// Parses an RFC 3339 time given as `field`.
pub fn parse_time(field: &'static str, raw: &str) -> Result<OffsetDateTime, Invalid> {
    OffsetDateTime::parse(raw.trim(), &time::format_description::well_known::Rfc3339)
        .map_err(|_| Invalid::new(field, "an RFC 3339 time, like 2026-11-29T08:00:00Z"))
}

pub fn page(conn: &mut DbConn, f: &AuditFilter) -> ServiceResult<AuditPage> {
    let limit = f.limit.unwrap_or(100).clamp(1, 1000);
    let since = nonempty(&f.since)
        .map(|s| parse_time("since", s))
        .transpose()?
        .map(to_db);
    let after = match nonempty(&f.cursor) {
        None => None,
        Some(id) => {
            let at = repo::audit::position(conn, id)?.ok_or_else(|| {
                Invalid::new("cursor", "a next_cursor value from a previous page")
            })?;
            Some((at, id.to_owned()))
        }
    };
    let mut rows = repo::audit::search(
        conn,
        &AuditQuery {
            actor: nonempty(&f.actor),
            action_prefix: nonempty(&f.action),
            target: nonempty(&f.target),
            since,
            after,
            oldest_first: f.oldest_first,
            limit: limit + 1,
        },
    )?;
    let more = rows.len() > usize::try_from(limit).unwrap_or(usize::MAX);
    rows.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
    let items: Vec<AuditEntry> = rows
        .into_iter()
        .map(|r| AuditEntry {
            id: r.id,
            at: from_db(r.at),
            actor: r.actor,
            action: r.action,
            target: r.target,
            ip: r.ip,
            detail: r.detail,
        })
        .collect();
    let next_cursor = if more {
        items.last().map(|e| e.id.clone())
    } else {
        None
    };
    Ok(AuditPage { items, next_cursor })
}

/// The first page's entries (the console, which shows one page).
pub fn list(conn: &mut DbConn, f: &AuditFilter) -> ServiceResult<Vec<AuditEntry>> {
    Ok(page(conn, f)?.items)
}

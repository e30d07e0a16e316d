//! Reading the audit log: newest first, filtered by actor, action prefix
//! and target.

use serde::Serialize;
use time::OffsetDateTime;

use super::ServiceResult;
use crate::clock::from_db;
use crate::store::{DbConn, repo};

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct AuditEntry {
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
    pub limit: Option<i64>,
}

fn nonempty(v: &Option<String>) -> Option<&str> {
    v.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

pub fn list(conn: &mut DbConn, f: &AuditFilter) -> ServiceResult<Vec<AuditEntry>> {
    let rows = repo::audit::search(
        conn,
        nonempty(&f.actor),
        nonempty(&f.action),
        nonempty(&f.target),
        f.limit.unwrap_or(100).clamp(1, 1000),
    )?;
    Ok(rows
        .into_iter()
        .map(|r| AuditEntry {
            at: from_db(r.at),
            actor: r.actor,
            action: r.action,
            target: r.target,
            ip: r.ip,
            detail: r.detail,
        })
        .collect())
}

//! The admin API's view of clients as versioned, paged objects: the
//! client list a page at a time (cursor), and changes guarded by the
//! `ETag` a GET returned (`If-Match`: optimistic concurrency, so two
//! admins editing one client cannot silently overwrite each other).

use serde::Serialize;
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use super::clients::{self, ClientChanges, ClientView};
use super::{ServiceError, ServiceResult};
use crate::domain::alg::SigningAlg;
use crate::domain::client::Client;
use crate::store::{DbConn, repo};

/// One page of the client list (the admin API).
#[derive(Debug, Serialize)]
pub struct ClientPage {
    pub items: Vec<ClientView>,
    /// Pass as `cursor` for the next page; `None` on the last.
    pub next_cursor: Option<String>,
}

/// Clients by name (then id), `limit` (1..=1000, default 100) at a time,
/// after the client `cursor` names (a previous page's `next_cursor`).
pub fn page(
    conn: &mut DbConn,
    cursor: Option<&str>,
    limit: Option<i64>,
) -> ServiceResult<ClientPage> {
    let limit = limit.unwrap_or(100).clamp(1, 1000);
    let after = match cursor.map(str::trim).filter(|c| !c.is_empty()) {
        None => None,
        Some(id) => {
            let row = repo::clients::by_id(conn, id)?.ok_or_else(|| {
                crate::domain::Invalid::new("cursor", "a next_cursor value from a previous page")
            })?;
            Some((row.name, row.client_id))
        }
    };
    let after_ref = after.as_ref().map(|(n, i)| (n.as_str(), i.as_str()));
    let mut rows = repo::clients::page(conn, after_ref, limit + 1)?;
    let size = usize::try_from(limit).unwrap_or(usize::MAX);
    let more = rows.len() > size;
    rows.truncate(size);
    let items = rows
        .into_iter()
        .map(|r| Client::from_row(r).map(|c| c.view()))
        .collect::<ServiceResult<Vec<_>>>()?;
    let next_cursor = if more {
        items.last().map(|c| c.client_id.clone())
    } else {
        None
    };
    Ok(ClientPage { items, next_cursor })
}

/// The strong entity tag of an object's JSON representation: changes
/// whenever anything an admin sees changes.
pub fn etag<T: Serialize>(value: &T) -> ServiceResult<String> {
    let body = serde_json::to_vec(value).map_err(|e| ServiceError::Internal(e.to_string()))?;
    let digest = Sha256::digest(&body);
    let hex: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
    Ok(format!("\"{hex}\""))
}

/// RFC 9110 13.1.1: passes without `If-Match`, with `*` (the object
/// exists), or when one of the listed strong tags is `current`'s. Weak
/// tags (`W/…`) never match.
pub fn check_if_match(current: &str, if_match: Option<&str>) -> ServiceResult<()> {
    let Some(header) = if_match else {
        return Ok(());
    };
    let matches = header
        .split(',')
        .map(str::trim)
        .any(|t| t == "*" || t == current);
    if matches {
        Ok(())
    } else {
        Err(ServiceError::PreconditionFailed(format!(
            "the client changed since it was read (its ETag is now {current}); read it again"
        )))
    }
}

/// A client as the admin API shows it, with its ETag.
pub fn show(conn: &mut DbConn, client_id: &str) -> ServiceResult<(ClientView, String)> {
    let view = clients::find(conn, client_id)?.view();
    let tag = etag(&view)?;
    Ok((view, tag))
}

/// [`clients::update`] if the client is still as `if_match` says; the new
/// view and ETag.
pub fn update(
    conn: &mut DbConn,
    client_id: &str,
    if_match: Option<&str>,
    changes: ClientChanges,
    signing_algs: &[SigningAlg],
    now: OffsetDateTime,
) -> ServiceResult<(ClientView, String)> {
    let (_, current) = show(conn, client_id)?;
    check_if_match(&current, if_match)?;
    let view = clients::update(conn, client_id, changes, signing_algs, now)?;
    let tag = etag(&view)?;
    Ok((view, tag))
}

/// [`clients::delete`] if the client is still as `if_match` says.
pub fn delete(conn: &mut DbConn, client_id: &str, if_match: Option<&str>) -> ServiceResult<()> {
    let (_, current) = show(conn, client_id)?;
    check_if_match(&current, if_match)?;
    clients::delete(conn, client_id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn if_match_rules() {
        let tag = etag(&serde_json::json!({"a": 1})).unwrap();
        assert!(tag.starts_with('"') && tag.ends_with('"') && tag.len() == 34);
        assert_ne!(tag, etag(&serde_json::json!({"a": 2})).unwrap());
        assert!(check_if_match(&tag, None).is_ok());
        assert!(check_if_match(&tag, Some("*")).is_ok());
        assert!(check_if_match(&tag, Some(&tag)).is_ok());
        assert!(check_if_match(&tag, Some(&format!("\"x\", {tag}"))).is_ok());
        for stale in ["\"x\"", "", &format!("W/{tag}"), tag.trim_matches('"')] {
            assert!(
                matches!(
                    check_if_match(&tag, Some(stale)),
                    Err(ServiceError::PreconditionFailed(_))
                ),
                "{stale:?}"
            );
        }
    }
}

//! What administrators see and do about sign-outs: a client's delivery
//! status, a user's sessions, and ending them all.

use serde::Serialize;
use time::OffsetDateTime;

use super::{Ended, LogoutPolicy, Which, end_sessions};
use crate::clock::from_db;
use crate::service::account::{self, SessionView};
use crate::service::{ServiceError, ServiceResult, users};
use crate::store::models::LogoutOutboxRow;
use crate::store::{DbConn, repo};

/// How many recent logout tokens a client's status lists.
pub const RECENT: i64 = 20;

/// One logout token (an ended session, for one client) and where its
/// delivery stands.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct DeliveryView {
    pub id: String,
    pub sid: String,
    pub user_id: String,
    /// `pending`, `delivered` or `gave_up`.
    pub state: &'static str,
    pub attempts: i32,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    pub next_attempt_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub delivered_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub gave_up_at: Option<OffsetDateTime>,
    pub last_error: Option<String>,
}

impl From<LogoutOutboxRow> for DeliveryView {
    fn from(r: LogoutOutboxRow) -> Self {
        let state = match (r.delivered_at, r.gave_up_at) {
            (Some(_), _) => "delivered",
            (None, Some(_)) => "gave_up",
            (None, None) => "pending",
        };
        Self {
            state,
            next_attempt_at: (state == "pending").then(|| from_db(r.next_attempt_at)),
            id: r.id,
            sid: r.sid,
            user_id: r.user_id,
            attempts: r.attempts,
            created_at: from_db(r.created_at),
            delivered_at: r.delivered_at.map(from_db),
            gave_up_at: r.gave_up_at.map(from_db),
            last_error: r.last_error,
        }
    }
}

/// A client's back-channel logout deliveries.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct DeliveryStatus {
    pub client_id: String,
    pub backchannel_logout_uri: Option<String>,
    /// Logout tokens still to deliver.
    pub pending: i64,
    /// Logout tokens given up (kept until housekeeping purges them).
    pub given_up: i64,
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_success_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_failure_at: Option<OffsetDateTime>,
    /// What went wrong the last time (`HTTP 500`, `connection failed …`).
    pub last_failure: Option<String>,
    /// The latest logout tokens, newest first.
    pub recent: Vec<DeliveryView>,
}

pub fn client_status(conn: &mut DbConn, client_id: &str) -> ServiceResult<DeliveryStatus> {
    let client = repo::clients::by_id(conn, client_id)?.ok_or_else(|| ServiceError::NotFound {
        what: "client",
        id: client_id.to_owned(),
    })?;
    let failure = repo::logout::last_failure(conn, client_id)?;
    Ok(DeliveryStatus {
        client_id: client.client_id,
        backchannel_logout_uri: client.backchannel_logout_uri,
        pending: repo::logout::pending_for_client(conn, client_id)?,
        given_up: repo::logout::given_up_for_client(conn, client_id)?,
        last_success_at: repo::logout::last_delivered(conn, client_id)?.map(from_db),
        last_failure_at: failure.as_ref().map(|f| from_db(f.at)),
        last_failure: failure.and_then(|f| f.detail),
        recent: repo::logout::recent_for_client(conn, client_id, RECENT)?
            .into_iter()
            .map(DeliveryView::from)
            .collect(),
    })
}

/// The user's sessions (signed in, last seen, IP, browser), newest first,
/// as My account lists them.
pub fn user_sessions(conn: &mut DbConn, username: &str) -> ServiceResult<Vec<SessionView>> {
    let user = users::find(conn, username)?;
    account::sessions(conn, &user.id, "")
}

/// Ends every session of the user (an admin's "End all sessions"): a
/// sign-out of each, with back-channel logout.
pub fn end_user_sessions(
    conn: &mut DbConn,
    username: &str,
    policy: LogoutPolicy,
    now: OffsetDateTime,
) -> ServiceResult<Ended> {
    let user = users::find(conn, username)?;
    Ok(end_sessions(
        conn,
        Which::All { user_id: &user.id },
        policy,
        now,
    )?)
}

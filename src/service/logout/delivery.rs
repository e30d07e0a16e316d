//! The delivery worker: every instance runs one (`latchkey serve`). It
//! claims due outbox rows with a conditional UPDATE, so two instances
//! never send the same row at once; signs a fresh logout token per attempt
//! (new `jti`, `iat`, `exp`), with the key and algorithm of the client's
//! ID tokens; POSTs it as `logout_token` to the client's *current*
//! `backchannel_logout_uri`, never following redirects, with a timeout;
//! and records the outcome. 200 and 204 are delivered; anything else is a
//! failure, retried with exponential back-off and jitter until
//! `logout.max_attempts` or `logout.max_age_secs`, then given up with an
//! audit-log entry. Delivery is at least once: a worker that dies after
//! the POST but before recording it leaves the row to be sent again once
//! its claim runs out.

use std::sync::Arc;
use std::time::Duration as StdDuration;

use diesel::Connection;
use time::{Duration, OffsetDateTime, PrimitiveDateTime};
use tokio::sync::watch;

use crate::clock::{SharedClock, from_db, to_db};
use crate::domain::audit::Actor;
use crate::domain::client::Client;
use crate::keys::KeyStore;
use crate::oidc::logout_token::{self, LogoutTokenInput};
use crate::store::models::{LogoutDeliveryAttemptRow, LogoutOutboxRow};
use crate::store::repo::logout::Outcome;
use crate::store::{Db, DbConn, StoreError, audit, repo};
use crate::telemetry::metrics::{DeliveryResult, Metrics};

/// Rows one instance delivers at the same time.
pub const CONCURRENCY: usize = 8;
/// The first retry waits this long; each further one twice as long…
pub const BACKOFF_BASE_SECS: i64 = 1;
/// …up to this.
pub const BACKOFF_CAP_SECS: i64 = 300;
/// A claim outlives the request timeout by this much (signing, storage).
const LEASE_MARGIN_SECS: i64 = 30;
/// Longest `last_error` / attempt detail kept.
const REASON_MAX: usize = 200;

/// The `[logout]` settings the worker uses.
#[derive(Debug, Clone)]
pub struct DeliverySettings {
    pub timeout: StdDuration,
    pub max_attempts: u32,
    pub max_age: Duration,
    pub poll_interval: StdDuration,
}

impl DeliverySettings {
    pub fn from_config(c: &crate::config::LogoutConfig) -> Self {
        Self {
            timeout: StdDuration::from_secs(c.delivery_timeout_secs),
            max_attempts: c.max_attempts,
            max_age: Duration::seconds(i64::try_from(c.max_age_secs).unwrap_or(i64::MAX)),
            poll_interval: StdDuration::from_millis(c.poll_interval_ms),
        }
    }

    fn lease(&self) -> Duration {
        Duration::seconds(i64::try_from(self.timeout.as_secs()).unwrap_or(60) + LEASE_MARGIN_SECS)
    }
}

/// The wait before the next attempt after `failures` failed ones (1 s,
/// 2 s, 4 s, … up to 5 minutes), plus up to half of it again as jitter
/// (`jitter` is a random u32), so many tokens for one relying party that
/// came back do not all arrive in the same second.
pub fn backoff(failures: u32, jitter: u32) -> Duration {
    let exp = failures.saturating_sub(1).min(20);
    let base_ms = (BACKOFF_BASE_SECS * 1000)
        .saturating_mul(1i64 << exp)
        .min(BACKOFF_CAP_SECS * 1000);
    let extra = (base_ms / 2) * i64::from(jitter) / i64::from(u32::MAX);
    Duration::milliseconds(base_ms + extra)
}

fn random_u32() -> u32 {
    let mut b = [0u8; 4];
    match getrandom::fill(&mut b) {
        Ok(()) => u32::from_le_bytes(b),
        Err(_) => u32::MAX / 2,
    }
}

/// A claimed row, with its client as registered now.
struct Claimed {
    row: LogoutOutboxRow,
    client: Client,
    lease: PrimitiveDateTime,
}

/// What one attempt came to.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Verdict {
    Delivered(u16),
    Failed {
        status: Option<u16>,
        reason: String,
    },
    /// Not sent, and never will be.
    Abandon(String),
}

/// Claims up to `limit` due rows until `lease`.
fn claim_due(
    conn: &mut DbConn,
    now: PrimitiveDateTime,
    lease: PrimitiveDateTime,
    limit: usize,
) -> diesel::QueryResult<Vec<Claimed>> {
    let mut claimed = Vec::new();
    let candidates = repo::logout::due(conn, now, i64::try_from(limit * 2).unwrap_or(16))?;
    for id in candidates {
        if claimed.len() >= limit {
            break;
        }
        if repo::logout::claim(conn, &id, now, lease)? == 0 {
            continue; // another instance was quicker
        }
        let Some(row) = repo::logout::get(conn, &id)? else {
            continue;
        };
        // A deleted client's rows are gone with it (ON DELETE CASCADE).
        let Some(client) = repo::clients::by_id(conn, &row.client_id)? else {
            continue;
        };
        match Client::from_row(client) {
            Ok(client) => claimed.push(Claimed { row, client, lease }),
            Err(e) => tracing::error!(error = %e, "logout delivery: unreadable client"),
        }
    }
    Ok(claimed)
}

/// Writes an attempt's outcome: the row (only while the claim is still
/// ours), the attempt, and, when it gives up, the audit entry.
fn record(
    conn: &mut DbConn,
    c: &Claimed,
    verdict: &Verdict,
    settings: &DeliverySettings,
    now: OffsetDateTime,
) -> diesel::QueryResult<bool> {
    let attempt = c.row.attempts + 1;
    let (status, delivered, reason) = match verdict {
        Verdict::Delivered(s) => (Some(*s), true, None),
        Verdict::Failed { status, reason } => (*status, false, Some(reason.clone())),
        Verdict::Abandon(reason) => (None, false, Some(reason.clone())),
    };
    let too_old = now - from_db(c.row.created_at) >= settings.max_age;
    let give_up = match verdict {
        Verdict::Delivered(_) => false,
        Verdict::Abandon(_) => true,
        Verdict::Failed { .. } => {
            u32::try_from(attempt).unwrap_or(u32::MAX) >= settings.max_attempts || too_old
        }
    };
    let next = now + backoff(u32::try_from(attempt).unwrap_or(1), random_u32());
    let outcome = Outcome {
        attempts: attempt,
        claimed_until: None,
        next_attempt_at: if delivered || give_up {
            c.row.next_attempt_at
        } else {
            to_db(next)
        },
        delivered_at: delivered.then(|| to_db(now)),
        gave_up_at: give_up.then(|| to_db(now)),
        last_error: reason.clone(),
    };
    conn.transaction(|conn| {
        // Claim first: the row update is the first write.
        if repo::logout::finish(conn, &c.row.id, c.lease, &outcome)? == 0 {
            return Ok(false);
        }
        repo::logout::insert_attempt(
            conn,
            &LogoutDeliveryAttemptRow {
                outbox_id: c.row.id.clone(),
                attempt,
                at: to_db(now),
                http_status: status.map(i32::from),
                delivered,
                detail: reason.clone(),
            },
        )?;
        if give_up {
            audit::record(
                conn,
                &Actor::system(),
                "logout.gave_up",
                &c.row.client_id,
                Some(format!(
                    "back-channel logout not delivered: sid={} user={} attempts={} last_error={}",
                    c.row.sid,
                    c.row.user_id,
                    attempt,
                    reason.as_deref().unwrap_or("-")
                )),
                now,
            )?;
        }
        Ok(true)
    })
}

fn short(reason: String) -> String {
    reason.chars().take(REASON_MAX).collect()
}

/// Why a request failed, in a few words (never the token or the body).
fn request_failure(e: &reqwest::Error, timeout: StdDuration) -> String {
    let mut source: Option<&dyn std::error::Error> = Some(e);
    while let Some(cause) = source {
        if cause.to_string().contains(super::egress::NOT_PUBLIC) {
            return format!("the host {}", super::egress::NOT_PUBLIC);
        }
        source = cause.source();
    }
    if e.is_timeout() {
        format!("timed out after {} s", timeout.as_secs())
    } else if e.is_connect() {
        "connection failed (refused or unreachable)".into()
    } else if e.is_builder() {
        "the registered URI is not usable".into()
    } else {
        "request failed".into()
    }
}

/// A delivery worker. Cheap to clone (shared handles).
#[derive(Clone)]
pub struct Worker {
    db: Db,
    keys: KeyStore,
    clock: SharedClock,
    issuer: Arc<str>,
    settings: Arc<DeliverySettings>,
    http: super::egress::Egress,
    metrics: Metrics,
}

/// Stops a running worker.
pub struct WorkerHandle {
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl WorkerHandle {
    /// Asks the worker to stop and waits for it: deliveries in flight
    /// finish (within the request timeout) and are recorded, so no claim
    /// is left behind.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}

impl Worker {
    pub fn new(
        db: Db,
        keys: KeyStore,
        clock: SharedClock,
        issuer: &str,
        settings: DeliverySettings,
    ) -> Result<Self, String> {
        let http = super::egress::Egress::new(settings.timeout)?;
        Ok(Self {
            db,
            keys,
            clock,
            issuer: Arc::from(issuer),
            settings: Arc::new(settings),
            http,
            metrics: Metrics::disabled(),
        })
    }

    /// This worker, counting delivery attempts by result in `metrics`.
    pub fn with_metrics(mut self, metrics: Metrics) -> Self {
        self.metrics = metrics;
        self
    }

    /// Runs the worker on the current runtime until [`WorkerHandle::stop`].
    pub fn spawn(self) -> WorkerHandle {
        let (stop, rx) = watch::channel(false);
        let task = actix_web::rt::spawn(self.run(rx));
        WorkerHandle { stop, task }
    }

    async fn run(self, mut stop: watch::Receiver<bool>) {
        loop {
            let notified = super::wake_signal().notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let claimed = self.run_once().await;
            if *stop.borrow() {
                break;
            }
            if claimed >= CONCURRENCY {
                continue; // more may be due
            }
            tokio::select! {
                _ = tokio::time::sleep(self.settings.poll_interval) => {}
                _ = &mut notified => {}
                changed = stop.changed() => if changed.is_err() || *stop.borrow() { break },
            }
        }
    }

    /// Claims what is due (up to [`CONCURRENCY`] rows) and delivers it,
    /// concurrently; returns how many rows it claimed.
    pub async fn run_once(&self) -> usize {
        let now = self.clock.now();
        let (now_db, lease) = (to_db(now), to_db(now + self.settings.lease()));
        let claimed = match self
            .db
            .run(move |conn| claim_due(conn, now_db, lease, CONCURRENCY).map_err(StoreError::from))
            .await
        {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, "logout delivery: cannot read the outbox");
                return 0;
            }
        };
        let n = claimed.len();
        let mut set = tokio::task::JoinSet::new();
        for c in claimed {
            let worker = self.clone();
            set.spawn(async move { worker.deliver(c).await });
        }
        while set.join_next().await.is_some() {}
        n
    }

    async fn deliver(&self, c: Claimed) {
        let now = self.clock.now();
        let verdict = if now - from_db(c.row.created_at) >= self.settings.max_age {
            Verdict::Abandon("older than logout.max_age_secs; not sent".into())
        } else {
            match c.client.settings.backchannel_logout_uri.clone() {
                None => {
                    Verdict::Abandon("the client no longer has a backchannel_logout_uri".into())
                }
                Some(uri) => self.send(&c, &uri, now).await,
            }
        };
        self.metrics.logout_delivery(match &verdict {
            Verdict::Delivered(_) => DeliveryResult::Delivered,
            Verdict::Failed { .. } => DeliveryResult::Failed,
            Verdict::Abandon(_) => DeliveryResult::Abandoned,
        });
        match &verdict {
            Verdict::Delivered(status) => tracing::info!(
                client_id = %c.row.client_id, attempt = c.row.attempts + 1, status,
                "logout token delivered"
            ),
            Verdict::Failed { reason, .. } | Verdict::Abandon(reason) => tracing::warn!(
                client_id = %c.row.client_id, attempt = c.row.attempts + 1, reason = %reason,
                "logout token not delivered"
            ),
        }
        let settings = self.settings.clone();
        let at = self.clock.now();
        let client_id = c.row.client_id.clone();
        let result = self
            .db
            .run(move |conn| record(conn, &c, &verdict, &settings, at).map_err(StoreError::from))
            .await;
        match result {
            Ok(true) => {}
            Ok(false) => tracing::warn!(
                %client_id,
                "logout delivery: the claim ran out before the outcome was recorded"
            ),
            Err(e) => {
                tracing::warn!(%client_id, error = %e, "logout delivery: outcome not recorded")
            }
        }
    }

    /// Signs a fresh logout token and POSTs it to `uri`.
    async fn send(&self, c: &Claimed, uri: &str, now: OffsetDateTime) -> Verdict {
        let token = match self.sign(c, now) {
            Ok(t) => t,
            Err(e) => {
                tracing::error!(error = %e, "logout token signing failed");
                return Verdict::Failed {
                    status: None,
                    reason: "signing failed".into(),
                };
            }
        };
        let self_registered = c.client.registration_token_hash.is_some();
        let http = match self.http.for_uri(uri, self_registered) {
            Ok(http) => http,
            Err(reason) => return Verdict::Abandon(reason),
        };
        let response = http
            .post(uri)
            .form(&[("logout_token", token.as_str())])
            .send()
            .await;
        match response {
            Ok(r) => match r.status().as_u16() {
                s @ (200 | 204) => Verdict::Delivered(s),
                s @ 300..=399 => Verdict::Failed {
                    status: Some(s),
                    reason: format!("HTTP {s} (redirects are not followed)"),
                },
                s => Verdict::Failed {
                    status: Some(s),
                    reason: format!("HTTP {s}"),
                },
            },
            Err(e) => Verdict::Failed {
                status: None,
                reason: short(request_failure(&e, self.settings.timeout)),
            },
        }
    }

    fn sign(&self, c: &Claimed, now: OffsetDateTime) -> Result<String, String> {
        let alg = c
            .client
            .settings
            .id_token_alg
            .unwrap_or(self.keys.id_token_alg());
        let jti = uuid::Uuid::new_v4().to_string();
        let claims = logout_token::claims(LogoutTokenInput {
            issuer: &self.issuer,
            client_id: &c.row.client_id,
            subject: &c.row.user_id,
            sid: &c.row.sid,
            now,
            jti: &jti,
        })
        .map_err(|e| e.to_string())?;
        self.keys
            .current()
            .sign(alg, logout_token::TYP, &claims)
            .map_err(|e| e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap_with_bounded_jitter() {
        assert_eq!(backoff(1, 0), Duration::seconds(1));
        assert_eq!(backoff(2, 0), Duration::seconds(2));
        assert_eq!(backoff(3, 0), Duration::seconds(4));
        assert_eq!(backoff(9, 0), Duration::seconds(256));
        assert_eq!(backoff(10, 0), Duration::seconds(300));
        assert_eq!(backoff(u32::MAX, 0), Duration::seconds(300));
        assert_eq!(backoff(1, u32::MAX), Duration::milliseconds(1500));
        assert_eq!(backoff(10, u32::MAX), Duration::seconds(450));
        for j in [1, 1000, u32::MAX / 3] {
            let d = backoff(4, j);
            assert!(
                d >= Duration::seconds(8) && d <= Duration::seconds(12),
                "{d}"
            );
        }
        assert_eq!(
            backoff(0, 0),
            Duration::seconds(1),
            "never less than the base"
        );
    }
}

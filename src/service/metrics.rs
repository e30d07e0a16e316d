//! A scrape of `GET /metrics`: reads what the gauges describe (the pool,
//! the age of each active signing key, the logout outbox backlog) and
//! encodes every metric (`telemetry::metrics`).

use std::time::Duration;

use time::OffsetDateTime;

use crate::keys::KeyStore;
use crate::store::{Db, StoreError, repo};
use crate::telemetry::metrics::{Metrics, Sample, age_secs};

/// How long a scrape waits for the backlog count before answering
/// without it (the gauge keeps its last value): a scrape must not queue
/// behind a stalled database.
const BACKLOG_TIMEOUT: Duration = Duration::from_secs(2);

/// The encoded metrics, or `None` when metrics are off.
pub async fn scrape(
    db: &Db,
    keys: &KeyStore,
    metrics: &Metrics,
    now: OffsetDateTime,
) -> Option<String> {
    if !metrics.is_enabled() {
        return None;
    }
    let pool = db.pool_state();
    let set = keys.current();
    let mut algs: Vec<_> = set.keys().iter().map(|k| k.alg).collect();
    algs.sort();
    algs.dedup();
    let key_ages = algs
        .into_iter()
        .filter_map(|alg| set.active(alg))
        .filter_map(|k| k.activated_at.map(|at| (k.alg, age_secs(now, at))))
        .collect();
    let count = db.run(|conn| repo::logout::backlog(conn).map_err(StoreError::from));
    let logout_backlog = match tokio::time::timeout(BACKLOG_TIMEOUT, count).await {
        Ok(Ok(n)) => Some(n),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "metrics: cannot count the logout outbox");
            None
        }
        Err(_) => {
            tracing::warn!("metrics: counting the logout outbox timed out");
            None
        }
    };
    metrics.render(&Sample {
        pool_connections: pool.connections,
        pool_idle: pool.idle,
        pool_max: pool.max,
        key_ages,
        logout_backlog,
    })
}

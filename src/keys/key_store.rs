//! [`KeyStore`]: the key set one instance signs and verifies with, kept in
//! step with the database by [`KeyStore::refresh`] (on an interval, on
//! SIGHUP, and after local changes).

use std::path::Path;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use time::OffsetDateTime;
use zeroize::Zeroizing;

use super::keyset::{KeySet, fingerprint};
use super::lifecycle::{LifecyclePolicy, Transition};
use super::{Kek, KeyError, SigningAlg, ops};
use crate::clock::SharedClock;
use crate::config::Config;
use crate::domain::audit::Actor;
use crate::store::{Db, DbConn, repo};
use crate::telemetry::metrics::{KeyEvent, Metrics};

#[derive(Clone)]
pub struct KeyStore {
    inner: Arc<Inner>,
    /// Where lifecycle steps this instance applies are counted.
    metrics: Metrics,
}

struct Inner {
    current: RwLock<Arc<KeySet>>,
    kek: Kek,
    /// Derived once from the KEK: keys the refresh-token successor MAC.
    refresh_successor_key: Arc<Zeroizing<[u8; 32]>>,
    policy: LifecyclePolicy,
    pub id_token_alg: SigningAlg,
    pub access_token_alg: SigningAlg,
    jwks_max_age_secs: u64,
}

const REFRESH_SUCCESSOR_PURPOSE: &str = "latchkey refresh-token successor v1";

/// Loads the KEK for `config`: the file is created only for an empty store.
pub fn load_kek(conn: &mut DbConn, config: &Config) -> Result<Kek, KeyError> {
    let existing = repo::signing_keys::count(conn)?;
    Ok(Kek::load_or_create(
        Path::new(&config.keys.kek_file),
        existing,
    )?)
}

impl KeyStore {
    /// Opens the store: loads the KEK, applies due lifecycle transitions
    /// (the first start generates the initial keys) and loads the set. A
    /// missing or wrong KEK fails here, before anything is written.
    pub fn open(
        conn: &mut DbConn,
        config: &Config,
        now: OffsetDateTime,
    ) -> Result<KeyStore, KeyError> {
        let kek = load_kek(conn, config)?;
        // Prove the KEK opens what is stored before changing anything.
        let rows = repo::signing_keys::all(conn)?;
        KeySet::build(&rows, &kek)?;
        let policy = LifecyclePolicy::from_config(config);
        ops::apply_lifecycle(conn, &kek, now, &policy, &Actor::system())?;
        let set = KeySet::build(&repo::signing_keys::all(conn)?, &kek)?;
        Ok(KeyStore {
            inner: Arc::new(Inner {
                current: RwLock::new(Arc::new(set)),
                refresh_successor_key: Arc::new(kek.derive(REFRESH_SUCCESSOR_PURPOSE)),
                kek,
                policy,
                id_token_alg: config.keys.id_token_alg,
                access_token_alg: config.keys.access_token_alg,
                jwks_max_age_secs: config.keys.jwks_max_age_secs,
            }),
            metrics: Metrics::disabled(),
        })
    }

    /// This store, counting the lifecycle steps it applies into `metrics`
    /// (and handing `metrics` to the token endpoint: `TokenContext`).
    pub fn with_metrics(mut self, metrics: Metrics) -> Self {
        self.metrics = metrics;
        self
    }

    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// The key that derives a refresh token's successor from the token
    /// (`service::token::refresh_token`).
    pub fn refresh_successor_key(&self) -> Arc<Zeroizing<[u8; 32]>> {
        self.inner.refresh_successor_key.clone()
    }

    /// The current key set (cheap: an `Arc` clone).
    pub fn current(&self) -> Arc<KeySet> {
        match self.inner.current.read() {
            Ok(guard) => guard.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    pub fn policy(&self) -> &LifecyclePolicy {
        &self.inner.policy
    }

    pub fn kek(&self) -> &Kek {
        &self.inner.kek
    }

    pub fn id_token_alg(&self) -> SigningAlg {
        self.inner.id_token_alg
    }

    pub fn access_token_alg(&self) -> SigningAlg {
        self.inner.access_token_alg
    }

    pub fn jwks_max_age_secs(&self) -> u64 {
        self.inner.jwks_max_age_secs
    }

    /// Applies due transitions and reloads from the database (blocking).
    /// Returns whether the set changed. On error the old set stays.
    pub fn refresh(&self, conn: &mut DbConn, now: OffsetDateTime) -> Result<bool, KeyError> {
        let applied = ops::apply_lifecycle(
            conn,
            &self.inner.kek,
            now,
            &self.inner.policy,
            &Actor::system(),
        )?;
        for t in &applied {
            self.metrics.key_event(match t {
                Transition::Generate { .. } => KeyEvent::Generate,
                Transition::Activate { .. } => KeyEvent::Activate,
                Transition::Retire { .. } => KeyEvent::Retire,
                Transition::Remove { .. } => KeyEvent::Remove,
            });
        }
        let rows = repo::signing_keys::all(conn)?;
        if fingerprint(&rows) == self.current().fingerprint() {
            return Ok(false);
        }
        let set = KeySet::build(&rows, &self.inner.kek)?;
        let kids: Vec<String> = set
            .keys()
            .iter()
            .map(|k| format!("{}:{}", k.kid, k.state))
            .collect();
        match self.inner.current.write() {
            Ok(mut guard) => *guard = Arc::new(set),
            Err(poisoned) => *poisoned.into_inner() = Arc::new(set),
        }
        tracing::info!(keys = %kids.join(" "), "signing keys reloaded");
        Ok(true)
    }

    /// Refreshes from async code, on the blocking pool.
    pub async fn refresh_async(&self, db: &Db, clock: &SharedClock) -> Result<bool, KeyError> {
        let store = self.clone();
        let now = clock.now();
        db.run(move |conn| store.refresh(conn, now)).await
    }

    /// Reloads every `interval` and on SIGHUP, until the runtime stops.
    /// The first reload is one interval after the start: the set was just
    /// loaded ([`KeyStore::open`]), and an immediate reload would only race
    /// whatever else starts with the server.
    pub fn spawn_reloader(&self, db: Db, clock: SharedClock, interval: Duration) {
        let store = self.clone();
        actix_web::rt::spawn(async move {
            let start = tokio::time::Instant::now() + interval;
            let mut tick = actix_web::rt::time::interval_at(start, interval);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            #[cfg(unix)]
            let mut hup = actix_web::rt::signal::unix::signal(
                actix_web::rt::signal::unix::SignalKind::hangup(),
            )
            .ok();
            loop {
                #[cfg(unix)]
                {
                    match hup.as_mut() {
                        Some(h) => {
                            tokio::select! {
                                _ = tick.tick() => {}
                                _ = h.recv() => tracing::info!("SIGHUP: reloading signing keys"),
                            }
                        }
                        None => {
                            tick.tick().await;
                        }
                    }
                }
                #[cfg(not(unix))]
                tick.tick().await;
                if let Err(e) = store.refresh_async(&db, &clock).await {
                    tracing::error!(error = %e, "reloading signing keys failed; keeping the current set");
                }
            }
        });
    }
}

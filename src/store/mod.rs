//! Storage: one diesel code path over SQLite and PostgreSQL.
//!
//! [`DbConn`] is a `MultiConnection` enum; [`Manager`] is an r2d2 manager that
//! picks the backend from the URL scheme and prepares SQLite connections
//! (WAL, busy timeout, foreign keys). Repository functions in [`repo`] take
//! `&mut DbConn` so several compose in one transaction. From async code, use
//! [`Db::run`], which moves the blocking work off actix's event loop.
//!
//! A transaction that writes must write first ("claim first", e.g. the
//! conditional UPDATE that uses a code): on SQLite a deferred transaction
//! that reads, then writes, fails with SQLITE_BUSY instead of waiting when
//! another writer committed in between (busy_timeout does not apply).

pub mod audit;
pub mod backup;
pub mod migrations;
pub mod models;
pub mod repo;
pub mod schema;

use std::time::Duration;

use diesel::connection::SimpleConnection;
use diesel::pg::PgConnection;
use diesel::prelude::*;
use diesel::sqlite::SqliteConnection;

pub use crate::config::database_url::{DatabaseUrl, DatabaseUrlError, redact as redact_url};
use crate::telemetry::metrics::Metrics;

#[derive(diesel::MultiConnection)]
pub enum DbConn {
    Sqlite(SqliteConnection),
    Pg(PgConnection),
}

pub type Pool = r2d2::Pool<Manager>;
pub type PooledConn = r2d2::PooledConnection<Manager>;

/// How long SQLite waits on a locked database before giving up.
const SQLITE_BUSY_TIMEOUT_MS: u32 = 5_000;

/// Errors from the storage layer, as the services see them.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// No connection could be had: the database is down or overloaded.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    #[error("database error: {0}")]
    Query(diesel::result::Error),
}

impl From<diesel::result::Error> for StoreError {
    fn from(e: diesel::result::Error) -> Self {
        StoreError::classify(e)
    }
}

impl StoreError {
    /// Query errors caused by a lost connection count as unavailability.
    fn classify(e: diesel::result::Error) -> StoreError {
        use diesel::result::{DatabaseErrorKind, Error};
        match e {
            Error::DatabaseError(DatabaseErrorKind::ClosedConnection, info) => {
                StoreError::Unavailable(info.message().to_owned())
            }
            Error::DatabaseError(DatabaseErrorKind::Unknown, ref info)
                if info.message().contains("server closed the connection")
                    || info.message().contains("connection to server")
                    || info.message().contains("no connection to the server") =>
            {
                StoreError::Unavailable(info.message().to_owned())
            }
            // The disk under the database is full (SQLite's SQLITE_FULL,
            // PostgreSQL's 53100 disk_full): nothing is written, and it can
            // pass once an operator frees space, so it is an outage, not a
            // bug: 503 with Retry-After, and an error line for the operator.
            Error::DatabaseError(_, ref info) if is_disk_full(info.message()) => {
                tracing::error!(error = %info.message(), "database storage is full: writes fail until space is freed");
                StoreError::Unavailable(info.message().to_owned())
            }
            other => StoreError::Query(other),
        }
    }
}

fn is_disk_full(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    m.contains("database or disk is full")
        || m.contains("no space left on device")
        || m.contains("could not extend file")
}

/// Builds connections for the pool from a [`DatabaseUrl`].
#[derive(Debug, Clone)]
pub struct Manager {
    url: DatabaseUrl,
}

#[derive(Debug, thiserror::Error)]
pub enum ManagerError {
    #[error(transparent)]
    Connection(#[from] diesel::ConnectionError),
    #[error(transparent)]
    Query(#[from] diesel::result::Error),
    #[error("cannot create directory for the SQLite file: {0}")]
    Io(#[from] std::io::Error),
}

/// Initialises OpenSSL the way rust-openssl does, without an exit handler,
/// before libpq can be the first to use it. libpq negotiates TLS
/// (`sslmode=prefer`) through the same statically linked OpenSSL; had its
/// first call initialised the library, OpenSSL would register
/// `OPENSSL_cleanup` with `atexit`, and a process exiting while another
/// thread still holds OpenSSL state (a server worker, a pool connection)
/// aborts with `free(): invalid pointer`. Idempotent and cheap after the
/// first call.
pub fn init_openssl() {
    openssl::init();
}

impl Manager {
    pub fn new(url: DatabaseUrl) -> Self {
        Self { url }
    }

    pub fn connect_one(&self) -> Result<DbConn, ManagerError> {
        match &self.url {
            DatabaseUrl::Sqlite(path) => {
                let s = path.to_string_lossy();
                if s != ":memory:"
                    && let Some(dir) = path.parent()
                    && !dir.as_os_str().is_empty()
                {
                    std::fs::create_dir_all(dir)?;
                }
                let mut conn = SqliteConnection::establish(&s)?;
                // busy_timeout first. Switching a fresh file to WAL needs a
                // moment of exclusive access; when another process opens it
                // at the same time SQLite may answer "locked" without
                // waiting, so that step is retried briefly.
                let setup = format!(
                    "PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}; PRAGMA journal_mode = WAL; \
                     PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;"
                );
                let mut attempt = 0u64;
                loop {
                    match conn.batch_execute(&setup) {
                        Ok(()) => break,
                        Err(e) if attempt < 40 && e.to_string().contains("locked") => {
                            attempt += 1;
                            std::thread::sleep(Duration::from_millis(10 * attempt));
                        }
                        Err(e) => return Err(e.into()),
                    }
                }
                Ok(DbConn::Sqlite(conn))
            }
            DatabaseUrl::Postgres(url) => {
                init_openssl();
                Ok(DbConn::Pg(PgConnection::establish(url)?))
            }
        }
    }
}

impl r2d2::ManageConnection for Manager {
    type Connection = DbConn;
    type Error = ManagerError;

    fn connect(&self) -> Result<DbConn, ManagerError> {
        self.connect_one()
    }

    fn is_valid(&self, conn: &mut DbConn) -> Result<(), ManagerError> {
        conn.batch_execute("SELECT 1")?;
        Ok(())
    }

    fn has_broken(&self, conn: &mut DbConn) -> bool {
        match conn {
            DbConn::Sqlite(_) => false,
            DbConn::Pg(c) => diesel::r2d2::R2D2Connection::is_broken(c),
        }
    }
}

/// Pool settings taken from the config.
#[derive(Debug, Clone)]
pub struct PoolOptions {
    pub max_size: u32,
    /// Idle connections kept open (and reopened in the background).
    pub min_idle: u32,
    pub connect_timeout: Duration,
}

/// Builds the pool. Fails (naming the URL, never its password) when the
/// database cannot be reached within the timeout.
pub fn build_pool(url: &DatabaseUrl, opts: &PoolOptions) -> Result<Pool, StoreError> {
    let manager = Manager::new(url.clone());
    // Try once directly so the error says why, not just "timed out".
    manager.connect_one().map_err(|e| {
        StoreError::Unavailable(format!(
            "cannot connect to {url}: {}",
            one_line(&e.to_string())
        ))
    })?;
    r2d2::Pool::builder()
        .max_size(opts.max_size)
        .min_idle(Some(opts.min_idle.min(opts.max_size)))
        .connection_timeout(opts.connect_timeout)
        .idle_timeout(Some(Duration::from_secs(300)))
        .error_handler(Box::new(LogErrors))
        .build(manager)
        .map_err(|e| StoreError::Unavailable(format!("cannot connect to {url}: {e}")))
}

/// libpq's messages span lines; start-up errors are one line.
fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[derive(Debug)]
struct LogErrors;

impl r2d2::HandleError<ManagerError> for LogErrors {
    fn handle_error(&self, error: ManagerError) {
        tracing::warn!(error = %error, "database connection failed");
    }
}

/// The pool as request handlers use it.
#[derive(Clone)]
pub struct Db {
    pool: Pool,
    /// Checkout time, tasks waiting for a connection or for the blocking
    /// pool (off unless `[metrics]` is on).
    metrics: Metrics,
}

/// What the pool holds now (`r2d2::Pool::state`), for `/metrics`.
#[derive(Debug, Clone, Copy)]
pub struct PoolState {
    pub connections: u32,
    pub idle: u32,
    pub max: u32,
}

impl Db {
    pub fn new(pool: Pool) -> Self {
        Self {
            pool,
            metrics: Metrics::disabled(),
        }
    }

    /// This handle, recording into `metrics`.
    pub fn with_metrics(mut self, metrics: Metrics) -> Self {
        self.metrics = metrics;
        self
    }

    pub fn pool_state(&self) -> PoolState {
        let s = self.pool.state();
        PoolState {
            connections: s.connections,
            idle: s.idle_connections,
            max: self.pool.max_size(),
        }
    }

    /// Checks out a connection (blocking).
    pub fn get(&self) -> Result<PooledConn, StoreError> {
        self.pool
            .get()
            .map_err(|e| StoreError::Unavailable(e.to_string()))
    }

    /// Runs blocking database work on actix's blocking thread pool.
    pub async fn run<T, E, F>(&self, f: F) -> Result<T, E>
    where
        F: FnOnce(&mut DbConn) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
    {
        let db = self.clone();
        let queued = self.metrics.blocking_queued();
        match actix_web::web::block(move || {
            drop(queued);
            let mut conn = db.checkout()?;
            f(&mut conn)
        })
        .await
        {
            Ok(result) => result,
            Err(_) => Err(E::from(StoreError::Unavailable(
                "blocking task was cancelled".into(),
            ))),
        }
    }

    /// [`Db::get`], timed when metrics are on.
    fn checkout(&self) -> Result<PooledConn, StoreError> {
        if !self.metrics.is_enabled() {
            return self.get();
        }
        let _waiting = self.metrics.pool_waiting();
        let started = std::time::Instant::now();
        let conn = self.get();
        self.metrics.db_checkout(started.elapsed());
        conn
    }

    /// Whether the database answers a trivial query.
    pub fn ping(&self) -> Result<(), StoreError> {
        let mut conn = self.get()?;
        conn.batch_execute("SELECT 1").map_err(StoreError::classify)
    }

    /// [`Db::ping`], but waiting at most `timeout` for a connection, so a
    /// readiness probe gets its answer before the probe's own timeout
    /// rather than after the pool's connect timeout.
    pub fn ping_within(&self, timeout: Duration) -> Result<(), StoreError> {
        let mut conn = self
            .pool
            .get_timeout(timeout)
            .map_err(|e| StoreError::Unavailable(e.to_string()))?;
        conn.batch_execute("SELECT 1").map_err(StoreError::classify)
    }
}

impl DbConn {
    pub fn backend(&self) -> &'static str {
        match self {
            DbConn::Sqlite(_) => "sqlite",
            DbConn::Pg(_) => "postgres",
        }
    }
}

//! The one place that wires things: state, middleware, routes, and the
//! start-up sequence shared by `latchkey serve` and the tests.

use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::Server;
use actix_web::middleware::from_fn;
use actix_web::{App, HttpServer, web};

use crate::clock::SharedClock;
use crate::config::Config;
use crate::http::headers;
use crate::service::logout::delivery::{DeliverySettings, Worker};
use crate::service::sessions::SessionPolicy;
use crate::state::AppState;
use crate::store::{self, DatabaseUrl, Db, PoolOptions};

/// Start-up failures, each with one clear sentence (the CLI exits 2).
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("invalid configuration: {0}")]
    Config(String),
    #[error("database.url: {0}")]
    Database(String),
    #[error("{0}")]
    Migration(String),
    #[error("signing keys: {0}")]
    Keys(String),
    #[error("server.bind: cannot listen on {addr}: {source}")]
    Bind {
        addr: String,
        source: std::io::Error,
    },
    #[error("metrics.bind: cannot listen on {addr}: {source}")]
    MetricsBind {
        addr: String,
        source: std::io::Error,
    },
    #[error("{0}")]
    Other(String),
}

impl From<crate::config::ConfigError> for StartupError {
    fn from(e: crate::config::ConfigError) -> Self {
        StartupError::Config(e.to_string())
    }
}

/// Connects to the database. An unreachable database is an error here,
/// not a hang.
pub fn open_pool(config: &Config) -> Result<Db, StartupError> {
    pool(config, 1)
}

/// [`open_pool`] without idle connections: for one-shot commands. A pool
/// keeping one idle connection reopens it in a background thread after
/// each checkout, and a process exiting meanwhile can crash inside libpq
/// (seen as SIGSEGV at the exit of CLI commands on PostgreSQL).
pub fn open_pool_on_demand(config: &Config) -> Result<Db, StartupError> {
    pool(config, 0)
}

fn pool(config: &Config, min_idle: u32) -> Result<Db, StartupError> {
    let url = DatabaseUrl::parse(&config.database.url)
        .map_err(|e| StartupError::Config(format!("database.url: {e}")))?;
    let opts = PoolOptions {
        max_size: config.database.pool_max_size,
        min_idle,
        connect_timeout: Duration::from_secs(config.database.connect_timeout_secs),
    };
    let pool = store::build_pool(&url, &opts).map_err(|e| match e {
        store::StoreError::Unavailable(m) => StartupError::Database(m),
        other => StartupError::Database(other.to_string()),
    })?;
    Ok(Db::new(pool))
}

/// Applies pending migrations; returns the versions applied.
pub fn migrate(db: &Db) -> Result<Vec<String>, StartupError> {
    let mut conn = db
        .get()
        .map_err(|e| StartupError::Database(e.to_string()))?;
    let applied = store::migrations::run_pending(&mut conn)
        .map_err(|e| StartupError::Migration(e.to_string()))?;
    for version in &applied {
        tracing::info!(%version, "applied migration");
    }
    Ok(applied)
}

/// Refuses to go on when migrations are pending and auto-migration is off.
pub fn check_migrated(db: &Db) -> Result<(), StartupError> {
    let mut conn = db
        .get()
        .map_err(|e| StartupError::Database(e.to_string()))?;
    let pending = store::migrations::pending(&mut conn)
        .map_err(|e| StartupError::Migration(e.to_string()))?;
    if pending.is_empty() {
        return Ok(());
    }
    Err(StartupError::Migration(format!(
        "database.auto_migrate is off and {} migration(s) are pending: run `latchkey migrate` first",
        pending.len()
    )))
}

/// Opens the pool and migrates or checks, as `database.auto_migrate` says.
pub fn open_database(config: &Config) -> Result<Db, StartupError> {
    migrated(config, open_pool(config)?)
}

/// [`open_database`] for one-shot commands (see [`open_pool_on_demand`]).
pub fn open_database_on_demand(config: &Config) -> Result<Db, StartupError> {
    migrated(config, open_pool_on_demand(config)?)
}

fn migrated(config: &Config, db: Db) -> Result<Db, StartupError> {
    if config.database.auto_migrate {
        migrate(&db)?;
    } else {
        check_migrated(&db)?;
    }
    Ok(db)
}

/// Compiles the page templates, as [`Application::build`] does at start.
pub fn check_templates() -> Result<(), StartupError> {
    crate::http::templates::check().map_err(StartupError::Other)
}

/// A bound, not yet running server.
pub struct Application {
    server: Server,
    port: u16,
    state: web::Data<AppState>,
    /// The metrics listener (`metrics.bind`) and its port, when on.
    metrics: Option<(Server, u16)>,
}

impl Application {
    /// Binds the listener (port 0 picks a free one) and builds the server.
    pub fn build(state: AppState, listener: TcpListener) -> Result<Self, StartupError> {
        check_templates()?;
        let port = listener
            .local_addr()
            .map_err(|e| StartupError::Other(e.to_string()))?
            .port();
        let workers = state.config.server.workers;
        let https = state.config.secure_cookies();
        let shutdown = state.config.server.shutdown_timeout_secs;
        let state = web::Data::new(state);
        let app_state = state.clone();
        let mut server = HttpServer::new(move || {
            App::new()
                .app_data(app_state.clone())
                .wrap(from_fn(crate::http::cors::cors))
                .wrap(headers::security_headers(https))
                .wrap(from_fn(crate::http::request_log::log_requests))
                .wrap(from_fn(crate::http::metrics::record))
                .configure(crate::http::configure)
                .default_service(web::to(crate::http::not_found))
        })
        .shutdown_timeout(shutdown)
        .listen(listener)
        .map_err(|e| StartupError::Other(e.to_string()))?;
        if workers > 0 {
            server = server.workers(workers);
        }
        let metrics = metrics_server(&state)?;
        Ok(Self {
            server: server.run(),
            port,
            state,
            metrics,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The port of the metrics listener (`metrics.bind`), if it runs.
    pub fn metrics_port(&self) -> Option<u16> {
        self.metrics.as_ref().map(|(_, port)| *port)
    }

    /// A handle to stop the server (benchmarks, embedding).
    pub fn handle(&self) -> actix_web::dev::ServerHandle {
        self.server.handle()
    }

    /// Starts the background jobs (key reloads, housekeeping, logout
    /// delivery) and runs until SIGINT/SIGTERM (graceful: in-flight
    /// requests finish, then in-flight logout deliveries).
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let s = &self.state;
        let interval = Duration::from_secs(s.config.keys.reload_interval_secs);
        s.keys
            .spawn_reloader(s.db.clone(), s.clock.clone(), interval);
        spawn_housekeeping(s.db.clone(), s.clock.clone(), s.config.clone());
        let worker = Worker::new(
            s.db.clone(),
            s.keys.clone(),
            s.clock.clone(),
            &s.config.issuer,
            DeliverySettings::from_config(&s.config.logout),
        )
        .map_err(std::io::Error::other)?
        .with_metrics(s.metrics.clone())
        .spawn();
        let metrics = self.metrics.map(|(server, _)| {
            let handle = server.handle();
            (handle, actix_web::rt::spawn(server))
        });
        let result = self.server.await;
        if let Some((handle, task)) = metrics {
            handle.stop(true).await;
            let _ = task.await;
        }
        worker.stop().await;
        result
    }
}

/// The small second server of `metrics.bind`: one worker, `/metrics`
/// only, stopped after the main server (it installs no signal handlers).
fn metrics_server(state: &web::Data<AppState>) -> Result<Option<(Server, u16)>, StartupError> {
    let m = &state.config.metrics;
    if !m.enabled || m.bind.is_empty() {
        return Ok(None);
    }
    let bind_error = |source| StartupError::MetricsBind {
        addr: m.bind.clone(),
        source,
    };
    let listener = TcpListener::bind(m.bind.as_str()).map_err(bind_error)?;
    let port = listener.local_addr().map_err(bind_error)?.port();
    let app_state = state.clone();
    let server = HttpServer::new(move || {
        App::new()
            .app_data(app_state.clone())
            .route(
                "/metrics",
                web::get().to(crate::http::metrics::on_own_listener),
            )
            .default_service(web::to(actix_web::HttpResponse::NotFound))
    })
    .workers(1)
    .disable_signals()
    .shutdown_timeout(1)
    .listen(listener)
    .map_err(bind_error)?
    .run();
    tracing::info!(addr = %m.bind, port, "metrics listening");
    Ok(Some((server, port)))
}

/// Deletes expired sessions and stale throttle rows now and then.
pub fn spawn_housekeeping(db: Db, clock: SharedClock, config: Arc<Config>) {
    let session_policy = SessionPolicy::from_config(&config.session);
    let secs = |s: u64| time::Duration::seconds(i64::try_from(s).unwrap_or(i64::MAX));
    let window = secs(config.login.throttle_window_secs);
    let family_lifetime = secs(config.tokens.refresh_absolute_ttl_secs);
    actix_web::rt::spawn(async move {
        let mut tick = actix_web::rt::time::interval(Duration::from_secs(600));
        loop {
            tick.tick().await;
            let now = clock.now();
            let result = db
                .run(move |conn| {
                    crate::service::housekeeping::purge(
                        conn,
                        now,
                        session_policy,
                        window,
                        family_lifetime,
                    )
                })
                .await;
            match result {
                Ok(p) if p.total() > 0 => tracing::info!(
                    sessions = p.sessions,
                    throttles = p.throttles,
                    codes = p.codes,
                    device_codes = p.device_codes,
                    refresh_tokens = p.refresh_tokens,
                    revocations = p.revocations,
                    grants = p.grants,
                    logout_tokens = p.logout_tokens,
                    "purged expired rows"
                ),
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "housekeeping failed"),
            }
        }
    });
}

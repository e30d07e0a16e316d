//! `latchkey serve`

use std::io::Write;
use std::net::TcpListener;
use std::sync::Arc;

use clap::Args;

use super::{CliError, CliResult};
use crate::app::{self, Application, StartupError};
use crate::clock::{SharedClock, SystemClock};
use crate::config::{Config, Overrides};
use crate::keys::KeyStore;
use crate::service::bootstrap::{self, Bootstrap};
use crate::state::AppState;

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on, HOST:PORT (overrides server.bind).
    #[arg(long, value_name = "ADDR")]
    bind: Option<String>,
    /// Public URL of this server (overrides issuer).
    #[arg(long, value_name = "URL")]
    issuer: Option<String>,
    /// Do not apply migrations at start (fail if any are pending).
    #[arg(long)]
    no_migrate: bool,
}

impl ServeArgs {
    pub fn overrides(&self) -> Overrides {
        Overrides {
            issuer: self.issuer.clone(),
            bind: self.bind.clone(),
            database_url: None,
            auto_migrate: self.no_migrate.then_some(false),
        }
    }
}

pub fn run(config: Config) -> CliResult {
    let config = Arc::new(config);
    let db = app::open_database(&config)?;
    let clock: SharedClock = Arc::new(SystemClock);

    let given = std::env::var("LATCHKEY_ADMIN_PASSWORD")
        .ok()
        .filter(|p| !p.is_empty());
    let mut conn = db
        .get()
        .map_err(|e| StartupError::Database(e.to_string()))?;
    // Keys first: a missing or wrong KEK must stop the start before any write.
    let keys = KeyStore::open(&mut conn, &config, clock.now())
        .map_err(|e| StartupError::Keys(e.to_string()))?;
    match bootstrap::ensure_admin(&mut conn, given.as_deref(), clock.now())? {
        Bootstrap::NotNeeded => {}
        Bootstrap::CreatedWithGivenPassword => {
            tracing::info!("created the first administrator, admin, with LATCHKEY_ADMIN_PASSWORD");
        }
        Bootstrap::CreatedWithGeneratedPassword(pw) => {
            // Printed once, to the terminal, never to the log.
            let _ = writeln!(
                std::io::stderr(),
                "\nCreated the first administrator account.\n  username: admin\n  password: {pw}\n\
                 Sign in at {}/login and keep this password safe: it is not shown again.\n",
                config.issuer
            );
        }
    }
    let declared = crate::service::clients::sync_declared(
        &mut conn,
        &config.clients,
        &|var| std::env::var(var).ok(),
        clock.now(),
    )
    .map_err(|e| StartupError::Config(e.to_string()))?;
    if !declared.is_empty() {
        tracing::info!(clients = %declared.join(","), "pre-configured clients in place");
    }
    drop(conn);

    let addr = config
        .bind_addr()
        .map_err(|e| StartupError::Config(e.to_string()))?;
    let listener = TcpListener::bind(addr).map_err(|source| StartupError::Bind {
        addr: addr.to_string(),
        source,
    })?;
    let state = AppState::new(config.clone(), db, clock, keys).map_err(StartupError::from)?;
    let application = Application::build(state, listener)?;
    tracing::info!(%addr, issuer = %config.issuer, backend = %db_backend(&config), "latchkey listening");
    actix_web::rt::System::new()
        .block_on(application.run_until_stopped())
        .map_err(|e| CliError {
            code: 1,
            message: format!("server stopped: {e}"),
        })?;
    tracing::info!("latchkey stopped");
    Ok(())
}

fn db_backend(config: &Config) -> &'static str {
    crate::store::DatabaseUrl::parse(&config.database.url)
        .map(|u| u.backend())
        .unwrap_or("unknown")
}

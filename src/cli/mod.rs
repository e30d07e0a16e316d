//! The `latchkey` command: thin clap wrappers over `service`.
//!
//! Exit codes: 0 success; 1 the operation was refused (bad input, not
//! found, conflict); 2 configuration or database problem at start (and
//! clap's usage errors).

mod audit;
mod check;
mod client;
mod group;
mod keys;
mod output;
mod serve;
mod user;
mod user_mfa;
mod user_tokens;

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::app::{self, StartupError};
use crate::config::{Config, Overrides};
use crate::service::ServiceError;

#[derive(Debug, Parser)]
#[command(
    name = "latchkey",
    version,
    about = "Latchkey: an OpenID Connect identity provider",
    long_about = "Latchkey: an OpenID Connect identity provider.\n\n\
        Settings come from built-in defaults, then latchkey.toml (or --config), \
        then LATCHKEY_* environment variables (e.g. LATCHKEY_DATABASE__URL), then flags."
)]
pub struct Cli {
    /// Config file (default: ./latchkey.toml when present).
    #[arg(long, global = true, value_name = "PATH")]
    config: Option<PathBuf>,
    /// Database URL: sqlite://PATH or postgres://USER@HOST/DB (overrides database.url).
    #[arg(long, global = true, value_name = "URL")]
    database_url: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the server (migrates and bootstraps the first admin when needed).
    Serve(serve::ServeArgs),
    /// Apply pending database migrations and exit.
    Migrate {
        /// Print the applied migrations as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Check a deployment before it takes traffic: the configuration, the
    /// database connection, pending migrations (reported, not applied) and
    /// that the key-encryption key decrypts every signing key. Changes
    /// nothing. Exit 0 with a one-line summary; 1 with one line per
    /// problem; 2 when the configuration or the database cannot be read.
    Check,
    /// Write a consistent copy of a SQLite database to FILE while servers
    /// keep serving (VACUUM INTO; never overwrites FILE). For PostgreSQL
    /// it prints the pg_dump recipe instead. The key-encryption key is not
    /// in the copy: back it up separately, never beside the database.
    Backup {
        /// Where to write the copy (must not exist).
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
    },
    /// Print the audit log (newest entries, or from --since on), as a
    /// table or as JSON lines for shipping to a SIEM.
    Audit(audit::AuditArgs),
    /// Dynamic client registration: initial access tokens.
    #[command(subcommand)]
    Registration(audit::RegistrationCommand),
    /// Manage user accounts.
    #[command(subcommand)]
    User(user::UserCommand),
    /// Manage client applications.
    #[command(subcommand)]
    Client(client::ClientCommand),
    /// Manage groups and their members.
    #[command(subcommand)]
    Group(group::GroupCommand),
    /// Manage custom scopes (the consent text, which groups may be granted them).
    #[command(subcommand)]
    Scope(group::ScopeCommand),
    /// Manage signing keys: list, rotate, retire, revoke, export, import.
    #[command(subcommand)]
    Keys(keys::KeysCommand),
}

/// A CLI failure with its exit code.
#[derive(Debug)]
pub struct CliError {
    pub code: u8,
    pub message: String,
}

impl From<StartupError> for CliError {
    fn from(e: StartupError) -> Self {
        Self {
            code: 2,
            message: e.to_string(),
        }
    }
}

impl From<ServiceError> for CliError {
    fn from(e: ServiceError) -> Self {
        let code = match e {
            ServiceError::Unavailable(_) => 2,
            _ => 1,
        };
        let message = match e {
            ServiceError::Unavailable(m) => format!("database unavailable: {m}"),
            ServiceError::Internal(m) => format!("internal error: {m}"),
            other => other.to_string(),
        };
        Self { code, message }
    }
}

impl From<std::io::Error> for CliError {
    fn from(e: std::io::Error) -> Self {
        Self {
            code: 1,
            message: e.to_string(),
        }
    }
}

pub type CliResult = Result<(), CliError>;

/// Parses the command line and runs it.
pub fn run() -> ExitCode {
    let cli = Cli::parse();
    match dispatch(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let _ = writeln!(std::io::stderr(), "error: {}", e.message);
            ExitCode::from(e.code)
        }
    }
}

fn load_config(cli: &Cli, extra: Overrides) -> Result<Config, CliError> {
    let overrides = Overrides {
        database_url: cli.database_url.clone().or(extra.database_url),
        ..extra
    };
    let config = Config::load(cli.config.as_deref(), &overrides).map_err(|e| CliError {
        code: 2,
        message: format!("invalid configuration: {e}"),
    })?;
    crate::telemetry::init(&config.log);
    Ok(config)
}

fn dispatch(cli: Cli) -> CliResult {
    match &cli.command {
        Command::Serve(args) => {
            let config = load_config(&cli, args.overrides())?;
            serve::run(config)
        }
        Command::Migrate { json } => {
            let config = load_config(&cli, Overrides::default())?;
            let db = app::open_pool_on_demand(&config)?;
            let applied = app::migrate(&db)?;
            if *json {
                output::json(&serde_json::json!({ "applied": applied }))
            } else if applied.is_empty() {
                output::line("database is up to date")
            } else {
                output::line(&format!(
                    "applied {} migration(s): {}",
                    applied.len(),
                    applied.join(", ")
                ))
            }
        }
        Command::Check => {
            let config = load_config(&cli, Overrides::default())?;
            check::check(&config)
        }
        Command::Backup { out } => {
            let config = load_config(&cli, Overrides::default())?;
            check::backup(&config, out)
        }
        Command::Audit(args) => {
            let config = load_config(&cli, Overrides::default())?;
            audit::audit(&config, args)
        }
        Command::Registration(cmd) => {
            let config = load_config(&cli, Overrides::default())?;
            audit::registration(&config, cmd)
        }
        Command::User(cmd) => {
            let config = load_config(&cli, Overrides::default())?;
            user::run(&config, cmd)
        }
        Command::Client(cmd) => {
            let config = load_config(&cli, Overrides::default())?;
            client::run(&config, cmd)
        }
        Command::Group(cmd) => {
            let config = load_config(&cli, Overrides::default())?;
            group::run_group(&config, cmd)
        }
        Command::Scope(cmd) => {
            let config = load_config(&cli, Overrides::default())?;
            group::run_scope(&config, cmd)
        }
        Command::Keys(cmd) => {
            let config = load_config(&cli, Overrides::default())?;
            keys::run(&config, cmd)
        }
    }
}

/// Opens the database for an admin command (migrating if configured).
fn open_db(config: &Config) -> Result<crate::store::Db, CliError> {
    Ok(app::open_database_on_demand(config)?)
}

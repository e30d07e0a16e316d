//! `latchkey check` and `latchkey backup`: what deploy pipelines and
//! backup jobs run beside a live server.

use std::path::{Path, PathBuf};

use super::{CliError, CliResult, output};
use crate::app;
use crate::config::Config;
use crate::service::{backup, preflight};
use crate::store::DatabaseUrl;

/// Exit code when the check found problems (each printed on its own line).
const PROBLEMS: u8 = 1;

pub fn check(config: &Config) -> CliResult {
    let mut problems = Vec::new();
    if let Err(e) = app::check_templates() {
        problems.push(format!("templates: {e}"));
    }
    let url = DatabaseUrl::parse(&config.database.url).map_err(|e| CliError {
        code: 2,
        message: format!("database.url: {e}"),
    })?;
    if let DatabaseUrl::Sqlite(path) = &url
        && !path.exists()
    {
        return Err(CliError {
            code: 2,
            message: format!(
                "database.url: the SQLite file {} does not exist (wrong path, or run `latchkey migrate` first)",
                path.display()
            ),
        });
    }
    let db = app::open_pool_on_demand(config)?;
    let mut conn = db.get().map_err(crate::service::ServiceError::from)?;
    let report = preflight::check(&mut conn, config);
    problems.extend(report.problems);
    if problems.is_empty() {
        return output::line(&format!(
            "OK ({}): {}",
            url.backend(),
            report.notes.join("; ")
        ));
    }
    let last = problems.pop().unwrap_or_default();
    for p in &problems {
        eprintln!("error: {p}");
    }
    Err(CliError {
        code: PROBLEMS,
        message: last,
    })
}

pub fn backup(config: &Config, out: &Path) -> CliResult {
    let url = DatabaseUrl::parse(&config.database.url).map_err(|e| CliError {
        code: 2,
        message: format!("database.url: {e}"),
    })?;
    let DatabaseUrl::Sqlite(path) = &url else {
        return Err(CliError {
            code: 1,
            message: "latchkey backup copies SQLite databases; for PostgreSQL use pg_dump: \
                      `pg_dump --format=custom --file=latchkey.dump \"$DATABASE_URL\"` \
                      (README, \"Backup and restore\")"
                .into(),
        });
    };
    if !path.exists() {
        return Err(CliError {
            code: 2,
            message: format!(
                "database.url: the SQLite file {} does not exist",
                path.display()
            ),
        });
    }
    let db = app::open_pool_on_demand(config)?;
    let mut conn = db.get().map_err(crate::service::ServiceError::from)?;
    let target: PathBuf = out.to_path_buf();
    let bytes = backup::sqlite_copy(&mut conn, &target)?;
    output::line(&format!(
        "wrote a consistent copy of {} to {} ({bytes} bytes)",
        path.display(),
        target.display()
    ))?;
    output::line(&format!(
        "reminder: back up the key-encryption key ({}, or {}) separately, and never store it beside this copy: \
         whoever holds both holds every signing key",
        config.keys.kek_file,
        crate::keys::kek::KEK_ENV
    ))
}

//! Embedded migrations, one folder per backend.

use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};

use super::DbConn;

const SQLITE: EmbeddedMigrations = embed_migrations!("migrations/sqlite");
const POSTGRES: EmbeddedMigrations = embed_migrations!("migrations/postgres");

#[derive(Debug, thiserror::Error)]
#[error("migration failed: {0}")]
pub struct MigrationError(String);

/// Key of the PostgreSQL advisory lock that serializes migrations between
/// processes (any constant works; this spells "latchkey").
const PG_MIGRATION_LOCK: i64 = 0x6c61_7463_686b_6579;

/// How often a SQLite migration run is retried when another process was
/// migrating the same file at the same moment.
const SQLITE_ATTEMPTS: u32 = 20;

/// Applies every pending migration; returns the versions applied.
///
/// Several processes may start at once on a fresh database (instances of
/// `serve`, or a CLI command beside `serve`). On PostgreSQL they queue on
/// an advisory lock. On SQLite, whose writes are serialized anyway, a run
/// that lost the race (its migration was applied meanwhile, or the file
/// was busy) is retried with a fresh list of pending migrations.
pub fn run_pending(conn: &mut DbConn) -> Result<Vec<String>, MigrationError> {
    let applied = match conn {
        DbConn::Sqlite(c) => {
            let mut attempt = 1;
            loop {
                match c.run_pending_migrations(SQLITE) {
                    Ok(v) => break Ok(v.into_iter().map(|v| v.to_string()).collect()),
                    Err(e) if attempt < SQLITE_ATTEMPTS => {
                        tracing::debug!(attempt, error = %e, "migration raced another process; retrying");
                        attempt += 1;
                        std::thread::sleep(std::time::Duration::from_millis(50 * u64::from(attempt)));
                    }
                    Err(e) => break Err(e.to_string()),
                }
            }
        }
        DbConn::Pg(c) => {
            use diesel::RunQueryDsl;
            diesel::sql_query(format!("SELECT pg_advisory_lock({PG_MIGRATION_LOCK})"))
                .execute(c)
                .map_err(|e| MigrationError(e.to_string()))?;
            let result = c
                .run_pending_migrations(POSTGRES)
                .map(|v| v.into_iter().map(|v| v.to_string()).collect::<Vec<_>>())
                .map_err(|e| e.to_string());
            let unlock = diesel::sql_query(format!("SELECT pg_advisory_unlock({PG_MIGRATION_LOCK})"))
                .execute(c);
            if let Err(e) = unlock {
                tracing::warn!(error = %e, "could not release the migration lock");
            }
            result
        }
    }
    .map_err(MigrationError)?;
    Ok(applied)
}

/// Reverts every applied migration (used by the up/down/up test).
pub fn revert_all(conn: &mut DbConn) -> Result<(), MigrationError> {
    match conn {
        DbConn::Sqlite(c) => c.revert_all_migrations(SQLITE).map(|_| ()),
        DbConn::Pg(c) => c.revert_all_migrations(POSTGRES).map(|_| ()),
    }
    .map_err(|e| MigrationError(e.to_string()))
}

/// Reverts the newest applied migration; returns its version (tests of
/// what a migration does to existing rows).
pub fn revert_last(conn: &mut DbConn) -> Result<String, MigrationError> {
    match conn {
        DbConn::Sqlite(c) => c.revert_last_migration(SQLITE).map(|v| v.to_string()),
        DbConn::Pg(c) => c.revert_last_migration(POSTGRES).map(|v| v.to_string()),
    }
    .map_err(|e| MigrationError(e.to_string()))
}

/// Migrations embedded in this binary and not yet applied.
pub fn pending(conn: &mut DbConn) -> Result<Vec<String>, MigrationError> {
    let pending = match conn {
        DbConn::Sqlite(c) => c
            .pending_migrations(SQLITE)
            .map(|m| m.iter().map(|m| m.name().to_string()).collect()),
        DbConn::Pg(c) => c
            .pending_migrations(POSTGRES)
            .map(|m| m.iter().map(|m| m.name().to_string()).collect()),
    };
    pending.map_err(|e| MigrationError(e.to_string()))
}

//! `latchkey backup`: a consistent copy of a SQLite database taken while
//! servers keep serving. PostgreSQL is backed up with `pg_dump`.

use std::path::Path;

use super::ServiceError;
use crate::store::{DbConn, backup};

/// Copies the database behind `conn` to `out`, which must not exist: the
/// file is created first (mode 0600 on Unix: it holds password hashes and
/// sealed keys), then filled by `VACUUM INTO`. Returns the copy's size.
/// On failure the half-made file is removed.
pub fn sqlite_copy(conn: &mut DbConn, out: &Path) -> Result<u64, ServiceError> {
    if conn.backend() != "sqlite" {
        return Err(ServiceError::Conflict(
            "backup copies SQLite databases; PostgreSQL is backed up with pg_dump".into(),
        ));
    }
    let target = out
        .to_str()
        .ok_or_else(|| ServiceError::Conflict(format!("{}: not a UTF-8 path", out.display())))?;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    opts.open(out).map_err(|e| match e.kind() {
        std::io::ErrorKind::AlreadyExists => ServiceError::Conflict(format!(
            "{}: already exists; backup never overwrites a file",
            out.display()
        )),
        _ => ServiceError::Conflict(format!("{}: {e}", out.display())),
    })?;
    let copied = backup::vacuum_into(conn, target)
        .map_err(ServiceError::from)
        .and_then(|done| {
            done.ok_or_else(|| ServiceError::Conflict("not a SQLite database".into()))?;
            std::fs::metadata(out)
                .map(|m| m.len())
                .map_err(|e| ServiceError::Internal(format!("{}: {e}", out.display())))
        });
    if copied.is_err() {
        let _ = std::fs::remove_file(out);
    }
    copied
}

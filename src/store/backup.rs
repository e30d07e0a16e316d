//! Online copies of a SQLite database.

use diesel::RunQueryDsl;
use diesel::sql_types::Text;

use super::{DbConn, StoreError};

/// Writes a consistent snapshot of the open SQLite database to `target`
/// (which must not exist or be empty) with `VACUUM INTO`: one read
/// transaction, so writers carry on (WAL) and the copy is as of one moment.
/// `None` on PostgreSQL, which has `pg_dump` for this.
pub fn vacuum_into(conn: &mut DbConn, target: &str) -> Result<Option<()>, StoreError> {
    match conn {
        DbConn::Sqlite(c) => {
            diesel::sql_query("VACUUM INTO ?")
                .bind::<Text, _>(target)
                .execute(c)?;
            Ok(Some(()))
        }
        DbConn::Pg(_) => Ok(None),
    }
}

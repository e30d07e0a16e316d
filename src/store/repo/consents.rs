use diesel::prelude::*;

use crate::store::DbConn;
use crate::store::models::ConsentRow;
use crate::store::schema::consents::dsl;

pub fn get(conn: &mut DbConn, user_id: &str, client_id: &str) -> QueryResult<Option<ConsentRow>> {
    dsl::consents
        .find((user_id, client_id))
        .select(ConsentRow::as_select())
        .first(conn)
        .optional()
}

/// Inserts or replaces the remembered consent for a user and client.
pub fn put(conn: &mut DbConn, row: &ConsentRow) -> QueryResult<()> {
    let updated = diesel::update(dsl::consents.find((&row.user_id, &row.client_id)))
        .set((
            dsl::scope.eq(&row.scope),
            dsl::granted_at.eq(row.granted_at),
        ))
        .execute(conn)?;
    if updated == 0 {
        diesel::insert_into(dsl::consents)
            .values(row)
            .execute(conn)?;
    }
    Ok(())
}

pub fn delete(conn: &mut DbConn, user_id: &str, client_id: &str) -> QueryResult<usize> {
    diesel::delete(dsl::consents.find((user_id, client_id))).execute(conn)
}

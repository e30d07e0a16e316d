use diesel::prelude::*;

use crate::store::DbConn;
use crate::store::models::ClientRow;
use crate::store::schema::clients::dsl;

pub fn insert(conn: &mut DbConn, row: &ClientRow) -> QueryResult<()> {
    diesel::insert_into(dsl::clients)
        .values(row)
        .execute(conn)?;
    Ok(())
}

pub fn by_id(conn: &mut DbConn, client_id: &str) -> QueryResult<Option<ClientRow>> {
    dsl::clients
        .find(client_id)
        .select(ClientRow::as_select())
        .first(conn)
        .optional()
}

pub fn list(conn: &mut DbConn) -> QueryResult<Vec<ClientRow>> {
    dsl::clients
        .order((dsl::name.asc(), dsl::client_id.asc()))
        .select(ClientRow::as_select())
        .load(conn)
}

/// At most `limit` clients in list order (name, then id), after the one
/// named `after` (name, id) when given.
pub fn page(
    conn: &mut DbConn,
    after: Option<(&str, &str)>,
    limit: i64,
) -> QueryResult<Vec<ClientRow>> {
    let mut q = dsl::clients.into_boxed();
    if let Some((name, id)) = after {
        q = q.filter(
            dsl::name.gt(name.to_owned()).or(dsl::name
                .eq(name.to_owned())
                .and(dsl::client_id.gt(id.to_owned()))),
        );
    }
    q.order((dsl::name.asc(), dsl::client_id.asc()))
        .limit(limit)
        .select(ClientRow::as_select())
        .load(conn)
}

/// Replaces every column of an existing client; returns rows changed.
pub fn update(conn: &mut DbConn, row: &ClientRow) -> QueryResult<usize> {
    diesel::update(dsl::clients.find(&row.client_id))
        .set(row)
        .execute(conn)
}

pub fn delete(conn: &mut DbConn, client_id: &str) -> QueryResult<usize> {
    diesel::delete(dsl::clients.find(client_id)).execute(conn)
}

/// Replaces a client's registration token hash if `old_hash` is the
/// current one; true when it was (one conditional write, so it can open a
/// transaction).
pub fn swap_registration_token(
    conn: &mut DbConn,
    client_id: &str,
    old_hash: &str,
    new_hash: &str,
) -> QueryResult<bool> {
    let n = diesel::update(
        dsl::clients
            .find(client_id)
            .filter(dsl::registration_token_hash.eq(old_hash)),
    )
    .set(dsl::registration_token_hash.eq(new_hash))
    .execute(conn)?;
    Ok(n == 1)
}

/// Deletes a client if `token_hash` is its registration token hash.
pub fn delete_registered(
    conn: &mut DbConn,
    client_id: &str,
    token_hash: &str,
) -> QueryResult<bool> {
    let n = diesel::delete(
        dsl::clients
            .find(client_id)
            .filter(dsl::registration_token_hash.eq(token_hash)),
    )
    .execute(conn)?;
    Ok(n == 1)
}

/// Of these clients, the ones that registered a back-channel logout URI.
pub fn with_backchannel_logout(conn: &mut DbConn, ids: &[String]) -> QueryResult<Vec<String>> {
    dsl::clients
        .filter(dsl::client_id.eq_any(ids))
        .filter(dsl::backchannel_logout_uri.is_not_null())
        .select(dsl::client_id)
        .load(conn)
}

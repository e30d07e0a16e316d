//! A user's authorized apps, for "My account": every existing client with
//! a remembered consent or a live (not revoked) grant of the user's, a
//! page at a time.

use diesel::dsl::sql;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Nullable, Text, Timestamp};
use time::PrimitiveDateTime;

use crate::store::DbConn;
use crate::store::schema::{clients, consents, grants};

/// One app on a page: the client, its name, when the user first
/// authorized it, and when it was last used (a consent, a grant or a
/// refresh token issued to it, whichever is latest).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppSummary {
    pub client_id: String,
    pub client_name: String,
    pub granted_at: PrimitiveDateTime,
    pub last_used_at: PrimitiveDateTime,
}

/// How many apps `user_id` has authorized (what [`page`] pages through).
pub fn count(conn: &mut DbConn, user_id: &str) -> QueryResult<i64> {
    let consented = consents::table
        .filter(consents::user_id.eq(user_id))
        .select(consents::client_id);
    let granted = grants::table
        .filter(grants::user_id.eq(user_id))
        .filter(grants::revoked_at.is_null())
        .select(grants::client_id);
    clients::table
        .filter(
            clients::client_id
                .eq_any(consented)
                .or(clients::client_id.eq_any(granted)),
        )
        .count()
        .get_result(conn)
}

/// `limit` apps of `user_id` from `offset`, most recently used first, then
/// by name, then by client id (a total order, so pages neither repeat nor
/// skip an app). One query on both backends: the user's consents, live
/// grants and their refresh tokens, grouped by client.
pub fn page(
    conn: &mut DbConn,
    user_id: &str,
    limit: i64,
    offset: i64,
) -> QueryResult<Vec<AppSummary>> {
    type Row = (
        String,
        String,
        Option<PrimitiveDateTime>,
        Option<PrimitiveDateTime>,
    );
    let rows: Vec<Row> = sql::<(Text, Text, Nullable<Timestamp>, Nullable<Timestamp>)>(
        "SELECT a.client_id, c.name, MIN(a.granted_at), MAX(a.used_at) FROM (\
         SELECT client_id, granted_at, granted_at AS used_at FROM consents WHERE user_id = ",
    )
    .bind::<Text, _>(user_id)
    .sql(
        " UNION ALL SELECT client_id, created_at, created_at FROM grants \
         WHERE revoked_at IS NULL AND user_id = ",
    )
    .bind::<Text, _>(user_id)
    .sql(
        " UNION ALL SELECT g.client_id, NULL, r.created_at FROM refresh_tokens r \
         INNER JOIN grants g ON g.id = r.grant_id WHERE g.revoked_at IS NULL AND g.user_id = ",
    )
    .bind::<Text, _>(user_id)
    .sql(
        ") a INNER JOIN clients c ON c.client_id = a.client_id \
         GROUP BY a.client_id, c.name \
         ORDER BY MAX(a.used_at) DESC, c.name ASC, a.client_id ASC LIMIT ",
    )
    .bind::<BigInt, _>(limit)
    .sql(" OFFSET ")
    .bind::<BigInt, _>(offset)
    .load(conn)?;
    Ok(rows
        .into_iter()
        .filter_map(|(client_id, client_name, granted, used)| {
            // Every group has a consent or a grant row, so both are set.
            let last_used_at = used?;
            Some(AppSummary {
                client_id,
                client_name,
                granted_at: granted.unwrap_or(last_used_at),
                last_used_at,
            })
        })
        .collect())
}

/// The scopes behind the user's authorization of each of `client_ids`:
/// `(client_id, scope)` of the consents and of the live grants.
pub fn scopes(
    conn: &mut DbConn,
    user_id: &str,
    client_ids: &[String],
) -> QueryResult<Vec<(String, String)>> {
    let mut rows: Vec<(String, String)> = consents::table
        .filter(consents::user_id.eq(user_id))
        .filter(consents::client_id.eq_any(client_ids))
        .select((consents::client_id, consents::scope))
        .load(conn)?;
    rows.extend(
        grants::table
            .filter(grants::user_id.eq(user_id))
            .filter(grants::revoked_at.is_null())
            .filter(grants::client_id.eq_any(client_ids))
            .select((grants::client_id, grants::scope))
            .load::<(String, String)>(conn)?,
    );
    Ok(rows)
}

//! Personal access tokens of a user named by username: what the admin API
//! and the CLI call. The admin API never mints `latchkey:admin` tokens.

use time::OffsetDateTime;

use super::{IssuedPat, NewPat, PatView};
use crate::config::PatConfig;
use crate::domain::Invalid;
use crate::domain::audit::Actor;
use crate::service::{ServiceResult, users};
use crate::store::DbConn;

/// [`create_for`] through the admin API: never a `latchkey:admin` token.
/// An admin who needs one creates it for themselves in My account, where
/// their password is asked; the API's bearer token (a machine client's
/// too) must not be able to mint a year-long admin credential in another
/// admin's name.
pub fn create_through_admin_api(
    conn: &mut DbConn,
    config: &PatConfig,
    username: &str,
    input: &NewPat,
    actor: &Actor,
    now: OffsetDateTime,
) -> ServiceResult<IssuedPat> {
    if input
        .scopes
        .iter()
        .flat_map(|s| s.split_whitespace())
        .any(|s| s == crate::domain::scope::ADMIN_SCOPE)
    {
        return Err(Invalid::new(
            "scopes",
            "latchkey:admin tokens are created by their owner in My account, not through the admin API",
        )
        .into());
    }
    create_for(conn, config, username, input, actor, now)
}

/// [`super::create`] for the user named `username` (admin API, CLI).
pub fn create_for(
    conn: &mut DbConn,
    config: &PatConfig,
    username: &str,
    input: &NewPat,
    actor: &Actor,
    now: OffsetDateTime,
) -> ServiceResult<IssuedPat> {
    let user = users::find(conn, username)?;
    super::create(conn, config, &user, input, actor, now)
}

/// [`super::list`] for the user named `username` (admin API, CLI).
pub fn list_for(
    conn: &mut DbConn,
    username: &str,
    now: OffsetDateTime,
) -> ServiceResult<Vec<PatView>> {
    let user = users::find(conn, username)?;
    super::list(conn, &user.id, now)
}

/// [`super::revoke`] for the user named `username` (admin API, CLI).
pub fn revoke_for(
    conn: &mut DbConn,
    username: &str,
    id: &str,
    actor: &Actor,
    now: OffsetDateTime,
) -> ServiceResult<()> {
    let user = users::find(conn, username)?;
    super::revoke(conn, &user, id, actor, now)
}

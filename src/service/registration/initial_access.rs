//! Initial access tokens (RFC 7591 3): what an admin hands out so that an
//! app may register itself when registration is not open.

use serde::Serialize;
use time::{Duration, OffsetDateTime};

use crate::clock::to_db;
use crate::domain::audit::Actor;
use crate::domain::secret::OpaqueSecret;
use crate::service::ServiceResult;
use crate::store::audit;
use crate::store::models::InitialAccessTokenRow;
use crate::store::{DbConn, repo};

/// An initial access token, shown once.
#[derive(Serialize)]
pub struct IssuedInitialToken {
    pub initial_access_token: String,
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
    pub max_uses: i32,
}

/// Issues an initial access token for `/register`, valid `expires_in`
/// seconds (at most 30 days) for `max_uses` registrations (1..=1000).
pub fn issue_initial_access_token(
    conn: &mut DbConn,
    actor: &Actor,
    expires_in: i64,
    max_uses: i32,
    now: OffsetDateTime,
) -> ServiceResult<IssuedInitialToken> {
    if !(60..=30 * 86_400).contains(&expires_in) {
        return Err(
            crate::domain::Invalid::new("expires_in", "between 60 seconds and 30 days").into(),
        );
    }
    if !(1..=1000).contains(&max_uses) {
        return Err(crate::domain::Invalid::new("max_uses", "between 1 and 1000").into());
    }
    let token = OpaqueSecret::generate()?;
    let expires_at = now + Duration::seconds(expires_in);
    repo::initial_access::insert(
        conn,
        &InitialAccessTokenRow {
            token_hash: token.hash(),
            created_by: actor.name.clone(),
            created_at: to_db(now),
            expires_at: to_db(expires_at),
            max_uses,
            uses: 0,
        },
    )?;
    audit::record(
        conn,
        actor,
        "registration.initial_token",
        &format!("{max_uses} use(s)"),
        Some(format!("expires_at={}", to_db(expires_at))),
        now,
    )?;
    Ok(IssuedInitialToken {
        initial_access_token: token.expose().to_owned(),
        expires_at: crate::clock::from_db(to_db(expires_at)),
        max_uses,
    })
}

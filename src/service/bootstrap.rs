//! First start: an empty database gets an `admin` user so someone can sign in.

use time::OffsetDateTime;

use super::users::{self, NewUser};
use super::{ServiceError, ServiceResult};
use crate::domain::secret::OpaqueSecret;
use crate::store::{DbConn, repo};

pub const ADMIN_USERNAME: &str = "admin";

/// What bootstrap did; the generated password is returned to be printed once.
#[derive(PartialEq, Eq)]
pub enum Bootstrap {
    NotNeeded,
    CreatedWithGivenPassword,
    CreatedWithGeneratedPassword(String),
}

impl std::fmt::Debug for Bootstrap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Bootstrap::NotNeeded => f.write_str("NotNeeded"),
            Bootstrap::CreatedWithGivenPassword => f.write_str("CreatedWithGivenPassword"),
            Bootstrap::CreatedWithGeneratedPassword(_) => {
                f.write_str("CreatedWithGeneratedPassword(<redacted>)")
            }
        }
    }
}

/// Creates `admin` when there are no users at all. `given_password` comes
/// from `LATCHKEY_ADMIN_PASSWORD`; without it a random one is generated.
/// Two instances starting at once are safe: the loser sees a conflict.
pub fn ensure_admin(
    conn: &mut DbConn,
    given_password: Option<&str>,
    now: OffsetDateTime,
) -> ServiceResult<Bootstrap> {
    if repo::users::count(conn)? > 0 {
        return Ok(Bootstrap::NotNeeded);
    }
    let generated = match given_password {
        Some(_) => None,
        None => Some(OpaqueSecret::generate()?),
    };
    let password = given_password
        .or(generated.as_ref().map(OpaqueSecret::expose))
        .unwrap_or_default();
    let new = NewUser {
        username: ADMIN_USERNAME,
        is_admin: true,
        ..Default::default()
    };
    match users::create(conn, &new, Some(password), now) {
        Ok(_) => Ok(match generated {
            Some(p) => Bootstrap::CreatedWithGeneratedPassword(p.expose().to_owned()),
            None => Bootstrap::CreatedWithGivenPassword,
        }),
        Err(ServiceError::Conflict(_)) => Ok(Bootstrap::NotNeeded),
        Err(e) => Err(e),
    }
}

//! Repository functions, one module per aggregate. Each takes `&mut DbConn`
//! so callers can compose them inside `conn.transaction(..)`.

pub mod audit;
pub mod authorized_apps;
pub mod clients;
pub mod consents;
pub mod device_codes;
pub mod grants;
pub mod groups;
pub mod initial_access;
pub mod logout;
pub mod mfa;
pub mod personal_access_tokens;
pub mod revocations;
pub mod scopes;
pub mod sessions;
pub mod signing_keys;
pub mod throttle;
pub mod users;

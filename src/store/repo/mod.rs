//! Repository functions, one module per aggregate. Each takes `&mut DbConn`
//! so callers can compose them inside `conn.transaction(..)`.

pub mod clients;
pub mod sessions;
pub mod throttle;
pub mod users;

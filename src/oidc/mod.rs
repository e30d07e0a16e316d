//! OpenID Connect / OAuth 2.0 protocol rules in plain Rust (no actix):
//! errors with their fixed codes and statuses, PKCE, authorization request
//! validation, and the contents of ID, access and logout tokens.

pub mod authorize;
pub mod claims;
pub mod device;
pub mod discovery;
pub mod document;
pub mod end_session;
pub mod error;
pub mod logout_token;
pub mod pkce;
pub mod response_type;
pub mod token_exchange;

pub use error::{ErrorCode, OAuthError};

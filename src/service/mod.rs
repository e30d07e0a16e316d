//! Use cases. They take a `&mut DbConn` and plain values, never an HTTP
//! request, so the CLI, the HTTP handlers and the tests share them.
//!
//! Errors: [`ServiceError`] for admin-style operations (CLI, console, API);
//! the login flow has its own [`login::LoginError`] because what it may
//! reveal is narrower.

pub mod access;
pub mod account;
pub mod admin;
pub mod audit_query;
pub mod authorize;
pub mod backup;
pub mod bootstrap;
pub mod client_objects;
pub mod clients;
pub mod device;
pub mod end_session;
pub mod groups;
pub mod housekeeping;
pub mod implicit;
pub mod introspection;
pub mod keys;
pub mod login;
pub mod logout;
pub mod metrics;
pub mod mfa;
pub mod password;
pub mod pat;
pub mod preflight;
pub mod registration;
pub mod scopes;
pub mod sessions;
pub mod token;
pub mod userinfo;
pub mod users;

use crate::domain::Invalid;
use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error("{0}")]
    Invalid(#[from] Invalid),
    #[error("{what} {id:?} not found")]
    NotFound { what: &'static str, id: String },
    #[error("{0}")]
    Conflict(String),
    /// The object is managed elsewhere (the configuration file).
    #[error("{0}")]
    Locked(String),
    /// The object changed since the caller read it (`If-Match`).
    #[error("{0}")]
    PreconditionFailed(String),
    /// The caller may not do this.
    #[error("{0}")]
    Forbidden(String),
    #[error("database unavailable")]
    Unavailable(String),
    #[error("internal error")]
    Internal(String),
}

impl From<StoreError> for ServiceError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Unavailable(m) => ServiceError::Unavailable(m),
            StoreError::Query(q) => ServiceError::Internal(q.to_string()),
        }
    }
}

impl From<diesel::result::Error> for ServiceError {
    fn from(e: diesel::result::Error) -> Self {
        StoreError::from(e).into()
    }
}

impl From<crate::domain::secret::RngError> for ServiceError {
    fn from(e: crate::domain::secret::RngError) -> Self {
        ServiceError::Internal(e.to_string())
    }
}

pub type ServiceResult<T> = Result<T, ServiceError>;

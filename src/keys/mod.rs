//! Signing keys: generation and import (josekit), encryption at rest with
//! the KEK, the `next -> active -> retired -> removed` lifecycle, the JWKS,
//! and the in-memory [`KeyStore`] each instance signs with.
//!
//! The database is the single source of truth, so every instance signs and
//! publishes the same keys; each reloads on an interval and on SIGHUP.

pub mod alg;
pub mod kek;
pub mod key_store;
pub mod keyset;
pub mod lifecycle;
pub mod material;
pub mod ops;

pub use alg::{JoseAlg, SigningAlg};
pub use kek::{Kek, KekError};
pub use key_store::KeyStore;
pub use keyset::{KeySet, VerifyError};

use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error(transparent)]
    Kek(#[from] KekError),
    #[error(transparent)]
    Material(#[from] material::MaterialError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("stored key data is corrupt: {0}")]
    Corrupt(String),
    #[error("no signing key with kid {0:?}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("no active {0} signing key")]
    NoActiveKey(SigningAlg),
    #[error("signing failed: {0}")]
    Sign(String),
}

impl From<diesel::result::Error> for KeyError {
    fn from(e: diesel::result::Error) -> Self {
        KeyError::Store(e.into())
    }
}

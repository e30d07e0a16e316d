//! Offline verification of Latchkey JWT access
//! tokens (RFC 9068) for resource servers.
//!
//! A [`Verifier`] learns the issuer's signing keys from its discovery
//! document and JWKS, caches them (honouring `Cache-Control`), and checks
//! each bearer token locally: signature with an allow-listed asymmetric
//! algorithm that must match the key (never `none`, never HMAC), header
//! `typ: at+jwt`, `iss`, `aud`, `exp`/`nbf`/`iat` with a small leeway. No
//! call to the issuer per request; an unknown `kid` causes at most one
//! JWKS fetch per interval, and verification goes on with the cached keys
//! while the issuer is unreachable.
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use latchkey_verify::Verifier;
//! let verifier = Verifier::builder("https://id.example.com", "https://notes.example.com")
//!     .build()?;
//! let token = verifier.verify("eyJ…").await?;
//! if token.has_scope("read:notes") {
//!     println!("{} via {}", token.subject, token.client_id);
//! }
//! # Ok(()) }
//! ```
//!
//! With the `actix` feature, [`actix::Authenticated`] and
//! [`actix::Scoped`] extract verified tokens in actix-web handlers and
//! answer failures as RFC 6750 requires.

mod algorithm;
mod claims;
mod error;
mod jws;
mod keys;
mod verifier;

#[cfg(feature = "actix")]
pub mod actix;

pub use algorithm::Algorithm;
pub use claims::AccessToken;
pub use error::VerifyError;
pub use keys::{InvalidJwks, KeySet};
pub use verifier::{BuildError, Verifier, VerifierBuilder};

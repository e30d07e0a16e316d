//! Verification of Latchkey access tokens for resource servers: JWT
//! access tokens (RFC 9068) offline, and personal access tokens (`lkp_…`)
//! by introspection (RFC 7662).
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
//!     println!("{} via {:?}", token.subject, token.client_id);
//! }
//! # Ok(()) }
//! ```
//!
//! Personal access tokens are opaque: only the issuer can say whether one
//! is valid. With [`VerifierBuilder::introspection`] (this resource
//! server's own client credentials), [`Verifier::verify`] sends tokens
//! that start with `lkp_` to the issuer's introspection endpoint and
//! caches the answer (60 s by default, never past the token's expiry), so
//! a revoked personal access token may still be accepted for that long.
//! The endpoint gets this resource server's client secret, so it must be
//! https (unless the issuer is plain http) and, when learnt from
//! discovery, on the issuer's origin. Concurrent callers with the same
//! token share one request, and at most 32 requests (by default) are out
//! at once, so a flood of made-up tokens cannot be turned against the
//! issuer.
//! Both kinds come out as the same [`AccessToken`]; its
//! [`kind`](AccessToken::kind) says which it was.
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use latchkey_verify::{TokenKind, Verifier};
//! let verifier = Verifier::builder("https://id.example.com", "https://notes.example.com")
//!     .introspection("notes-api-client-id", "notes-api-client-secret")
//!     .build()?;
//! let token = verifier.verify("lkp_…").await?;
//! assert_eq!(token.kind, TokenKind::PersonalAccessToken);
//! # Ok(()) }
//! ```
//!
//! With the `actix` feature, [`actix::Authenticated`] and
//! [`actix::Scoped`] extract verified tokens in actix-web handlers
//! (`Authorization: Bearer` with either kind, or HTTP Basic with a
//! personal access token as the password, as Redmine takes API keys) and
//! answer failures as RFC 6750 requires. Browsers keep Basic credentials
//! and send them by themselves, cross-site requests included (ambient
//! credentials, open to CSRF; RFC 6750 section 5): for routes browsers
//! call, turn Basic off with
//! [`VerifierBuilder::accept_basic(false)`](VerifierBuilder::accept_basic).

mod algorithm;
mod cache;
mod claims;
mod discovery;
mod error;
mod flight;
mod introspection;
mod jws;
mod keys;
mod verifier;

#[cfg(test)]
mod introspection_tests;

#[cfg(feature = "actix")]
pub mod actix;

pub use algorithm::Algorithm;
pub use claims::{AccessToken, TokenKind};
pub use error::VerifyError;
pub use introspection::{ClientAuth, PAT_PREFIX};
pub use keys::{InvalidJwks, KeySet};
pub use verifier::{BuildError, Verifier, VerifierBuilder};

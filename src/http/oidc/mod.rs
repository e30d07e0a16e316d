//! OpenID Connect and OAuth endpoints.

pub mod jwks;

//! OpenID Connect and OAuth endpoints. Handlers are thin: the rules live
//! in `crate::oidc` and `crate::service`.

pub mod authorize;
pub mod credentials;
pub mod device;
pub mod discovery;
pub mod end_session;
pub mod introspect;
pub mod jwks;
pub mod register;
pub mod response;
pub mod token;
pub mod userinfo;

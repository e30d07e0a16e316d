//! Pure rules and validated newtypes: no actix, no diesel.
//!
//! Every value that enters from a request, the CLI or a config file passes
//! through one of these parsers, which bound its size and shape.

pub mod alg;
pub mod audit;
pub mod client;
pub mod device;
pub mod group;
pub mod mfa;
pub mod net;
pub mod pat;
pub mod scope;
pub mod secret;
pub mod text;
pub mod user;

/// A value that failed validation, naming the field and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {problem}")]
pub struct Invalid {
    pub field: &'static str,
    pub problem: String,
}

impl Invalid {
    pub fn new(field: &'static str, problem: impl Into<String>) -> Self {
        Self {
            field,
            problem: problem.into(),
        }
    }
}

//! OAuth 2.0 / OIDC error responses: the code and HTTP status each spec
//! fixes (RFC 6749 4.1.2.1 and 5.2, RFC 6750 3.1, OIDC Core 3.1.2.6).

use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[error("{error}: {error_description}")]
pub struct OAuthError {
    pub error: &'static str,
    pub error_description: String,
}

macro_rules! codes {
    ($($fn:ident => $code:literal),* $(,)?) => {
        impl OAuthError {
            $(
                pub fn $fn(description: impl Into<String>) -> Self {
                    Self { error: $code, error_description: description.into() }
                }
            )*
        }
    };
}

codes!(
    invalid_request => "invalid_request",
    invalid_client => "invalid_client",
    invalid_grant => "invalid_grant",
    unauthorized_client => "unauthorized_client",
    unsupported_grant_type => "unsupported_grant_type",
    unsupported_response_type => "unsupported_response_type",
    invalid_scope => "invalid_scope",
    access_denied => "access_denied",
    server_error => "server_error",
    temporarily_unavailable => "temporarily_unavailable",
    login_required => "login_required",
    consent_required => "consent_required",
    invalid_token => "invalid_token",
    insufficient_scope => "insufficient_scope",
    invalid_target => "invalid_target",
);

impl OAuthError {
    /// The HTTP status for a direct (non-redirect) error response.
    pub fn status(&self) -> u16 {
        match self.error {
            "invalid_client" | "invalid_token" => 401,
            "insufficient_scope" => 403,
            "server_error" => 500,
            "temporarily_unavailable" => 503,
            _ => 400,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses() {
        assert_eq!(OAuthError::invalid_client("x").status(), 401);
        assert_eq!(OAuthError::invalid_grant("x").status(), 400);
        assert_eq!(OAuthError::insufficient_scope("x").status(), 403);
        assert_eq!(OAuthError::invalid_token("x").status(), 401);
        assert_eq!(OAuthError::invalid_scope("x").error, "invalid_scope");
    }
}

//! OAuth 2.0 / OIDC error responses: the code and HTTP status each spec
//! fixes (RFC 6749 4.1.2.1 and 5.2, RFC 6750 3.1, OIDC Core 3.1.2.6,
//! RFC 8707 2, RFC 8628 3.5).
//!
//! Which error type goes where:
//! - [`OAuthError`]: anything a protocol endpoint answers (`/authorize`
//!   redirects, `/token`, `/introspect`, `/revoke`, `/userinfo`). Its code is
//!   an [`ErrorCode`], so a typo does not compile and every code has one
//!   status.
//! - `service::ServiceError`: use cases behind the admin console, the admin
//!   API, the account pages and the CLI; `http` maps it to a page
//!   (`http::error::AppError`) or to the admin API's JSON errors.
//! - `store::StoreError`: the database; "unavailable" becomes 503 with
//!   `Retry-After` wherever it surfaces.

use serde::Serialize;

/// Every error code Latchkey answers on a protocol endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    InvalidRequest,
    InvalidClient,
    InvalidGrant,
    UnauthorizedClient,
    UnsupportedGrantType,
    UnsupportedResponseType,
    InvalidScope,
    AccessDenied,
    ServerError,
    TemporarilyUnavailable,
    LoginRequired,
    ConsentRequired,
    InvalidToken,
    InsufficientScope,
    InvalidTarget,
    RequestNotSupported,
    RequestUriNotSupported,
    /// RFC 8628 3.5: the person has not answered yet; poll again.
    AuthorizationPending,
    /// RFC 8628 3.5: polled faster than the interval; add 5 seconds.
    SlowDown,
    /// RFC 8628 3.5: the device code expired; start again.
    ExpiredToken,
    /// OIDC Core 3.1.2.6: `prompt=none`, but the person would have to do
    /// something (here: enter a second factor).
    InteractionRequired,
    /// OpenID Connect Core Error Code unmet_authentication_requirements
    /// 1.0: the authentication the request asked for (`acr_values`, a
    /// client that requires a second factor) cannot be performed for this
    /// user (they have no second factor).
    UnmetAuthenticationRequirements,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidRequest => "invalid_request",
            ErrorCode::InvalidClient => "invalid_client",
            ErrorCode::InvalidGrant => "invalid_grant",
            ErrorCode::UnauthorizedClient => "unauthorized_client",
            ErrorCode::UnsupportedGrantType => "unsupported_grant_type",
            ErrorCode::UnsupportedResponseType => "unsupported_response_type",
            ErrorCode::InvalidScope => "invalid_scope",
            ErrorCode::AccessDenied => "access_denied",
            ErrorCode::ServerError => "server_error",
            ErrorCode::TemporarilyUnavailable => "temporarily_unavailable",
            ErrorCode::LoginRequired => "login_required",
            ErrorCode::ConsentRequired => "consent_required",
            ErrorCode::InvalidToken => "invalid_token",
            ErrorCode::InsufficientScope => "insufficient_scope",
            ErrorCode::InvalidTarget => "invalid_target",
            ErrorCode::RequestNotSupported => "request_not_supported",
            ErrorCode::RequestUriNotSupported => "request_uri_not_supported",
            ErrorCode::AuthorizationPending => "authorization_pending",
            ErrorCode::SlowDown => "slow_down",
            ErrorCode::ExpiredToken => "expired_token",
            ErrorCode::InteractionRequired => "interaction_required",
            ErrorCode::UnmetAuthenticationRequirements => "unmet_authentication_requirements",
        }
    }

    /// The HTTP status of a direct (non-redirect) error response:
    /// RFC 6749 5.2 (400, 401 for `invalid_client`), RFC 6750 3.1 (401
    /// `invalid_token`, 403 `insufficient_scope`), and 500/503 for the
    /// server's own failures. Exhaustive: a new code must choose.
    pub fn status(self) -> u16 {
        match self {
            ErrorCode::InvalidClient | ErrorCode::InvalidToken => 401,
            ErrorCode::InsufficientScope => 403,
            ErrorCode::ServerError => 500,
            ErrorCode::TemporarilyUnavailable => 503,
            ErrorCode::InvalidRequest
            | ErrorCode::InvalidGrant
            | ErrorCode::UnauthorizedClient
            | ErrorCode::UnsupportedGrantType
            | ErrorCode::UnsupportedResponseType
            | ErrorCode::InvalidScope
            | ErrorCode::AccessDenied
            | ErrorCode::LoginRequired
            | ErrorCode::ConsentRequired
            | ErrorCode::InvalidTarget
            | ErrorCode::RequestNotSupported
            | ErrorCode::RequestUriNotSupported
            | ErrorCode::AuthorizationPending
            | ErrorCode::SlowDown
            | ErrorCode::ExpiredToken
            | ErrorCode::InteractionRequired
            | ErrorCode::UnmetAuthenticationRequirements => 400,
        }
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[error("{error}: {error_description}")]
pub struct OAuthError {
    pub error: ErrorCode,
    pub error_description: String,
}

macro_rules! constructors {
    ($($fn:ident => $code:ident),* $(,)?) => {
        impl OAuthError {
            $(
                pub fn $fn(description: impl Into<String>) -> Self {
                    Self { error: ErrorCode::$code, error_description: description.into() }
                }
            )*
        }
    };
}

constructors!(
    invalid_request => InvalidRequest,
    invalid_client => InvalidClient,
    invalid_grant => InvalidGrant,
    unauthorized_client => UnauthorizedClient,
    unsupported_grant_type => UnsupportedGrantType,
    unsupported_response_type => UnsupportedResponseType,
    invalid_scope => InvalidScope,
    access_denied => AccessDenied,
    server_error => ServerError,
    temporarily_unavailable => TemporarilyUnavailable,
    login_required => LoginRequired,
    consent_required => ConsentRequired,
    invalid_token => InvalidToken,
    insufficient_scope => InsufficientScope,
    invalid_target => InvalidTarget,
    request_not_supported => RequestNotSupported,
    request_uri_not_supported => RequestUriNotSupported,
    authorization_pending => AuthorizationPending,
    slow_down => SlowDown,
    expired_token => ExpiredToken,
    interaction_required => InteractionRequired,
    unmet_authentication_requirements => UnmetAuthenticationRequirements,
);

impl OAuthError {
    /// The HTTP status for a direct (non-redirect) error response.
    pub fn status(&self) -> u16 {
        self.error.status()
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
        assert_eq!(OAuthError::temporarily_unavailable("x").status(), 503);
        for e in [
            OAuthError::authorization_pending("x"),
            OAuthError::slow_down("x"),
            OAuthError::expired_token("x"),
        ] {
            assert_eq!(e.status(), 400, "RFC 8628 3.5: {}", e.error);
        }
        assert_eq!(OAuthError::slow_down("x").error.as_str(), "slow_down");
        assert_eq!(
            OAuthError::invalid_scope("x").error.as_str(),
            "invalid_scope"
        );
    }

    #[test]
    fn serializes_the_code_as_the_spec_spells_it() {
        let body = serde_json::to_value(OAuthError::unsupported_grant_type("no")).unwrap();
        assert_eq!(body["error"], "unsupported_grant_type");
        assert_eq!(body["error_description"], "no");
    }
}

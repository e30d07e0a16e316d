//! Errors of the admin JSON API: `{"error": code, "error_description": …}`
//! with the status that fits, and RFC 6750 challenges for token problems.

use actix_web::http::StatusCode;
use actix_web::http::header::{CACHE_CONTROL, RETRY_AFTER, WWW_AUTHENTICATE};
use actix_web::{HttpResponse, ResponseError};
use serde_json::json;

use crate::domain::scope::ADMIN_SCOPE;
use crate::http::oidc::response::RETRY_AFTER_SECS;
use crate::keys::KeyError;
use crate::service::ServiceError;
use crate::store::StoreError;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{error}: {description}")]
pub struct ApiError {
    pub status: StatusCode,
    pub error: &'static str,
    pub description: String,
    challenge: Option<String>,
    /// `Retry-After` seconds, for a 503 (the database is away).
    retry_after: Option<&'static str>,
}

impl ApiError {
    fn new(status: StatusCode, error: &'static str, description: impl Into<String>) -> Self {
        Self {
            status,
            error,
            description: description.into(),
            challenge: None,
            retry_after: None,
        }
    }

    /// 401: no token (bare challenge) or a bad one (`invalid_token`).
    pub fn unauthenticated(problem: Option<&str>) -> Self {
        match problem {
            None => Self {
                challenge: Some("Bearer realm=\"latchkey-admin\"".into()),
                ..Self::new(
                    StatusCode::UNAUTHORIZED,
                    "invalid_token",
                    "a bearer access token with the latchkey:admin scope is required",
                )
            },
            Some(p) => Self {
                challenge: Some(format!(
                    "Bearer realm=\"latchkey-admin\", error=\"invalid_token\", error_description=\"{p}\""
                )),
                ..Self::new(StatusCode::UNAUTHORIZED, "invalid_token", p)
            },
        }
    }

    /// 403 `insufficient_scope` naming `latchkey:admin`.
    pub fn insufficient_scope() -> Self {
        Self {
            challenge: Some(format!(
                "Bearer realm=\"latchkey-admin\", error=\"insufficient_scope\", scope=\"{ADMIN_SCOPE}\""
            )),
            ..Self::new(
                StatusCode::FORBIDDEN,
                "insufficient_scope",
                "the token lacks the latchkey:admin scope",
            )
        }
    }

    pub fn forbidden(description: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", description)
    }

    pub fn not_found() -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "not_found",
            "no such API endpoint or method",
        )
    }

    pub fn invalid_request(description: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_request", description)
    }

    pub fn from_store(e: StoreError) -> Self {
        ServiceError::from(e).into()
    }
}

impl From<ServiceError> for ApiError {
    fn from(e: ServiceError) -> Self {
        match e {
            ServiceError::Invalid(i) => Self::invalid_request(i.to_string()),
            ServiceError::NotFound { .. } => {
                Self::new(StatusCode::NOT_FOUND, "not_found", e.to_string())
            }
            ServiceError::Conflict(m) => Self::new(StatusCode::CONFLICT, "conflict", m),
            ServiceError::Locked(m) => Self::new(StatusCode::FORBIDDEN, "locked", m),
            ServiceError::Forbidden(m) => Self::forbidden(m),
            ServiceError::PreconditionFailed(m) => {
                Self::new(StatusCode::PRECONDITION_FAILED, "precondition_failed", m)
            }
            ServiceError::Unavailable(m) => {
                tracing::warn!(detail = %m, "admin API: database unavailable");
                Self {
                    retry_after: Some(RETRY_AFTER_SECS),
                    ..Self::new(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "temporarily_unavailable",
                        "the database is unavailable; try again",
                    )
                }
            }
            ServiceError::Internal(m) => {
                tracing::error!(detail = %m, "admin API: internal error");
                Self::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "server_error",
                    "internal error",
                )
            }
        }
    }
}

impl From<KeyError> for ApiError {
    fn from(e: KeyError) -> Self {
        match e {
            KeyError::NotFound(_) => Self::new(StatusCode::NOT_FOUND, "not_found", e.to_string()),
            KeyError::Conflict(m) => Self::new(StatusCode::CONFLICT, "conflict", m),
            KeyError::Store(s) => Self::from_store(s),
            other => {
                tracing::error!(error = %other, "admin API: key operation failed");
                Self::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "server_error",
                    "key operation failed",
                )
            }
        }
    }
}

impl From<diesel::result::Error> for ApiError {
    fn from(e: diesel::result::Error) -> Self {
        ServiceError::from(e).into()
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        let mut resp = HttpResponse::build(self.status);
        resp.insert_header((CACHE_CONTROL, "no-store"));
        if let Some(c) = &self.challenge {
            resp.insert_header((WWW_AUTHENTICATE, c.clone()));
        }
        if let Some(secs) = self.retry_after {
            resp.insert_header((RETRY_AFTER, secs));
        }
        resp.json(json!({ "error": self.error, "error_description": self.description }))
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        Self::from_store(e)
    }
}

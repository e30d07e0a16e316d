//! Errors as HTTP answers.
//!
//! [`AppError`] is for browser pages (HTML error pages) and the ops
//! endpoints. OAuth/OIDC protocol errors (RFC 6749 5.2) get their own type
//! with the protocol endpoints, because their codes and statuses are fixed
//! by the specs.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};

use crate::http::templates::error_page;
use crate::service::ServiceError;
use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("not found")]
    NotFound,
    #[error("service unavailable")]
    Unavailable(String),
    #[error("internal error")]
    Internal(String),
}

impl From<StoreError> for AppError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Unavailable(m) => AppError::Unavailable(m),
            StoreError::Query(q) => AppError::Internal(q.to_string()),
        }
    }
}

impl From<ServiceError> for AppError {
    fn from(e: ServiceError) -> Self {
        match e {
            ServiceError::Invalid(i) => AppError::BadRequest(i.to_string()),
            ServiceError::NotFound { .. } => AppError::NotFound,
            ServiceError::Conflict(m) | ServiceError::PreconditionFailed(m) => {
                AppError::BadRequest(m)
            }
            ServiceError::Locked(m) | ServiceError::Forbidden(m) => AppError::Forbidden(m),
            ServiceError::Unavailable(m) => AppError::Unavailable(m),
            ServiceError::Internal(m) => AppError::Internal(m),
        }
    }
}

impl ResponseError for AppError {
    fn status_code(&self) -> StatusCode {
        match self {
            AppError::BadRequest(_) => StatusCode::BAD_REQUEST,
            AppError::Forbidden(_) => StatusCode::FORBIDDEN,
            AppError::NotFound => StatusCode::NOT_FOUND,
            AppError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            AppError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let status = self.status_code();
        match self {
            AppError::BadRequest(m) => error_page(status, "Bad request", m),
            AppError::Forbidden(m) => error_page(status, "Forbidden", m),
            AppError::NotFound => {
                error_page(status, "Not found", "There is no page at this address.")
            }
            AppError::Unavailable(detail) => {
                tracing::warn!(detail = %detail, "answering 503: database unavailable");
                let mut resp = error_page(
                    status,
                    "Temporarily unavailable",
                    "Latchkey cannot reach its database right now. Please try again in a moment.",
                );
                resp.headers_mut().insert(
                    actix_web::http::header::RETRY_AFTER,
                    actix_web::http::header::HeaderValue::from_static("5"),
                );
                resp
            }
            AppError::Internal(detail) => {
                tracing::error!(detail = %detail, "internal error");
                error_page(
                    status,
                    "Something went wrong",
                    "An internal error occurred. It has been logged.",
                )
            }
        }
    }
}

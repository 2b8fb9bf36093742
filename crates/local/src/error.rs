//! Errors of both APIs, answered as `{"error": "..."}` with the matching status code.

use axum::http::header::RETRY_AFTER;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use runpod_protocol::ErrorBody;
use std::time::Duration;

/// Why a request was refused. Each variant becomes one HTTP status with a JSON body that says
/// what is wrong (never a secret).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ApiError {
    /// `400`: the request is malformed (bad JSON, missing `input`, out-of-range values).
    #[error("{0}")]
    BadRequest(String),
    /// `401`: missing or wrong API key.
    #[error("{0}")]
    Unauthorized(String),
    /// `404`: unknown endpoint, route or job.
    #[error("{0}")]
    NotFound(String),
    /// `409`: a worker reported on a job it does not hold (finished, cancelled, re-queued).
    #[error("{0}")]
    Conflict(String),
    /// `408`: the request body did not arrive within the body timeout.
    #[error("{0}")]
    RequestTimeout(String),
    /// `413`: the body is larger than the configured limit.
    #[error("{0}")]
    PayloadTooLarge(String),
    /// `429`: queue full or rate limit reached; the client should back off and retry, not
    /// before `retry_after` (sent as `Retry-After`, whole seconds, at least 1).
    #[error("{message}")]
    TooManyRequests {
        /// What is full.
        message: String,
        /// When a retry may succeed.
        retry_after: Duration,
    },
    /// `503`: the endpoint cannot take the request now (shutting down, or its data directory
    /// cannot be written).
    #[error("{0}")]
    Unavailable(String),
}

impl ApiError {
    /// The HTTP status this error is answered with.
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::RequestTimeout(_) => StatusCode::REQUEST_TIMEOUT,
            ApiError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// `404` for a job id this endpoint does not know (never queued, or past its retention).
    pub(crate) fn unknown_job(id: &str) -> Self {
        ApiError::NotFound(format!("job '{id}' not found (unknown id, or its result has expired)"))
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let retry_after = match &self {
            ApiError::TooManyRequests { retry_after, .. } => Some(retry_after_secs(*retry_after)),
            _ => None,
        };
        let mut response = (status, Json(ErrorBody { error: self.to_string() })).into_response();
        if let Some(secs) = retry_after {
            response.headers_mut().insert(RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}

/// `Retry-After` in whole seconds, rounded up, at least 1.
fn retry_after_secs(d: Duration) -> u64 {
    d.as_millis().div_ceil(1000).max(1).try_into().unwrap_or(u64::MAX)
}

/// Why the data directory ([`crate::LocalEndpointBuilder::data_dir`]) could not be used: the
/// source of the `std::io::Error` that `bind` returns then, so that a caller can tell it from
/// an error of the listening address (`err.get_ref()` downcast to this type).
#[cfg(feature = "persistence")]
#[derive(Debug)]
pub struct DataDirError {
    message: String,
}

#[cfg(feature = "persistence")]
impl DataDirError {
    pub(crate) fn new(dir: &std::path::Path, why: String) -> Self {
        DataDirError { message: format!("cannot use the data directory {}: {why}", dir.display()) }
    }
}

#[cfg(feature = "persistence")]
impl std::fmt::Display for DataDirError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

#[cfg(feature = "persistence")]
impl std::error::Error for DataDirError {}

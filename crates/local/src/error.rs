//! Errors of both APIs, answered as `{"error": "..."}` with the matching status code.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use runpod_protocol::ErrorBody;

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
    /// `413`: the body is larger than the configured limit.
    #[error("{0}")]
    PayloadTooLarge(String),
    /// `429`: queue full or rate limit reached; the client should back off and retry.
    #[error("{0}")]
    TooManyRequests(String),
}

impl ApiError {
    /// The HTTP status this error is answered with.
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::TooManyRequests(_) => StatusCode::TOO_MANY_REQUESTS,
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
        (status, Json(ErrorBody { error: self.to_string() })).into_response()
    }
}

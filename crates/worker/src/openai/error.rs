//! Errors in OpenAI's shape, with the HTTP status each stands for.

use super::sse::sse_event;
use serde_json::{json, Value};

/// An error in OpenAI's shape, with the HTTP status it stands for.
///
/// Serialized as `{"message", "type", "param", "code"}` with the status in `code`, as vLLM
/// (and so worker-vllm) does, unless the error has a code of its own (OpenAI's
/// `model_not_found`: then the status is read from the `type`, `not_found_error`); [`Error::into_output`] wraps it as `{"error": {...}}`, the
/// value a handler returns so that the job fails with it and the OpenAI route answers with
/// that status.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct Error {
    status: u16,
    kind: String,
    message: String,
    param: Option<String>,
    code: Option<String>,
}

impl Error {
    /// An error with any status and type.
    pub fn new(status: u16, kind: impl Into<String>, message: impl Into<String>) -> Self {
        Error { status, kind: kind.into(), message: message.into(), param: None, code: None }
    }

    /// `400 invalid_request_error`.
    pub fn invalid_request(message: impl Into<String>) -> Self {
        Error::new(400, "invalid_request_error", message)
    }

    /// `400 invalid_request_error` about parameter `param`.
    pub fn invalid(param: &str, message: impl Into<String>) -> Self {
        Error { param: Some(param.to_owned()), ..Error::invalid_request(message) }
    }

    /// `404 not_found_error`.
    pub fn not_found(message: impl Into<String>) -> Self {
        Error::new(404, "not_found_error", message)
    }

    /// `404 not_found_error` with OpenAI's code `model_not_found`: the request names a model
    /// this worker does not serve.
    pub fn model_not_found(model: &str) -> Self {
        let shown: String = model.chars().take(200).collect();
        Error {
            param: Some("model".into()),
            code: Some("model_not_found".into()),
            ..Error::not_found(format!(
                "The model `{shown}` does not exist: GET /v1/models lists the models served"
            ))
        }
    }

    /// `500 server_error`.
    pub fn server(message: impl Into<String>) -> Self {
        Error::new(500, "server_error", message)
    }

    /// The HTTP status.
    pub fn status(&self) -> u16 {
        self.status
    }

    /// OpenAI's error `type`.
    pub fn kind(&self) -> &str {
        &self.kind
    }

    /// The parameter at fault, if any.
    pub fn param(&self) -> Option<&str> {
        self.param.as_deref()
    }

    /// OpenAI's error code (`model_not_found`), when the error has one.
    pub fn code(&self) -> Option<&str> {
        self.code.as_deref()
    }

    /// `{"message", "type", "param", "code"}`, `code` being the error's own code if it has one,
    /// else the status.
    pub fn body(&self) -> Value {
        let code = match &self.code {
            Some(c) => json!(c),
            None => json!(self.status),
        };
        json!({"message": self.message, "type": self.kind, "param": self.param, "code": code})
    }

    /// `{"error": {...}}`: as a handler's output it fails the job with the error object.
    pub fn into_output(self) -> Value {
        json!({"error": self.body()})
    }

    /// The error as one Server-Sent Event, for a stream that fails after it started.
    pub fn sse_event(&self) -> String {
        sse_event(&json!({"error": self.body()}))
    }
}

//! The one error type of this crate.

use runpod_protocol::JobStatus;
use std::time::Duration;

/// Everything that can go wrong when calling an endpoint.
///
/// Each HTTP failure class has its own variant, so callers can tell a bad request (fix the
/// input) from a bad key (fix the config), a missing job, rate limiting (wait) and a
/// server failure (try later). No variant ever carries the API key.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// `400`: the server refused the request; `message` is what it said.
    #[error("bad request (400): {message}")]
    BadRequest {
        /// The server's explanation.
        message: String,
    },
    /// `401` (or `403`): the API key is missing, wrong, or not allowed.
    #[error("unauthorized ({status}): {message}")]
    Unauthorized {
        /// 401 or 403.
        status: u16,
        /// The server's explanation.
        message: String,
    },
    /// `404`: unknown endpoint, or unknown (or expired) job.
    #[error("not found (404): {message}")]
    NotFound {
        /// The server's explanation.
        message: String,
    },
    /// `429`: too many requests; still refused after the retries the [`RetryPolicy`](crate::RetryPolicy) allows.
    #[error("rate limited (429){}: {message}", retry_after_text(*.retry_after))]
    RateLimited {
        /// The server's `Retry-After`, when it sent one.
        retry_after: Option<Duration>,
        /// The server's explanation.
        message: String,
    },
    /// `5xx`: the server failed.
    #[error("server error ({status}): {message}")]
    Server {
        /// The HTTP status, 500 to 599.
        status: u16,
        /// The server's explanation.
        message: String,
    },
    /// Any other non-success HTTP status (e.g. `413`).
    #[error("unexpected HTTP status {status}: {message}")]
    Http {
        /// The HTTP status.
        status: u16,
        /// The server's explanation.
        message: String,
    },
    /// One HTTP request took longer than the request timeout. The `reqwest` error (URL and
    /// cause) is the [`source`](std::error::Error::source), not repeated in the message.
    #[error("request timed out")]
    RequestTimeout(#[source] reqwest::Error),
    /// The job did not reach a final state within the time the caller was willing to wait.
    #[error("job {id} still {status} after waiting {waited:?}")]
    WaitTimeout {
        /// The job's id.
        id: String,
        /// Its last known status.
        status: JobStatus,
        /// How long the client waited.
        waited: Duration,
    },
    /// The server could not be reached, or the connection broke. The `reqwest` error (URL and
    /// cause) is the [`source`](std::error::Error::source), not repeated in the message.
    #[error("network error")]
    Network(#[source] reqwest::Error),
    /// A success answer was larger than the client accepts (see
    /// [`Endpoint::with_max_answer_bytes`](crate::Endpoint::with_max_answer_bytes)); it was
    /// not read further.
    #[error("answer larger than {limit} bytes, the client's limit; not read")]
    AnswerTooLarge {
        /// The limit, in bytes.
        limit: usize,
    },
    /// An answer (or a job output) did not have the expected shape.
    #[error("could not decode {what}: {message}")]
    Decode {
        /// What was being decoded (e.g. "status answer", "job output").
        what: String,
        /// Where and why decoding failed.
        message: String,
    },
    /// The request was refused before sending: bad policy, webhook URL, payload size, input.
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    /// No API key was given and `RUNPOD_API_KEY` is not set (or is empty).
    #[error("no API key: pass one or set RUNPOD_API_KEY")]
    MissingApiKey,
    /// The job ended `FAILED`, `CANCELLED` or `TIMED_OUT` where an output was expected.
    #[error("job {id} ended {status}{}", error_text(.error))]
    JobEnded {
        /// The job's id.
        id: String,
        /// Its final status.
        status: JobStatus,
        /// The job's error message, when it has one.
        error: Option<String>,
    },
    /// An output was asked of a job that has not finished.
    #[error("job {id} has not finished (status {status})")]
    NotFinished {
        /// The job's id.
        id: String,
        /// Its current status.
        status: JobStatus,
    },
}

fn retry_after_text(d: Option<Duration>) -> String {
    d.map(|d| format!(", retry after {d:?}")).unwrap_or_default()
}

fn error_text(e: &Option<String>) -> String {
    e.as_ref().map(|e| format!(": {e}")).unwrap_or_default()
}

impl Error {
    /// The HTTP status of an error answer, if this error is one.
    pub fn http_status(&self) -> Option<u16> {
        match self {
            Error::BadRequest { .. } => Some(400),
            Error::NotFound { .. } => Some(404),
            Error::RateLimited { .. } => Some(429),
            Error::Unauthorized { status, .. }
            | Error::Server { status, .. }
            | Error::Http { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// Builds the error for a non-success answer from its status, body and `Retry-After`.
    pub(crate) fn from_answer(status: u16, body: &[u8], retry_after: Option<Duration>) -> Error {
        let message = error_message(body);
        match status {
            400 => Error::BadRequest { message },
            401 | 403 => Error::Unauthorized { status, message },
            404 => Error::NotFound { message },
            429 => Error::RateLimited { retry_after, message },
            500..=599 => Error::Server { status, message },
            _ => Error::Http { status, message },
        }
    }

    /// The error for a redirect answer, which the client does not follow: the status and
    /// where it pointed (without its query).
    pub(crate) fn redirect(status: u16, location: Option<&str>) -> Error {
        let target = location
            .map(|l| match url::Url::parse(l) {
                Ok(mut u) => {
                    u.set_query(None);
                    let _ = u.set_password(None);
                    let _ = u.set_username("");
                    u.to_string()
                }
                Err(_) => shorten(l.split('?').next().unwrap_or("")),
            })
            .unwrap_or_else(|| "no Location".to_owned());
        Error::Http {
            status,
            message: format!(
                "redirect to {target}; the client does not follow redirects (point the base URL at the \
                 final address)"
            ),
        }
    }

    /// Maps a transport error of reqwest to `RequestTimeout` or `Network`.
    pub(crate) fn from_transport(e: reqwest::Error) -> Error {
        if e.is_timeout() {
            Error::RequestTimeout(e.without_url_query())
        } else {
            Error::Network(e.without_url_query())
        }
    }
}

/// The error and its sources, `: `-separated (for log lines).
pub(crate) fn with_sources(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        text.push_str(": ");
        text.push_str(&c.to_string());
        cause = c.source();
    }
    text
}

/// Longest server message kept in an error, in characters.
const MAX_MESSAGE_CHARS: usize = 500;

/// The `error` field of a JSON error body, else the body's text, shortened.
fn error_message(body: &[u8]) -> String {
    if let Ok(b) = serde_json::from_slice::<runpod_protocol::ErrorBody>(body) {
        return shorten(&b.error);
    }
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    if text.is_empty() {
        "(empty answer)".to_owned()
    } else {
        shorten(text)
    }
}

fn shorten(s: &str) -> String {
    if s.chars().count() <= MAX_MESSAGE_CHARS {
        s.to_owned()
    } else {
        let mut out: String = s.chars().take(MAX_MESSAGE_CHARS).collect();
        out.push('…');
        out
    }
}

trait WithoutUrlQuery {
    fn without_url_query(self) -> Self;
}

impl WithoutUrlQuery for reqwest::Error {
    /// Drops the query string from the URL an error prints (it never holds the key, but keep messages short).
    fn without_url_query(mut self) -> Self {
        if let Some(url) = self.url_mut() {
            url.set_query(None);
        }
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_map_to_their_variants() {
        let body = br#"{"error": "input is required"}"#;
        match Error::from_answer(400, body, None) {
            Error::BadRequest { message } => assert_eq!(message, "input is required"),
            e => panic!("{e:?}"),
        }
        assert!(matches!(Error::from_answer(401, b"", None), Error::Unauthorized { status: 401, .. }));
        assert!(
            matches!(Error::from_answer(404, b"nope", None), Error::NotFound { message } if message == "nope")
        );
        let e = Error::from_answer(429, b"{}", Some(Duration::from_secs(3)));
        assert!(matches!(e, Error::RateLimited { retry_after: Some(d), .. } if d == Duration::from_secs(3)));
        assert!(e.to_string().contains("retry after 3s"), "{e}");
        assert!(matches!(Error::from_answer(503, b"", None), Error::Server { status: 503, .. }));
        assert!(matches!(Error::from_answer(413, b"", None), Error::Http { status: 413, .. }));
        assert_eq!(Error::from_answer(502, b"", None).http_status(), Some(502));
    }

    #[test]
    fn long_bodies_are_shortened() {
        let body = "x".repeat(5000);
        let Error::Server { message, .. } = Error::from_answer(500, body.as_bytes(), None) else {
            panic!("wrong variant")
        };
        assert_eq!(message.chars().count(), MAX_MESSAGE_CHARS + 1);
    }

    #[test]
    fn redirects_name_their_target_without_query_or_user_info() {
        let e = Error::redirect(301, Some("https://user:pw@elsewhere.example/v2/x?token=SECRET"));
        let text = e.to_string();
        assert!(matches!(e, Error::Http { status: 301, .. }));
        assert!(text.contains("https://elsewhere.example/v2/x"), "{text}");
        assert!(!text.contains("SECRET") && !text.contains("pw"), "{text}");
        assert!(Error::redirect(302, None).to_string().contains("no Location"));
    }

    #[test]
    fn job_ended_names_status_and_error() {
        let e = Error::JobEnded { id: "j1".into(), status: JobStatus::Failed, error: Some("boom".into()) };
        assert_eq!(e.to_string(), "job j1 ended FAILED: boom");
    }
}

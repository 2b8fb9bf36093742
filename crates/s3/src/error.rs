//! Error types of storage and download operations, and the helpers that keep secrets out of them.

use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use std::path::PathBuf;

/// Why a storage operation (client set-up, upload, presign, get) failed.
///
/// Messages name the operation, bucket, key and endpoint; they never contain the access key id
/// or the secret key (see [`crate::StorageConfig`]).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StorageError {
    /// Neither the job's `s3Config` nor the `BUCKET_*` environment configure a bucket.
    #[error(
        "no S3 storage configured: the job has no s3Config and BUCKET_ENDPOINT_URL, \
         BUCKET_ACCESS_KEY_ID and BUCKET_SECRET_ACCESS_KEY are not all set"
    )]
    NotConfigured,
    /// The configuration is present but unusable (bad URL, empty bucket name, ...).
    #[error("invalid S3 configuration: {0}")]
    InvalidConfig(String),
    /// The endpoint's address is not one the [`EndpointPolicy`](crate::EndpointPolicy) allows
    /// (loopback, link-local such as cloud metadata, a private network, ...); nothing was sent.
    #[error("refused to connect to the S3 endpoint {endpoint}: {reason} ({remedy})")]
    BlockedEndpoint {
        /// The endpoint URL, without user info or query.
        endpoint: String,
        /// Which address was refused.
        reason: String,
        /// The setting that would allow it.
        remedy: &'static str,
    },
    /// An object name that would leave the job's prefix or is empty.
    #[error("invalid object name {name:?}: {reason}")]
    InvalidName {
        /// The name as given.
        name: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The S3 service refused the request or could not be reached.
    #[error("S3 {operation} of s3://{bucket}/{key} at {endpoint} failed: {message}")]
    Request {
        /// The S3 operation (`PutObject`, `UploadPart`, ...).
        operation: &'static str,
        /// The bucket.
        bucket: String,
        /// The object key (empty for bucket operations).
        key: String,
        /// The endpoint URL, without user info or query.
        endpoint: String,
        /// What went wrong, secrets removed.
        message: String,
    },
    /// A local file could not be read or written.
    #[error("{action} {path}: {source}")]
    Io {
        /// What was being done (`reading`, `writing`, ...).
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A stream handed to an upload failed.
    #[error("reading the upload stream for {key}: {source}")]
    Stream {
        /// The object key being written.
        key: String,
        /// The stream's error.
        source: std::io::Error,
    },
    /// A presigned URL was asked for with an expiry S3 does not allow.
    #[error("presigned URL expiry must be between 1 s and 7 days, got {0:?}")]
    PresignExpiry(std::time::Duration),
    /// No storage is configured and the data is too large to return inline.
    #[error(
        "no S3 storage configured and {name:?} is {size} bytes, more than the {limit} bytes \
         returned inline; give the job an s3Config or set the BUCKET_* variables"
    )]
    InlineTooLarge {
        /// The object name.
        name: String,
        /// Its size in bytes.
        size: u64,
        /// The inline limit in bytes.
        limit: u64,
    },
    /// An object is larger than the cap the caller set.
    #[error("s3://{bucket}/{key} exceeds the size cap of {limit} bytes")]
    TooLarge {
        /// The bucket.
        bucket: String,
        /// The key.
        key: String,
        /// The cap in bytes.
        limit: u64,
    },
}

/// Why downloading an input failed.
///
/// URLs in messages are shown without user info and query string (a presigned URL's query is a
/// credential).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DownloadError {
    /// Not an `http`, `https` or `s3` URL, or not a URL at all.
    #[error("cannot download {url}: {reason}")]
    InvalidUrl {
        /// The URL, redacted.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The destination is not a publicly routable address (server-side request forgery guard).
    #[error(
        "refused to download {url}: {reason} (set RUNPOD_ALLOW_PRIVATE_DOWNLOAD_URLS=true to allow \
         private addresses)"
    )]
    Blocked {
        /// The URL, redacted.
        url: String,
        /// Which address or rule blocked it.
        reason: String,
    },
    /// The body is larger than `RUNPOD_MAX_DOWNLOAD_BYTES`.
    #[error("download of {url} exceeds the size cap of {limit} bytes (RUNPOD_MAX_DOWNLOAD_BYTES)")]
    TooLarge {
        /// The URL, redacted.
        url: String,
        /// The cap in bytes.
        limit: u64,
    },
    /// The server answered with an error status (after retries for 5xx and 429).
    #[error("download of {url} failed: HTTP {status}")]
    Status {
        /// The URL, redacted.
        url: String,
        /// The HTTP status code.
        status: u16,
    },
    /// More redirects than allowed.
    #[error("download of {url} failed: more than {limit} redirects")]
    TooManyRedirects {
        /// The URL, redacted.
        url: String,
        /// The redirect limit.
        limit: usize,
    },
    /// The connection failed or broke (after retries).
    #[error("download of {url} failed: {message}")]
    Transport {
        /// The URL, redacted.
        url: String,
        /// The error chain, without the URL.
        message: String,
    },
    /// An `s3://` URL and no storage to read it with, or the S3 request failed.
    #[error("download of {url} failed: {source}")]
    Storage {
        /// The URL.
        url: String,
        /// The storage error.
        source: Box<StorageError>,
    },
    /// A downloaded `.zip` could not be extracted (corrupt, unsafe entry names, over the cap).
    #[error("cannot extract {path}: {reason}")]
    Archive {
        /// The archive.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The file could not be written.
    #[error("writing {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
}

/// A URL fit for messages and logs: no user info, no query, no fragment.
pub fn redact_url(raw: &str) -> String {
    match url::Url::parse(raw) {
        Ok(mut u) => {
            let had_query = u.query().is_some();
            let _ = u.set_username("");
            let _ = u.set_password(None);
            u.set_query(None);
            u.set_fragment(None);
            let mut s = u.to_string();
            if had_query {
                s.push_str("?…");
            }
            s
        }
        Err(_) => "<invalid URL>".to_owned(),
    }
}

/// Replaces every occurrence of the given secrets in `text` with `[redacted]`.
pub(crate) fn scrub(mut text: String, secrets: &[&str]) -> String {
    for s in secrets {
        // Very short values would redact unrelated text; real keys are long.
        if s.len() >= 4 && text.contains(s) {
            text = text.replace(s, "[redacted]");
        }
    }
    text
}

/// A one-line explanation of an SDK error: the service's code and message, or the
/// connection error chain, with a hint for the usual causes.
pub(crate) fn describe_sdk_error<E, R>(err: &SdkError<E, R>) -> String
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug + 'static,
{
    match err {
        SdkError::ServiceError(service) => {
            let e = service.err();
            let code = e.code().unwrap_or("Unknown");
            let msg = e.message().unwrap_or("");
            let hint = match code {
                "SignatureDoesNotMatch" | "InvalidAccessKeyId" | "AccessDenied" | "InvalidToken" => {
                    " (check the access key id and secret key of the s3Config or BUCKET_* variables)"
                }
                "NoSuchBucket" => " (the bucket does not exist; create it first)",
                _ => "",
            };
            if msg.is_empty() {
                format!("{code}{hint}")
            } else {
                format!("{code}: {msg}{hint}")
            }
        }
        SdkError::DispatchFailure(_) => format!("could not reach the S3 endpoint: {}", error_chain(err)),
        SdkError::TimeoutError(_) => format!("timed out: {}", error_chain(err)),
        _ => DisplayErrorContext(err).to_string(),
    }
}

/// `error: cause: cause` on one line.
pub(crate) fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redact_url_drops_credentials_and_query() {
        assert_eq!(
            redact_url("https://user:pw@example.com/a/b.png?X-Amz-Signature=abc#f"),
            "https://example.com/a/b.png?…"
        );
        assert_eq!(redact_url("http://example.com/x"), "http://example.com/x");
        assert_eq!(redact_url("not a url"), "<invalid URL>");
    }

    #[test]
    fn scrub_replaces_secrets() {
        let out = scrub("key AKIAXYZ and secret s3cr3tvalue".into(), &["AKIAXYZ", "s3cr3tvalue", ""]);
        assert_eq!(out, "key [redacted] and secret [redacted]");
    }
}

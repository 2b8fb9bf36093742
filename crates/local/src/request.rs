//! Reading requests: bodies (size-limited, JSON whatever the content type says), path
//! parameters and query strings, every refusal as an [`ApiError`].

use crate::error::ApiError;
use axum::body::Body;
use axum::extract::{FromRequestParts, Path};
use axum::http::request::Parts;
use bytes::Bytes;
use http_body_util::{BodyExt, LengthLimitError, Limited};
use serde::de::DeserializeOwned;
use std::time::Duration;

/// Path parameters, like axum's [`Path`], refused with a JSON `400` when they do not decode.
pub(crate) struct Params<T>(pub T);

impl<T, S> FromRequestParts<S> for Params<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match Path::<T>::from_request_parts(parts, state).await {
            Ok(Path(t)) => Ok(Params(t)),
            Err(e) => Err(ApiError::BadRequest(format!("bad path: {}", e.body_text()))),
        }
    }
}

/// Reads at most `limit` bytes of `body` within `timeout` and parses them as JSON into `T`.
///
/// The content type is ignored on purpose: the Python SDK posts JSON as
/// `application/x-www-form-urlencoded`. Errors name the offending field; values under
/// `s3Config` are never echoed, since they may be secrets.
pub(crate) async fn read_json<T: DeserializeOwned>(
    body: Body,
    limit: usize,
    timeout: Duration,
) -> Result<(T, usize), ApiError> {
    let bytes = read_body(body, limit, timeout).await?;
    Ok((parse_json(&bytes)?, bytes.len()))
}

/// Reads at most `limit` bytes of `body` within `timeout`: `413` past the limit, `408` past
/// the timeout, `400` when the body is broken on the wire (bad chunk size, cut short).
pub(crate) async fn read_body(body: Body, limit: usize, timeout: Duration) -> Result<Bytes, ApiError> {
    let collect = Limited::new(body, limit).collect();
    match tokio::time::timeout(timeout, collect).await {
        Ok(Ok(collected)) => Ok(collected.to_bytes()),
        Ok(Err(e)) if e.is::<LengthLimitError>() => {
            Err(ApiError::PayloadTooLarge(format!("request body is larger than the limit of {limit} bytes")))
        }
        Ok(Err(e)) => Err(ApiError::BadRequest(format!("could not read the request body: {}", chain(&*e)))),
        Err(_) => Err(ApiError::RequestTimeout(format!(
            "the request body did not arrive within {} ms",
            timeout.as_millis()
        ))),
    }
}

/// An error and its sources, `: `-separated (hyper's own message is only the outermost one).
fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut next = e.source();
    while let Some(s) = next {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        next = s.source();
    }
    out
}

/// Parses `bytes`, a JSON object, into `T` with an error message that names the field at fault.
pub(crate) fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    match bytes.iter().find(|b| !b.is_ascii_whitespace()) {
        None => return Err(ApiError::BadRequest("request body is empty; expected a JSON object".into())),
        Some(b'{') => {}
        Some(_) => return Err(ApiError::BadRequest("request body must be a JSON object".into())),
    }
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut *de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if inner.is_syntax() || inner.is_eof() {
            ApiError::BadRequest(format!("request body is not valid JSON: {inner}"))
        } else if path.starts_with("s3Config") {
            // serde's message may quote the value: never echo what could be a secret.
            ApiError::BadRequest(format!(
                "invalid {path}: s3Config must be a JSON object with string fields accessId, accessSecret, bucketName, endpointUrl"
            ))
        } else if path == "." {
            ApiError::BadRequest(format!("invalid request body: {inner}"))
        } else {
            ApiError::BadRequest(format!("invalid field '{path}': {inner}"))
        }
    })?;
    // Bytes after the object (`{"input": 1} junk`) make the body invalid JSON as well.
    de.end().map_err(|e| ApiError::BadRequest(format!("request body is not valid JSON: {e}")))?;
    Ok(value)
}

/// Parses a query string into `(key, value)` pairs, percent-decoded.
pub(crate) fn query_pairs(query: Option<&str>) -> Vec<(String, String)> {
    url::form_urlencoded::parse(query.unwrap_or("").as_bytes()).into_owned().collect()
}

/// The value of `key` in a query as a `u64`, or `400` naming the parameter.
pub(crate) fn query_u64(pairs: &[(String, String)], key: &str) -> Result<Option<u64>, ApiError> {
    match pairs.iter().find(|(k, _)| k == key) {
        None => Ok(None),
        Some((_, v)) => v.parse().map(Some).map_err(|_| {
            ApiError::BadRequest(format!("query parameter '{key}' must be a whole number, got '{v}'"))
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use runpod_protocol::JobRequest;

    #[test]
    fn messages_name_the_problem() {
        let e = parse_json::<JobRequest>(b"{").unwrap_err();
        assert!(e.to_string().contains("not valid JSON"), "{e}");
        let e = parse_json::<JobRequest>(b"{}").unwrap_err();
        assert!(e.to_string().contains("input"), "{e}");
        let e = parse_json::<JobRequest>(br#"{"input": 1, "policy": {"ttl": "x"}}"#).unwrap_err();
        assert!(e.to_string().contains("policy.ttl"), "{e}");
        let e = parse_json::<JobRequest>(b"").unwrap_err();
        assert!(e.to_string().contains("empty"), "{e}");
    }

    #[test]
    fn s3_values_are_not_echoed() {
        let body = br#"{"input": 1, "s3Config": {"accessId": "a", "accessSecret": 987654321, "bucketName": "b", "endpointUrl": "e"}}"#;
        let e = parse_json::<JobRequest>(body).unwrap_err();
        assert!(!e.to_string().contains("987654321"), "{e}");
        assert!(e.to_string().contains("s3Config.accessSecret"), "{e}");
    }
}

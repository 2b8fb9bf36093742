//! Reading requests: bodies (size-limited, JSON whatever the content type says) and path
//! parameters, every refusal as an [`ApiError`].

use crate::error::ApiError;
use axum::body::Body;
use axum::extract::{FromRequestParts, Path};
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

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

/// Reads at most `limit` bytes of `body` and parses them as JSON into `T`.
///
/// The content type is ignored on purpose: the Python SDK posts JSON as
/// `application/x-www-form-urlencoded`. Errors name the offending field; values under
/// `s3Config` are never echoed, since they may be secrets.
pub(crate) async fn read_json<T: DeserializeOwned>(body: Body, limit: usize) -> Result<T, ApiError> {
    let bytes = axum::body::to_bytes(body, limit).await.map_err(|_| {
        ApiError::PayloadTooLarge(format!("request body is larger than the limit of {limit} bytes"))
    })?;
    parse_json(&bytes)
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
                "invalid {path}: s3Config needs string fields accessId, accessSecret, bucketName, endpointUrl"
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

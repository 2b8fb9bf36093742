//! The API key check of both APIs.

use crate::error::ApiError;
use axum::extract::Request;
use axum::http::header::AUTHORIZATION;

/// `401` unless the request carries the endpoint's key, as `Bearer <key>` (client API) or as
/// the raw header value (worker API: `RUNPOD_AI_API_KEY`). With no key configured, all pass.
pub(crate) fn check_key(key: Option<&str>, req: &Request) -> Result<(), ApiError> {
    if let Some(key) = key {
        let given = req.headers().get(AUTHORIZATION).map(|v| v.to_str().unwrap_or_default());
        let refusal = match given {
            None => Some("missing Authorization header: send 'Authorization: Bearer <API key>'"),
            Some(v) if !key_matches(v, key) => Some("wrong API key in the Authorization header"),
            Some(_) => None,
        };
        if let Some(msg) = refusal {
            return Err(ApiError::Unauthorized(msg.into()));
        }
    }
    Ok(())
}

/// True when header value `given` (`Bearer KEY` or `KEY`) carries `key`; compares in
/// constant time for equal lengths. An empty key matches nothing (the endpoint refuses to start
/// with one; this is the second guard).
pub(crate) fn key_matches(given: &str, key: &str) -> bool {
    if key.is_empty() {
        return false;
    }
    let given = given.trim();
    let given = given.strip_prefix("Bearer ").or_else(|| given.strip_prefix("bearer ")).unwrap_or(given);
    let (a, b) = (given.trim().as_bytes(), key.as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::key_matches;

    #[test]
    fn bearer_and_raw_keys() {
        assert!(key_matches("Bearer k1", "k1"));
        assert!(key_matches("k1", "k1"));
        assert!(!key_matches("Bearer k2", "k1"));
        assert!(!key_matches("", "k1"));
        assert!(!key_matches("Bearer k1x", "k1"));
        assert!(!key_matches("", ""));
        assert!(!key_matches("Bearer ", ""));
    }
}

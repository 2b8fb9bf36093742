//! What a caller sends to `/run` and `/runsync`: a typed input plus webhook, policy and s3Config.

use crate::Error;
use runpod_protocol::{Policy, S3Config, Secret};
use serde::Serialize;
use std::time::Duration;

/// A job request: `input` of any serializable type, and optional webhook, policy and s3Config.
///
/// ```
/// use runpod_client::{PolicyBuilder, Request};
/// use std::time::Duration;
///
/// #[derive(serde::Serialize)]
/// struct Prompt { prompt: String }
///
/// let req = Request::new(Prompt { prompt: "hi".into() })
///     .webhook("https://example.com/hook")
///     .policy(PolicyBuilder::new().execution_timeout(Duration::from_secs(60)).build().unwrap());
/// let body = req.to_json().unwrap();
/// assert_eq!(body["input"]["prompt"], "hi");
/// assert_eq!(body["policy"]["executionTimeout"], 60000);
/// ```
#[derive(Debug, Clone)]
#[must_use]
pub struct Request<I> {
    input: I,
    webhook: Option<String>,
    policy: Option<Policy>,
    s3_config: Option<S3Config>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Wire<'a, I> {
    input: &'a I,
    #[serde(skip_serializing_if = "Option::is_none")]
    webhook: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    policy: Option<&'a Policy>,
    #[serde(skip_serializing_if = "Option::is_none")]
    s3_config: Option<&'a S3Config>,
}

impl<I: Serialize> Request<I> {
    /// A request with only an input.
    pub fn new(input: I) -> Self {
        Request { input, webhook: None, policy: None, s3_config: None }
    }

    /// URL the platform POSTs the job's final `/status` JSON to (checked when sent: http or https).
    pub fn webhook(mut self, url: impl Into<String>) -> Self {
        self.webhook = Some(url.into());
        self
    }

    /// Execution policy of this job (see [`PolicyBuilder`]; checked again when sent).
    pub fn policy(mut self, policy: Policy) -> Self {
        self.policy = Some(policy);
        self
    }

    /// Bucket the worker uploads to / downloads from for this job (see [`S3ConfigBuilder`]).
    pub fn s3_config(mut self, config: S3Config) -> Self {
        self.s3_config = Some(config);
        self
    }

    /// The input.
    pub fn input(&self) -> &I {
        &self.input
    }

    /// Checks the webhook URL and the policy bounds, as the platform would.
    pub fn validate(&self) -> Result<(), Error> {
        if let Some(hook) = &self.webhook {
            check_http_url("webhook", hook)?;
        }
        if let Some(p) = &self.policy {
            p.validate().map_err(|e| Error::InvalidRequest(e.to_string()))?;
        }
        if let Some(s3) = &self.s3_config {
            check_s3(s3)?;
        }
        Ok(())
    }

    /// The request body as JSON (secrets included: it is what goes on the wire).
    pub fn to_json(&self) -> Result<serde_json::Value, Error> {
        serde_json::to_value(self.wire()).map_err(|e| Error::InvalidRequest(format!("input: {e}")))
    }

    /// Validates and serializes the body, refusing one larger than `max_bytes`.
    pub(crate) fn to_body(&self, max_bytes: usize) -> Result<Vec<u8>, Error> {
        self.validate()?;
        let body =
            serde_json::to_vec(&self.wire()).map_err(|e| Error::InvalidRequest(format!("input: {e}")))?;
        if body.len() > max_bytes {
            return Err(Error::InvalidRequest(format!(
                "payload is {} bytes, the limit for this route is {max_bytes}",
                body.len()
            )));
        }
        Ok(body)
    }

    fn wire(&self) -> Wire<'_, I> {
        Wire {
            input: &self.input,
            webhook: self.webhook.as_deref(),
            policy: self.policy.as_ref(),
            s3_config: self.s3_config.as_ref(),
        }
    }
}

fn check_http_url(what: &str, s: &str) -> Result<(), Error> {
    let url = url::Url::parse(s).map_err(|e| Error::InvalidRequest(format!("{what} is not a URL: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return Err(Error::InvalidRequest(format!("{what} must be an http(s) URL with a host")));
    }
    Ok(())
}

fn check_s3(s3: &S3Config) -> Result<(), Error> {
    if s3.access_id.is_empty() || s3.access_secret.is_empty() || s3.bucket_name.is_empty() {
        return Err(Error::InvalidRequest("s3Config needs accessId, accessSecret and bucketName".into()));
    }
    check_http_url("s3Config.endpointUrl", &s3.endpoint_url)
}

/// Builds a [`Policy`], checking the documented bounds in [`build`](Self::build):
/// `executionTimeout` > 5 s, `ttl` from 10 s to one week.
///
/// ```
/// use runpod_client::PolicyBuilder;
/// use std::time::Duration;
///
/// let p = PolicyBuilder::new().ttl(Duration::from_secs(3600)).low_priority(true).build().unwrap();
/// assert_eq!(p.ttl, Some(3_600_000));
/// assert!(PolicyBuilder::new().execution_timeout(Duration::from_secs(5)).build().is_err());
/// ```
#[derive(Debug, Clone, Default)]
#[must_use]
pub struct PolicyBuilder {
    policy: Policy,
    overflow: bool,
}

impl PolicyBuilder {
    /// A policy with the platform's defaults.
    pub fn new() -> Self {
        Self::default()
    }

    /// Longest run time of the job (must be more than 5 s; default 10 min).
    pub fn execution_timeout(mut self, d: Duration) -> Self {
        self.policy.execution_timeout = self.millis(d);
        self
    }

    /// Longest time the job may wait in the queue (10 s to one week; default 24 h).
    pub fn ttl(mut self, d: Duration) -> Self {
        self.policy.ttl = self.millis(d);
        self
    }

    /// When true the job never causes a new worker to start.
    pub fn low_priority(mut self, yes: bool) -> Self {
        self.policy.low_priority = Some(yes);
        self
    }

    fn millis(&mut self, d: Duration) -> Option<u64> {
        let ms = u64::try_from(d.as_millis()).unwrap_or_else(|_| {
            self.overflow = true;
            u64::MAX
        });
        Some(ms)
    }

    /// The policy, or [`Error::InvalidRequest`] naming the value out of bounds.
    pub fn build(self) -> Result<Policy, Error> {
        if self.overflow {
            return Err(Error::InvalidRequest("policy duration does not fit in u64 milliseconds".into()));
        }
        self.policy.validate().map_err(|e| Error::InvalidRequest(e.to_string()))?;
        Ok(self.policy)
    }
}

/// Builds an [`S3Config`]; [`build`](Self::build) checks that every field is set and the
/// endpoint is an http(s) URL. The keys are held as [`Secret`]s (redacted in `Debug`).
///
/// ```
/// use runpod_client::S3ConfigBuilder;
///
/// let s3 = S3ConfigBuilder::new()
///     .access_id("AK").access_secret("SK").bucket_name("b").endpoint_url("http://127.0.0.1:9000")
///     .build().unwrap();
/// assert!(!format!("{s3:?}").contains("SK"));
/// assert!(S3ConfigBuilder::new().bucket_name("b").build().is_err());
/// ```
#[derive(Debug, Clone, Default)]
#[must_use]
pub struct S3ConfigBuilder {
    access_id: Secret,
    access_secret: Secret,
    bucket_name: String,
    endpoint_url: String,
}

impl S3ConfigBuilder {
    /// An empty builder.
    pub fn new() -> Self {
        Self::default()
    }

    /// Access key id.
    pub fn access_id(mut self, v: impl Into<String>) -> Self {
        self.access_id = Secret::new(v);
        self
    }

    /// Secret access key.
    pub fn access_secret(mut self, v: impl Into<String>) -> Self {
        self.access_secret = Secret::new(v);
        self
    }

    /// Bucket name.
    pub fn bucket_name(mut self, v: impl Into<String>) -> Self {
        self.bucket_name = v.into();
        self
    }

    /// Endpoint URL of the S3-compatible service.
    pub fn endpoint_url(mut self, v: impl Into<String>) -> Self {
        self.endpoint_url = v.into();
        self
    }

    /// The config, or [`Error::InvalidRequest`] saying what is missing.
    pub fn build(self) -> Result<S3Config, Error> {
        let s3 = S3Config {
            access_id: self.access_id,
            access_secret: self.access_secret,
            bucket_name: self.bucket_name,
            endpoint_url: self.endpoint_url,
        };
        check_s3(&s3)?;
        Ok(s3)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use runpod_protocol::limits::MAX_TTL_MS;
    use serde_json::json;

    #[test]
    fn policy_bounds_are_checked() {
        let ok = PolicyBuilder::new()
            .execution_timeout(Duration::from_millis(5001))
            .ttl(Duration::from_secs(10))
            .build()
            .unwrap();
        assert_eq!((ok.execution_timeout, ok.ttl), (Some(5001), Some(10_000)));
        assert!(PolicyBuilder::new().execution_timeout(Duration::from_millis(5000)).build().is_err());
        assert!(PolicyBuilder::new().ttl(Duration::from_millis(9_999)).build().is_err());
        assert!(PolicyBuilder::new().ttl(Duration::from_millis(MAX_TTL_MS)).build().is_ok());
        let err = PolicyBuilder::new().ttl(Duration::from_millis(MAX_TTL_MS + 1)).build().unwrap_err();
        assert!(err.to_string().contains("policy.ttl"), "{err}");
        assert!(PolicyBuilder::new().ttl(Duration::MAX).build().is_err());
    }

    #[test]
    fn request_validation_catches_bad_parts() {
        let bad_hook = Request::new(1).webhook("not a url");
        assert!(matches!(bad_hook.validate(), Err(Error::InvalidRequest(m)) if m.contains("webhook")));
        assert!(Request::new(1).webhook("ftp://x/y").validate().is_err());
        // A hand-made policy out of bounds is caught when sent, too.
        let p = Policy { execution_timeout: Some(10), ..Default::default() };
        assert!(Request::new(1).policy(p).to_body(1000).is_err());
        assert!(Request::new("x".repeat(100)).to_body(50).is_err());
    }

    #[test]
    fn body_has_wire_names_and_secrets() {
        let s3 = S3ConfigBuilder::new()
            .access_id("AK")
            .access_secret("SECRET")
            .bucket_name("b")
            .endpoint_url("http://127.0.0.1:9000")
            .build()
            .unwrap();
        let req = Request::new(json!({"a": 1}))
            .webhook("http://127.0.0.1:1/h")
            .policy(PolicyBuilder::new().low_priority(true).build().unwrap())
            .s3_config(s3);
        let body: serde_json::Value = serde_json::from_slice(&req.to_body(10_000).unwrap()).unwrap();
        assert_eq!(
            body,
            json!({"input": {"a": 1}, "webhook": "http://127.0.0.1:1/h", "policy": {"lowPriority": true},
                   "s3Config": {"accessId": "AK", "accessSecret": "SECRET", "bucketName": "b",
                                "endpointUrl": "http://127.0.0.1:9000"}})
        );
        assert!(!format!("{req:?}").contains("SECRET"));
    }
}

//! What a client sends to `/run` and `/runsync`.

use crate::limits::*;
use crate::Secret;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A job request: the body of `POST /run` and `POST /runsync`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JobRequest {
    /// The handler's input; required.
    pub input: Value,
    /// URL that receives the `/status` JSON when the job ends.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook: Option<String>,
    /// Per-job execution policy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<Policy>,
    /// Bucket credentials handed to the worker with the job; never echoed to clients.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub s3_config: Option<S3Config>,
}

impl JobRequest {
    /// A request with only an input.
    pub fn new(input: Value) -> Self {
        JobRequest { input, webhook: None, policy: None, s3_config: None }
    }

    /// Checks the documented bounds of the policy.
    pub fn validate(&self) -> Result<(), PolicyError> {
        match &self.policy {
            Some(p) => p.validate(),
            None => Ok(()),
        }
    }
}

/// `policy`: execution timeout, priority and queue time-to-live of one job. Read from a JSON
/// object only (not from an array of its fields).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", remote = "Self", expecting = "a JSON object")]
pub struct Policy {
    /// Longest run time in ms (default 600000, must be > 5000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub execution_timeout: Option<u64>,
    /// When true the job never causes a new worker to start and is handed out after normal jobs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub low_priority: Option<bool>,
    /// Longest time in the queue in ms (default 24 h, from 10 s to one week).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl: Option<u64>,
}

impl Policy {
    /// Checks `executionTimeout` and `ttl` against the platform's bounds.
    pub fn validate(&self) -> Result<(), PolicyError> {
        if let Some(t) = self.execution_timeout {
            if t <= MIN_EXECUTION_TIMEOUT_MS {
                return Err(PolicyError::ExecutionTimeout(t));
            }
        }
        if let Some(t) = self.ttl {
            if !(MIN_TTL_MS..=MAX_TTL_MS).contains(&t) {
                return Err(PolicyError::Ttl(t));
            }
        }
        Ok(())
    }

    /// The execution timeout in ms, with the platform's default.
    pub fn execution_timeout_ms(&self) -> u64 {
        self.execution_timeout.unwrap_or(DEFAULT_EXECUTION_TIMEOUT_MS)
    }

    /// The queue time-to-live in ms, with the platform's default.
    pub fn ttl_ms(&self) -> u64 {
        self.ttl.unwrap_or(DEFAULT_TTL_MS)
    }

    /// Whether the job is low priority (default false).
    pub fn is_low_priority(&self) -> bool {
        self.low_priority.unwrap_or(false)
    }
}

/// A policy value outside the documented bounds.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PolicyError {
    /// `executionTimeout` must be greater than 5000 ms.
    #[error("policy.executionTimeout must be greater than {MIN_EXECUTION_TIMEOUT_MS} ms, got {0}")]
    ExecutionTimeout(u64),
    /// `ttl` must lie between 10 s and one week.
    #[error("policy.ttl must be between {MIN_TTL_MS} and {MAX_TTL_MS} ms, got {0}")]
    Ttl(u64),
}

/// `s3Config`: an S3-compatible bucket for large inputs and outputs.
///
/// `Debug` redacts the secret key; responses to clients never contain this struct. Read from a
/// JSON object only (not from an array of its fields).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", remote = "Self", expecting = "a JSON object")]
pub struct S3Config {
    /// Access key id.
    pub access_id: Secret,
    /// Secret access key.
    pub access_secret: Secret,
    /// Bucket name.
    pub bucket_name: String,
    /// Endpoint URL of the S3-compatible service.
    pub endpoint_url: String,
}

// `remote = "Self"` above makes the derives inherent functions; the trait impls below add the
// object-only reading (see `crate::object`).
macro_rules! object_only_serde {
    ($t:ty) => {
        impl Serialize for $t {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                <$t>::serialize(self, s)
            }
        }
        impl<'de> Deserialize<'de> for $t {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                <$t>::deserialize(crate::object::ObjectOnly(d))
            }
        }
    };
}
object_only_serde!(Policy);
object_only_serde!(S3Config);

//! A job as the worker API hands it to a worker.

use crate::{Policy, S3Config};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// A job from `job-take`: `{"id", "input", "webhook"?, "s3Config"?, "policy"?, ...}`.
///
/// Fields the platform adds that this crate does not know are kept in `extra`, so a job
/// passes through unchanged.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Job {
    /// The job id.
    pub id: String,
    /// The handler's input, as the client sent it.
    pub input: Value,
    /// The client's webhook, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook: Option<String>,
    /// The client's policy, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<Policy>,
    /// Bucket credentials for this job, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub s3_config: Option<S3Config>,
    /// Any other field of the job.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

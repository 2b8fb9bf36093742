//! Bodies of the worker API.

use crate::JobStatus;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Body of `POST job-done`: a final result, an error, or (with `status: IN_PROGRESS`) a progress update.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JobDone {
    /// `IN_PROGRESS` for a progress update; absent for a final result.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<JobStatus>,
    /// The output (or the progress value).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<Value>,
    /// The error text of a failed job.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Ask the platform to replace this worker after the job.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_pod: Option<bool>,
}

impl JobDone {
    /// A successful final result.
    pub fn output(output: Value) -> Self {
        JobDone { output: Some(output), ..Default::default() }
    }

    /// A failed final result.
    pub fn error(error: impl Into<String>) -> Self {
        JobDone { error: Some(error.into()), ..Default::default() }
    }

    /// A progress update: the job stays `IN_PROGRESS`.
    pub fn progress(value: Value) -> Self {
        JobDone { status: Some(JobStatus::InProgress), output: Some(value), ..Default::default() }
    }

    /// True when this body is a progress update rather than a final result.
    pub fn is_progress(&self) -> bool {
        self.status == Some(JobStatus::InProgress)
    }
}

/// Body of `POST job-stream`: one partial output.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StreamPost {
    /// The chunk.
    pub output: Value,
}

/// Answer of `GET job-stop`: `{"jobsToStop": [...]}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JobsToStop {
    /// Ids of jobs the worker must stop (cancelled or timed out) without sending a result.
    #[serde(default)]
    pub jobs_to_stop: Vec<String>,
}

/// The JSON text a failed handler reports in `error`, as the Python SDK does.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorReport {
    /// The error's type name.
    pub error_type: String,
    /// The error's message.
    pub error_message: String,
    /// Where it came from (a backtrace or the error's source chain).
    pub error_traceback: String,
    /// The worker's host name.
    pub hostname: String,
    /// The worker's id.
    pub worker_id: String,
    /// The SDK version that produced the report.
    pub runpod_version: String,
}

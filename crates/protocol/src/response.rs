//! What the client API answers.

use crate::JobStatus;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Answer of `POST /run`: `{"id", "status": "IN_QUEUE"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunResponse {
    /// The new job's id.
    pub id: String,
    /// Its status, `IN_QUEUE` when just queued.
    pub status: JobStatus,
}

/// Answer of `GET /status/{id}` and of `/runsync`; also the body of a webhook call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StatusResponse {
    /// The job id.
    pub id: String,
    /// Where the job stands.
    pub status: JobStatus,
    /// Time the job waited in the queue, in ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delay_time: Option<u64>,
    /// Time the job ran, in ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub execution_time: Option<u64>,
    /// The worker that ran (or runs) the job.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub worker_id: Option<String>,
    /// The result, or the latest progress while `IN_PROGRESS`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<Value>,
    /// The error of a failed job.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// One partial output in a `/stream` answer: `{"output": ...}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StreamChunk {
    /// The chunk the handler produced.
    pub output: Value,
}

/// Answer of `GET /stream/{id}`: the chunks produced since the previous call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StreamResponse {
    /// The job's status at the time of the call.
    pub status: JobStatus,
    /// New chunks, in order; each is returned once.
    #[serde(default)]
    pub stream: Vec<StreamChunk>,
    /// The job's error, when it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Answer of `POST /purge-queue`: `{"removed": n, "status": "completed"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PurgeResponse {
    /// Number of queued jobs dropped.
    pub removed: u64,
    /// Always `"completed"`.
    pub status: String,
}

/// Body of a `4xx`/`5xx` answer: `{"error": "what is wrong"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// What is wrong, for a person to read.
    pub error: String,
}

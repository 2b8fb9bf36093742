//! Answer of `GET /health`.

use serde::{Deserialize, Serialize};

/// `{"jobs": {...}, "workers": {...}}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Health {
    /// Job counters.
    pub jobs: JobCounts,
    /// Worker counters.
    pub workers: WorkerCounts,
}

/// Job counters of an endpoint.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JobCounts {
    /// Jobs that completed.
    #[serde(default)]
    pub completed: u64,
    /// Jobs that failed (including timed out).
    #[serde(default)]
    pub failed: u64,
    /// Jobs running now.
    #[serde(default)]
    pub in_progress: u64,
    /// Jobs waiting now.
    #[serde(default)]
    pub in_queue: u64,
    /// Jobs re-queued (by `/retry` or because their worker was lost).
    #[serde(default)]
    pub retried: u64,
}

/// Worker counters of an endpoint.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkerCounts {
    /// Live workers with no job.
    #[serde(default)]
    pub idle: u64,
    /// Live workers running at least one job.
    #[serde(default)]
    pub running: u64,
    /// Workers that reported a failed start-up check.
    #[serde(default)]
    pub unhealthy: u64,
}

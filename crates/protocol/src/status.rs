//! The life cycle of a job.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Where a job stands: `IN_QUEUE` → `IN_PROGRESS` → one of the final states.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum JobStatus {
    /// Waiting for a worker.
    InQueue,
    /// Taken by a worker and running.
    InProgress,
    /// Finished with an output.
    Completed,
    /// Finished with an error.
    Failed,
    /// Cancelled by the client before it finished.
    Cancelled,
    /// Ran past `policy.executionTimeout`, or expired in the queue past `policy.ttl`.
    TimedOut,
}

impl JobStatus {
    /// True for the states a job never leaves (`COMPLETED`, `FAILED`, `CANCELLED`, `TIMED_OUT`).
    pub fn is_final(self) -> bool {
        !matches!(self, JobStatus::InQueue | JobStatus::InProgress)
    }

    /// The wire spelling, e.g. `"IN_QUEUE"`.
    pub fn as_str(self) -> &'static str {
        match self {
            JobStatus::InQueue => "IN_QUEUE",
            JobStatus::InProgress => "IN_PROGRESS",
            JobStatus::Completed => "COMPLETED",
            JobStatus::Failed => "FAILED",
            JobStatus::Cancelled => "CANCELLED",
            JobStatus::TimedOut => "TIMED_OUT",
        }
    }
}

impl fmt::Display for JobStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

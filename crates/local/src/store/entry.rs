//! One job as the store keeps it, and the record of a job that just ended.

use runpod_protocol::{Job, JobStatus, Policy, S3Config, StatusResponse};
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;
use tokio::time::Instant;

/// One job and everything known about it.
#[derive(Debug)]
pub(crate) struct Entry {
    pub(super) id: String,
    pub(super) input: Value,
    pub(super) webhook: Option<String>,
    pub(super) policy: Option<Policy>,
    pub(super) s3_config: Option<S3Config>,
    pub(super) status: JobStatus,
    pub(super) submitted_at: Instant,
    pub(super) queued_at: Instant,
    pub(super) started_at: Option<Instant>,
    /// When the worker running it last took it or listed it in a ping.
    pub(super) last_listed: Instant,
    pub(super) finished_at: Option<Instant>,
    pub(super) delay_ms: Option<u64>,
    pub(super) execution_ms: Option<u64>,
    pub(super) worker_id: Option<String>,
    pub(super) output: Option<Value>,
    pub(super) error: Option<String>,
    pub(super) stream: Vec<Value>,
    pub(super) stream_read: usize,
    pub(super) retention: Duration,
    pub(super) execution_timeout: Duration,
    pub(super) ttl: Duration,
    /// Woken on every change a client may wait for: start, progress, chunk, end.
    pub(super) changed: Arc<Notify>,
    /// Other fields the worker gets with the job (e.g. `batchId`).
    pub(super) extra: serde_json::Map<String, Value>,
}

impl Entry {
    /// When the sweep must end this job: a running job at its execution timeout, a queued
    /// one at its ttl; `None` for any other state (or a sum past what `Instant` holds).
    pub(super) fn deadline(&self) -> Option<Instant> {
        match self.status {
            JobStatus::InProgress => self.started_at?.checked_add(self.execution_timeout),
            JobStatus::InQueue => self.queued_at.checked_add(self.ttl),
            _ => None,
        }
    }

    pub(super) fn low_priority(&self) -> bool {
        self.policy.as_ref().is_some_and(Policy::is_low_priority)
    }

    /// The client-facing view: never includes `s3Config`.
    pub(crate) fn status_response(&self) -> StatusResponse {
        StatusResponse {
            id: self.id.clone(),
            status: self.status,
            delay_time: self.delay_ms,
            execution_time: self.execution_ms,
            worker_id: self.worker_id.clone(),
            output: self.output.clone(),
            error: self.error.clone(),
        }
    }

    /// [`Self::status_response`] without `output` and `error`: a row of a job list.
    pub(crate) fn status_brief(&self) -> StatusResponse {
        StatusResponse {
            id: self.id.clone(),
            status: self.status,
            delay_time: self.delay_ms,
            execution_time: self.execution_ms,
            worker_id: self.worker_id.clone(),
            output: None,
            error: None,
        }
    }

    /// The worker-facing job, `s3Config` included.
    pub(super) fn job(&self) -> Job {
        Job {
            id: self.id.clone(),
            input: self.input.clone(),
            webhook: self.webhook.clone(),
            policy: self.policy.clone(),
            s3_config: self.s3_config.clone(),
            extra: self.extra.clone(),
        }
    }

    pub(crate) fn status(&self) -> JobStatus {
        self.status
    }

    /// When the job was first queued.
    pub(crate) fn submitted_at(&self) -> Instant {
        self.submitted_at
    }

    /// Every chunk the job has streamed so far (what `/stream` drains is kept here).
    pub(crate) fn stream(&self) -> &[Value] {
        &self.stream
    }

    pub(crate) fn changed(&self) -> Arc<Notify> {
        self.changed.clone()
    }
}

/// A job that just reached a final state: what its webhook must carry.
#[derive(Debug, Clone)]
pub(crate) struct Ended {
    pub webhook: Option<String>,
    pub status: StatusResponse,
}

/// Puts an entry back to `IN_QUEUE` with no worker, output or stream.
pub(super) fn reset_for_queue(e: &mut Entry, now: Instant) {
    e.status = JobStatus::InQueue;
    e.queued_at = now;
    e.started_at = None;
    e.finished_at = None;
    e.delay_ms = None;
    e.execution_ms = None;
    e.worker_id = None;
    e.output = None;
    e.error = None;
    e.stream.clear();
    e.stream_read = 0;
}

/// A duration in whole milliseconds.
pub(super) fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

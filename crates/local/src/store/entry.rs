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
    /// The handler's input; `None` once the job can never be handed out again (it ended
    /// `COMPLETED` or `CANCELLED`: only `FAILED` and `TIMED_OUT` jobs can be retried).
    pub(super) input: Option<Arc<Value>>,
    /// Dropped with the input.
    pub(super) webhook: Option<String>,
    pub(super) policy: Option<Policy>,
    /// Dropped with the input.
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
    pub(super) output: Option<Arc<Value>>,
    pub(super) error: Option<String>,
    /// Chunks streamed and not yet read by `/stream` (read ones are dropped).
    pub(super) stream: Vec<Value>,
    /// How many chunks were read (and dropped) before `stream[0]`.
    pub(super) stream_base: u64,
    pub(super) retention: Duration,
    pub(super) execution_timeout: Duration,
    pub(super) ttl: Duration,
    /// Woken on every change a client may wait for: start, progress, chunk, end.
    pub(super) changed: Arc<Notify>,
    /// Other fields the worker gets with the job (e.g. `batchId`).
    pub(super) extra: serde_json::Map<String, Value>,
    /// Its key in the index of active jobs' deadlines, while it has one.
    pub(super) deadline_at: Option<Instant>,
    /// Its key in the index of finished jobs' expiries, while it has one.
    pub(super) expires_at: Option<Instant>,
    /// Sizes of the input, the output and the unread chunks, as JSON bytes.
    pub(super) sizes: Sizes,
    /// What the data directory holds of it already.
    pub(super) saved: Saved,
}

/// JSON sizes of what a job holds, for the bound on retained bytes.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Sizes {
    pub input: usize,
    pub output: usize,
    pub stream: usize,
}

/// What of a job the data directory already holds (see `store::journal`).
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Saved {
    /// The input is written (it never changes while kept).
    pub input: bool,
    /// The current output is written.
    pub output: bool,
    /// Chunks below this absolute index are written.
    pub chunks: u64,
    /// Chunks below this absolute index are deleted (read by `/stream`).
    pub base: u64,
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

    /// Bytes it holds once finished: output, unread chunks, and the input while kept.
    pub(super) fn retained_bytes(&self) -> usize {
        let input = if self.input.is_some() { self.sizes.input } else { 0 };
        input + self.sizes.output + self.sizes.stream
    }

    /// The client-facing view: never includes `s3Config`.
    pub(crate) fn status_response(&self) -> StatusResponse {
        StatusResponse {
            output: self.output.as_deref().cloned(),
            error: self.error.clone(),
            ..self.status_brief()
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
            input: self.input.as_deref().cloned().unwrap_or(Value::Null),
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

    /// The chunks still held from absolute index `from` on (those `/stream` returned are gone),
    /// and the absolute index after the last one. Indices keep growing across a retry, so a
    /// reader that passes back what it got never sees a chunk twice.
    pub(crate) fn stream_from(&self, from: u64) -> (&[Value], u64) {
        let start = usize::try_from(from.saturating_sub(self.stream_base)).unwrap_or(usize::MAX);
        let end = self.stream_base + self.stream.len() as u64;
        (self.stream.get(start..).unwrap_or_default(), end)
    }

    /// True when it has chunks not yet returned by `/stream`.
    pub(crate) fn has_unread_stream(&self) -> bool {
        !self.stream.is_empty()
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
    /// The key of its pending webhook in the data directory (0 without one).
    pub hook_key: u64,
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
    e.sizes.output = 0;
    e.saved.output = false;
    e.error = None;
    e.stream_base += e.stream.len() as u64;
    e.stream.clear();
    e.sizes.stream = 0;
}

/// A duration in whole milliseconds.
pub(super) fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

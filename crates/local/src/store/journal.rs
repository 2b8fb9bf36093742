//! What changed since the data directory was last written, and the records it is written as.
//!
//! The store notes the id of every job it changes and every webhook delivery it starts or
//! finishes; the writer (`crate::disk`) takes those notes as one [`Batch`] — the current state
//! of each noted job, read under the store's lock — and commits it in one transaction. Each
//! note bumps a sequence number, so a handler can wait until the change it made is committed
//! before it answers. Without a data directory the journal is off and notes nothing.

use super::entry::{ms, Entry, Saved, Sizes};
use super::{Store, Worker};
use crate::webhook::PendingHook;
use runpod_protocol::{JobStatus, Policy, S3Config, StatusResponse};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::time::Instant;

/// A change to the pending webhooks.
#[derive(Debug)]
pub(crate) enum HookChange {
    Put(u64, PendingHook),
    Delete(u64),
}

/// The changes not yet written.
#[derive(Debug, Default)]
pub(crate) struct Journal {
    on: bool,
    jobs: HashSet<String>,
    hooks: Vec<HookChange>,
    next_hook: u64,
    seq: u64,
}

impl Journal {
    /// Starts noting changes; webhook keys continue after `last_hook`.
    pub(crate) fn enable(&mut self, last_hook: u64) {
        self.on = true;
        self.next_hook = last_hook + 1;
    }

    /// The number of the latest change.
    pub(crate) fn seq(&self) -> u64 {
        self.seq
    }

    pub(super) fn job(&mut self, id: &str) {
        if self.on {
            if !self.jobs.contains(id) {
                self.jobs.insert(id.to_owned());
            }
            self.seq += 1;
        }
    }

    /// Notes a new pending delivery; its key (0 when off).
    pub(super) fn hook(&mut self, url: &str, body: &StatusResponse) -> u64 {
        if !self.on {
            return 0;
        }
        let key = self.next_hook;
        self.next_hook += 1;
        let hook = PendingHook { url: url.to_owned(), body: body.clone(), attempts: 0 };
        self.hooks.push(HookChange::Put(key, hook));
        self.seq += 1;
        key
    }

    /// Notes an attempt of delivery `key` that failed.
    pub(crate) fn hook_attempted(&mut self, key: u64, hook: &PendingHook) {
        if self.on && key != 0 {
            self.hooks.push(HookChange::Put(key, hook.clone()));
            self.seq += 1;
        }
    }

    /// Notes that delivery `key` is over.
    pub(crate) fn hook_finished(&mut self, key: u64) {
        if self.on && key != 0 {
            self.hooks.push(HookChange::Delete(key));
            self.seq += 1;
        }
    }
}

/// One job as the data directory holds it, less its input, output and stream chunks (kept
/// apart, since they are large and rarely change). Times are Unix milliseconds.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct JobRecord {
    pub status: JobStatus,
    pub webhook: Option<String>,
    pub policy: Option<Policy>,
    pub s3_config: Option<S3Config>,
    pub submitted_at: u64,
    pub queued_at: u64,
    pub started_at: Option<u64>,
    pub finished_at: Option<u64>,
    pub delay_ms: Option<u64>,
    pub execution_ms: Option<u64>,
    pub worker_id: Option<String>,
    pub error: Option<String>,
    pub has_input: bool,
    pub has_output: bool,
    /// Absolute index of the first unread stream chunk.
    pub stream_base: u64,
    pub retention_ms: u64,
    pub execution_timeout_ms: u64,
    pub ttl_ms: u64,
    pub input_bytes: usize,
    pub output_bytes: usize,
    pub stream_bytes: usize,
}

/// What to write of one changed job.
#[derive(Debug)]
pub(crate) struct JobWrite {
    pub id: String,
    pub record: JobRecord,
    /// The input, when not yet written.
    pub input: Option<Arc<Value>>,
    /// The output when it changed (`Some(None)`: there is none now).
    pub output: Option<Option<Arc<Value>>>,
    /// New stream chunks, by absolute index.
    pub chunks: Vec<(u64, Value)>,
    /// Chunks below this index were read: delete them.
    pub drop_chunks_below: Option<u64>,
    /// The input was dropped: delete it.
    pub drop_input: bool,
}

/// Everything to commit in one transaction.
#[derive(Debug, Default)]
pub(crate) struct Batch {
    /// The journal's sequence number this batch brings the data directory to.
    pub seq: u64,
    pub jobs: Vec<JobWrite>,
    /// Jobs forgotten: delete everything of theirs.
    pub gone: Vec<String>,
    pub hooks: Vec<HookChange>,
}

/// Converts between `Instant`s and Unix milliseconds around one moment.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Clock {
    now: Instant,
    wall_ms: u64,
}

impl Clock {
    pub(crate) fn now() -> Self {
        let wall_ms = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, ms);
        Clock { now: Instant::now(), wall_ms }
    }

    fn to_wall(self, t: Instant) -> u64 {
        if t <= self.now {
            self.wall_ms.saturating_sub(ms(self.now - t))
        } else {
            self.wall_ms.saturating_add(ms(t - self.now))
        }
    }

    /// The `Instant` of a Unix time; times before the process started come out as its start
    /// (or as early as an `Instant` goes), times ahead of the clock as now.
    fn to_instant(self, wall: u64) -> Instant {
        let ago = Duration::from_millis(self.wall_ms.saturating_sub(wall));
        self.now.checked_sub(ago).unwrap_or(self.now)
    }
}

/// A job read back from the data directory.
#[derive(Debug)]
pub(crate) struct Restored {
    pub id: String,
    pub record: JobRecord,
    pub input: Option<Value>,
    pub output: Option<Value>,
    pub chunks: Vec<Value>,
}

impl Store {
    /// The changes noted since the last call, as of now; `None` when there are none.
    pub(crate) fn take_batch(&mut self, clock: Clock) -> Option<Batch> {
        let j = &mut self.journal;
        if j.jobs.is_empty() && j.hooks.is_empty() {
            return None;
        }
        let mut batch = Batch { seq: j.seq, hooks: std::mem::take(&mut j.hooks), ..Batch::default() };
        for id in std::mem::take(&mut j.jobs) {
            match self.jobs.get_mut(&id) {
                Some(e) => batch.jobs.push(write_of(e, clock)),
                None => batch.gone.push(id),
            }
        }
        Some(batch)
    }

    /// Takes back a batch that could not be written: its jobs are noted again (to be written
    /// whole), its webhook changes go first in the next batch.
    pub(crate) fn redo(&mut self, batch: Batch) {
        for w in batch.jobs {
            if let Some(e) = self.jobs.get_mut(&w.id) {
                e.saved = Saved::default();
            }
            self.journal.jobs.insert(w.id);
        }
        self.journal.jobs.extend(batch.gone);
        let mut hooks = batch.hooks;
        hooks.append(&mut self.journal.hooks);
        self.journal.hooks = hooks;
    }

    /// Rebuilds the store from what the data directory held: queued jobs queued again in their
    /// order, running jobs running on their workers (who have the ping grace from now to show
    /// up), finished jobs kept for what is left of their retention.
    pub(crate) fn restore(&mut self, jobs: Vec<Restored>, clock: Clock) {
        let now = clock.now;
        let mut queued: Vec<(u64, bool, String)> = Vec::new();
        for r in jobs {
            let rec = r.record;
            let at = |t: u64| clock.to_instant(t);
            let input_kept = r.input.is_some();
            let stream_bytes = if r.chunks.is_empty() { 0 } else { rec.stream_bytes };
            let e = Entry {
                id: r.id.clone(),
                input: r.input.map(Arc::new),
                webhook: rec.webhook,
                policy: rec.policy,
                s3_config: rec.s3_config,
                status: rec.status,
                submitted_at: at(rec.submitted_at),
                queued_at: at(rec.queued_at),
                started_at: rec.started_at.map(at),
                last_listed: now,
                finished_at: rec.finished_at.map(at),
                delay_ms: rec.delay_ms,
                execution_ms: rec.execution_ms,
                worker_id: rec.worker_id,
                output: r.output.map(Arc::new),
                error: rec.error,
                stream_base: rec.stream_base,
                saved: Saved {
                    input: input_kept,
                    output: true,
                    chunks: rec.stream_base + r.chunks.len() as u64,
                    base: rec.stream_base,
                },
                stream: r.chunks,
                // Other job fields (a test's `queue_with_fields`) are not journaled.
                extra: Default::default(),
                retention: Duration::from_millis(rec.retention_ms),
                execution_timeout: Duration::from_millis(rec.execution_timeout_ms),
                ttl: Duration::from_millis(rec.ttl_ms),
                changed: Arc::default(),
                deadline_at: None,
                expires_at: None,
                sizes: Sizes { input: rec.input_bytes, output: rec.output_bytes, stream: stream_bytes },
            };
            let id = r.id;
            match e.status {
                JobStatus::InQueue => queued.push((rec.queued_at, e.low_priority(), id.clone())),
                JobStatus::InProgress => {
                    if let Some(w) = &e.worker_id {
                        let worker = self.workers.entry(w.clone()).or_insert_with(|| Worker::new(now));
                        worker.running.insert(id.clone());
                    }
                }
                _ => self.retained_bytes += e.retained_bytes(),
            }
            self.jobs.insert(id.clone(), e);
            self.index_deadline(&id);
            self.index_expiry(&id);
        }
        queued.sort();
        for (_, low, id) in queued {
            self.enqueue_back(id, low);
        }
    }
}

/// What to write of `e`, and marks it as written.
fn write_of(e: &mut Entry, clock: Clock) -> JobWrite {
    let t = |i: Instant| clock.to_wall(i);
    let record = JobRecord {
        status: e.status,
        webhook: e.webhook.clone(),
        policy: e.policy.clone(),
        s3_config: e.s3_config.clone(),
        submitted_at: t(e.submitted_at),
        queued_at: t(e.queued_at),
        started_at: e.started_at.map(t),
        finished_at: e.finished_at.map(t),
        delay_ms: e.delay_ms,
        execution_ms: e.execution_ms,
        worker_id: e.worker_id.clone(),
        error: e.error.clone(),
        has_input: e.input.is_some(),
        has_output: e.output.is_some(),
        stream_base: e.stream_base,
        retention_ms: ms(e.retention),
        execution_timeout_ms: ms(e.execution_timeout),
        ttl_ms: ms(e.ttl),
        input_bytes: e.sizes.input,
        output_bytes: e.sizes.output,
        stream_bytes: e.sizes.stream,
    };
    let input = match (&e.input, e.saved.input) {
        (Some(input), false) => Some(input.clone()),
        _ => None,
    };
    let drop_input = e.input.is_none() && e.saved.input;
    let output = (!e.saved.output).then(|| e.output.clone());
    let end = e.stream_base + e.stream.len() as u64;
    let first_new = e.saved.chunks.max(e.stream_base);
    let chunks = (first_new..end).map(|n| (n, e.stream[(n - e.stream_base) as usize].clone())).collect();
    let drop_chunks_below = (e.stream_base > e.saved.base).then_some(e.stream_base);
    e.saved = Saved { input: e.input.is_some(), output: true, chunks: end, base: e.stream_base };
    JobWrite { id: e.id.clone(), record, input, output, chunks, drop_chunks_below, drop_input }
}

//! The job store: every job by id, the two queues (normal, low priority) and the known workers.
//!
//! Everything here is synchronous and runs under one mutex, never across an `.await`; the
//! HTTP handlers wait on the [`Notify`]s it hands out. Methods that end a job return the
//! [`Ended`] record so that the caller can send the webhook outside the lock.

mod entry;
mod sweep;

pub(crate) use entry::{Ended, Entry};

use crate::config::Config;
use crate::error::ApiError;
use entry::{ms, reset_for_queue};
use runpod_protocol::{Health, Job, JobDone, JobRequest, JobStatus, StatusResponse};
use serde_json::Value;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;
use tokio::time::Instant;

/// Stop announcements kept for a worker that does not poll `job-stop`.
const MAX_PENDING_STOPS: usize = 1024;

/// Which route queued a job; decides how long its result is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Origin {
    Run,
    RunSync,
}

/// What the endpoint knows about one worker.
#[derive(Debug)]
struct Worker {
    last_seen: Instant,
    open_polls: usize,
    unhealthy: bool,
    /// True once a ping listed running jobs: from then on a job it leaves out is lost.
    reports_jobs: bool,
    stops: Vec<String>,
    stop_notify: Arc<Notify>,
}

impl Worker {
    fn new(now: Instant) -> Self {
        Worker {
            last_seen: now,
            open_polls: 0,
            unhealthy: false,
            reports_jobs: false,
            stops: Vec::new(),
            stop_notify: Arc::default(),
        }
    }
}

/// Totals since start, for `/health`.
#[derive(Debug, Default)]
struct Counters {
    completed: u64,
    failed: u64,
    retried: u64,
}

/// Indexes that keep the sweep proportional to the jobs that can still change, not to every
/// job kept: a sweep over all of them every 100 ms grew with the result retention (30 min of
/// `/run` results).
#[derive(Debug, Default)]
struct Index {
    /// Ids of the jobs `IN_QUEUE` or `IN_PROGRESS`.
    active: HashSet<String>,
    /// When an ended job's result may be dropped, soonest first. An entry is only a hint: the
    /// job's own `finished_at + retention` decides (retention can change; a retried job ends
    /// again and gets a new entry).
    expiry: BinaryHeap<Reverse<(Instant, String)>>,
    /// No queued job's ttl and no running job's execution timeout passes before this, so a
    /// sweep need not look at the active jobs until then; `None`: look at the next sweep.
    /// Lowered whenever a job is queued or starts; recomputed by each sweep that looks.
    next_due: Option<Instant>,
}

impl Index {
    /// Notes that some active job may be due at `at` (an [`Entry::deadline`]; `None`: never).
    fn due_at(&mut self, at: Option<Instant>) {
        if let (Some(next), Some(at)) = (self.next_due, at) {
            self.next_due = Some(next.min(at));
        }
    }
}

/// The whole state of an endpoint.
#[derive(Debug, Default)]
pub(crate) struct Store {
    jobs: HashMap<String, Entry>,
    queue: VecDeque<String>,
    low_queue: VecDeque<String>,
    workers: HashMap<String, Worker>,
    counters: Counters,
    index: Index,
}

impl Store {
    fn queued(&self) -> usize {
        self.queue.len() + self.low_queue.len()
    }

    fn check_room(&self, cfg: &Config) -> Result<(), ApiError> {
        if self.queued() >= cfg.max_queue {
            return Err(ApiError::TooManyRequests(format!(
                "queue is full: {} jobs are waiting (limit {}); retry later",
                self.queued(),
                cfg.max_queue
            )));
        }
        Ok(())
    }

    fn enqueue_back(&mut self, id: String, low: bool) {
        if low {
            self.low_queue.push_back(id)
        } else {
            self.queue.push_back(id)
        }
    }

    fn unqueue(&mut self, id: &str) {
        self.queue.retain(|q| q != id);
        self.low_queue.retain(|q| q != id);
    }

    /// Queues a validated request under a new id.
    pub(crate) fn submit(
        &mut self,
        cfg: &Config,
        req: JobRequest,
        origin: Origin,
        now: Instant,
    ) -> Result<String, ApiError> {
        // A v4 UUID from the thread's ChaCha generator: `Uuid::new_v4` asks the kernel
        // (a getrandom syscall) for every id.
        let uuid = uuid::Builder::from_random_bytes(rand::random()).into_uuid();
        let id = match origin {
            Origin::Run => uuid.to_string(),
            Origin::RunSync => format!("sync-{uuid}"),
        };
        self.submit_as(cfg, id, req, origin, now)
    }

    /// Queues a validated request under `id`; `409` when a job with that id exists.
    /// Sets the other fields the worker gets with job `id` (e.g. `batchId`).
    pub(crate) fn set_extra(&mut self, id: &str, extra: serde_json::Map<String, serde_json::Value>) {
        if let Some(e) = self.jobs.get_mut(id) {
            e.extra = extra;
        }
    }

    pub(crate) fn submit_as(
        &mut self,
        cfg: &Config,
        id: String,
        req: JobRequest,
        origin: Origin,
        now: Instant,
    ) -> Result<String, ApiError> {
        req.validate().map_err(|e| ApiError::BadRequest(e.to_string()))?;
        self.check_room(cfg)?;
        if self.jobs.contains_key(&id) {
            return Err(ApiError::Conflict(format!("a job with id '{id}' already exists")));
        }
        let policy = req.policy;
        let execution_timeout = policy
            .as_ref()
            .and_then(|p| p.execution_timeout)
            .map_or(cfg.execution_timeout, Duration::from_millis);
        let ttl = policy.as_ref().and_then(|p| p.ttl).map_or(cfg.queue_ttl, Duration::from_millis);
        let retention = match origin {
            Origin::Run => cfg.run_retention,
            Origin::RunSync => cfg.runsync_retention,
        };
        let entry = Entry {
            id: id.clone(),
            input: req.input,
            webhook: req.webhook,
            policy,
            s3_config: req.s3_config,
            status: JobStatus::InQueue,
            submitted_at: now,
            queued_at: now,
            started_at: None,
            last_listed: now,
            finished_at: None,
            delay_ms: None,
            execution_ms: None,
            worker_id: None,
            output: None,
            error: None,
            stream: Vec::new(),
            stream_read: 0,
            retention,
            execution_timeout,
            ttl,
            changed: Arc::default(),
            extra: Default::default(),
        };
        let low = entry.low_priority();
        self.index.due_at(entry.deadline());
        self.jobs.insert(id.clone(), entry);
        self.index.active.insert(id.clone());
        self.enqueue_back(id.clone(), low);
        Ok(id)
    }

    /// The job `id`, or `404`.
    pub(crate) fn get(&self, id: &str) -> Result<&Entry, ApiError> {
        self.jobs.get(id).ok_or_else(|| ApiError::unknown_job(id))
    }

    /// Every job kept, in no particular order.
    pub(crate) fn jobs(&self) -> impl Iterator<Item = &Entry> {
        self.jobs.values()
    }

    fn get_mut(&mut self, id: &str) -> Result<&mut Entry, ApiError> {
        self.jobs.get_mut(id).ok_or_else(|| ApiError::unknown_job(id))
    }

    /// Sets how long a job's result is kept once it ends (`/status?ttl=`).
    pub(crate) fn set_retention(&mut self, id: &str, retention: Duration) -> Result<(), ApiError> {
        let e = self.jobs.get_mut(id).ok_or_else(|| ApiError::unknown_job(id))?;
        e.retention = retention;
        if let Some(f) = e.finished_at {
            self.index.expiry.push(Reverse((expiry(f, retention), id.to_owned())));
        }
        Ok(())
    }

    /// The chunks streamed since the previous call, each returned once.
    pub(crate) fn drain_stream(
        &mut self,
        id: &str,
    ) -> Result<(JobStatus, Vec<Value>, Option<String>), ApiError> {
        let e = self.get_mut(id)?;
        let new = e.stream[e.stream_read..].to_vec();
        e.stream_read = e.stream.len();
        Ok((e.status, new, e.error.clone()))
    }

    /// True when `id` has chunks not yet returned by `/stream`.
    pub(crate) fn has_unread_stream(&self, id: &str) -> bool {
        self.jobs.get(id).is_some_and(|e| e.stream_read < e.stream.len())
    }

    /// Ends `e` with `status`; returns the webhook record.
    fn end(
        e: &mut Entry,
        counters: &mut Counters,
        index: &mut Index,
        status: JobStatus,
        error: Option<String>,
        now: Instant,
    ) -> Ended {
        index.active.remove(&e.id);
        index.expiry.push(Reverse((expiry(now, e.retention), e.id.clone())));
        e.status = status;
        if error.is_some() {
            e.error = error;
        }
        e.finished_at = Some(now);
        if let Some(started) = e.started_at {
            e.execution_ms = Some(ms(now - started));
        }
        match status {
            JobStatus::Completed => counters.completed += 1,
            JobStatus::Failed | JobStatus::TimedOut => counters.failed += 1,
            _ => {}
        }
        e.changed.notify_waiters();
        Ended { webhook: e.webhook.clone(), status: e.status_response() }
    }

    /// Cancels a queued or running job; a running job's worker is told on `job-stop`.
    pub(crate) fn cancel(
        &mut self,
        id: &str,
        now: Instant,
    ) -> Result<(StatusResponse, Option<Ended>), ApiError> {
        let e = self.jobs.get_mut(id).ok_or_else(|| ApiError::unknown_job(id))?;
        let was = e.status;
        if was.is_final() {
            return Ok((e.status_response(), None));
        }
        let ended = Self::end(e, &mut self.counters, &mut self.index, JobStatus::Cancelled, None, now);
        let worker = e.worker_id.clone();
        match was {
            JobStatus::InQueue => self.unqueue(id),
            _ => {
                if let Some(w) = worker {
                    self.announce_stop(&w, id);
                }
            }
        }
        Ok((ended.status.clone(), Some(ended)))
    }

    /// Tells worker `w` (on `job-stop`) to stop job `id`.
    fn announce_stop(&mut self, w: &str, id: &str) {
        if let Some(worker) = self.workers.get_mut(w) {
            if worker.stops.len() >= MAX_PENDING_STOPS {
                worker.stops.remove(0);
            }
            worker.stops.push(id.to_string());
            worker.stop_notify.notify_waiters();
        }
    }

    /// Re-queues a `FAILED` or `TIMED_OUT` job under the same id.
    pub(crate) fn retry(&mut self, cfg: &Config, id: &str, now: Instant) -> Result<JobStatus, ApiError> {
        let status = self.get(id)?.status;
        if !matches!(status, JobStatus::Failed | JobStatus::TimedOut) {
            return Err(ApiError::BadRequest(format!(
                "job '{id}' is {status}; only FAILED or TIMED_OUT jobs can be retried"
            )));
        }
        self.check_room(cfg)?;
        let e = self.get_mut(id)?;
        reset_for_queue(e, now);
        let low = e.low_priority();
        let due = e.deadline();
        e.changed.notify_waiters();
        self.index.active.insert(id.to_string());
        self.index.due_at(due);
        self.counters.retried += 1;
        self.enqueue_back(id.to_string(), low);
        Ok(JobStatus::InQueue)
    }

    /// Drops every queued job (they end `CANCELLED`); running jobs are left alone.
    pub(crate) fn purge(&mut self, now: Instant) -> Vec<Ended> {
        let ids: Vec<String> = self.queue.drain(..).chain(self.low_queue.drain(..)).collect();
        let mut ended = Vec::new();
        for id in ids {
            if let Some(e) = self.jobs.get_mut(&id) {
                ended.push(Self::end(
                    e,
                    &mut self.counters,
                    &mut self.index,
                    JobStatus::Cancelled,
                    None,
                    now,
                ));
            }
        }
        ended
    }

    /// Records that worker `w` made a request now.
    fn seen(&mut self, w: &str, now: Instant) -> &mut Worker {
        // No allocation for a known worker (every worker request comes through here).
        if !self.workers.contains_key(w) {
            self.workers.insert(w.to_string(), Worker::new(now));
        }
        let worker = self.workers.get_mut(w).expect("inserted above");
        worker.last_seen = now;
        worker
    }

    /// A long poll of worker `w` opened (`+1`) or closed (`-1`).
    pub(crate) fn poll_open(&mut self, w: &str, now: Instant, open: bool) {
        let worker = self.seen(w, now);
        if open {
            worker.open_polls += 1;
        } else {
            worker.open_polls = worker.open_polls.saturating_sub(1);
        }
    }

    /// A heartbeat listing the jobs the worker believes it runs; `unhealthy` when the worker
    /// reports a failed start-up check. A listed job the worker must not run (cancelled, timed
    /// out, re-queued or handed to another worker) is announced on `job-stop` again: a stop
    /// that reached the worker before it had started the job is not lost.
    pub(crate) fn ping(&mut self, w: &str, running: &[&str], unhealthy: bool, now: Instant) {
        let worker = self.seen(w, now);
        worker.unhealthy = unhealthy;
        worker.reports_jobs |= !running.is_empty();
        let mut stale = Vec::new();
        for id in running {
            let Some(e) = self.jobs.get_mut(*id) else { continue };
            let mine = e.worker_id.as_deref() == Some(w);
            if mine && e.status == JobStatus::InProgress {
                e.last_listed = now;
            }
            let must_stop = match e.status {
                JobStatus::Cancelled | JobStatus::TimedOut => mine,
                JobStatus::InQueue | JobStatus::InProgress => !mine,
                JobStatus::Completed | JobStatus::Failed => false,
            };
            if must_stop {
                stale.push(e.id.clone());
            }
        }
        for id in stale {
            let pending = self.workers.get(w).is_some_and(|wk| wk.stops.contains(&id));
            if !pending {
                self.announce_stop(w, &id);
            }
        }
    }

    /// Hands up to `n` queued jobs (normal before low priority) to worker `w`.
    pub(crate) fn take(&mut self, w: &str, n: usize, now: Instant) -> Vec<Job> {
        self.seen(w, now);
        let mut jobs = Vec::new();
        while jobs.len() < n {
            let Some(id) = self.queue.pop_front().or_else(|| self.low_queue.pop_front()) else { break };
            let Some(e) = self.jobs.get_mut(&id) else { continue };
            e.status = JobStatus::InProgress;
            e.started_at = Some(now);
            e.last_listed = now;
            e.delay_ms = Some(ms(now - e.submitted_at));
            e.worker_id = Some(w.to_string());
            e.changed.notify_waiters();
            jobs.push(e.job());
            let due = e.deadline();
            self.index.due_at(due);
        }
        jobs
    }

    /// The stop list of worker `w` (emptied), and the notify to wait on when it is empty.
    pub(crate) fn take_stops(&mut self, w: &str, now: Instant) -> (Vec<String>, Arc<Notify>) {
        let worker = self.seen(w, now);
        (std::mem::take(&mut worker.stops), worker.stop_notify.clone())
    }

    /// The job `id` if worker `w` is running it, else `404`/`409`.
    fn held_by<'a>(
        jobs: &'a mut HashMap<String, Entry>,
        w: &str,
        id: &str,
    ) -> Result<&'a mut Entry, ApiError> {
        let e = jobs.get_mut(id).ok_or_else(|| ApiError::unknown_job(id))?;
        if e.status != JobStatus::InProgress || e.worker_id.as_deref() != Some(w) {
            return Err(ApiError::Conflict(format!(
                "job '{id}' is not running on worker '{w}' (it is {}); result not applied",
                e.status
            )));
        }
        Ok(e)
    }

    /// A `job-done` post: a progress update, or the final result.
    pub(crate) fn done(
        &mut self,
        w: &str,
        id: &str,
        done: JobDone,
        now: Instant,
    ) -> Result<Option<Ended>, ApiError> {
        self.seen(w, now);
        let e = Self::held_by(&mut self.jobs, w, id)?;
        if done.is_progress() {
            e.output = done.output;
            e.changed.notify_waiters();
            return Ok(None);
        }
        let failed = done.error.is_some() || done.status == Some(JobStatus::Failed);
        let (status, error) = if failed {
            let err = done.error.unwrap_or_else(|| "the worker reported the job FAILED".into());
            (JobStatus::Failed, Some(err))
        } else {
            (JobStatus::Completed, None)
        };
        e.output = done.output;
        if done.stop_pod == Some(true) {
            tracing::info!(worker = w, job = id, "worker asked to be replaced after this job (stopPod)");
        }
        Ok(Some(Self::end(e, &mut self.counters, &mut self.index, status, error, now)))
    }

    /// A `job-stream` post: one more chunk for `/stream`.
    pub(crate) fn stream(&mut self, w: &str, id: &str, chunk: Value, now: Instant) -> Result<(), ApiError> {
        self.seen(w, now);
        let e = Self::held_by(&mut self.jobs, w, id)?;
        e.stream.push(chunk);
        e.changed.notify_waiters();
        Ok(())
    }

    /// Counters and gauges for `/health`.
    pub(crate) fn health(&self, cfg: &Config, now: Instant) -> Health {
        let mut h = Health::default();
        h.jobs.completed = self.counters.completed;
        h.jobs.failed = self.counters.failed;
        h.jobs.retried = self.counters.retried;
        h.jobs.in_queue = self.queued() as u64;
        let running: Vec<&str> = self
            .index
            .active
            .iter()
            .filter_map(|id| self.jobs.get(id))
            .filter(|e| e.status == JobStatus::InProgress)
            .filter_map(|e| e.worker_id.as_deref())
            .collect();
        h.jobs.in_progress = running.len() as u64;
        for (id, w) in &self.workers {
            if w.open_polls == 0 && now - w.last_seen > cfg.ping_grace {
                continue;
            }
            if w.unhealthy {
                h.workers.unhealthy += 1;
            } else if running.contains(&id.as_str()) {
                h.workers.running += 1;
            } else {
                h.workers.idle += 1;
            }
        }
        h
    }
}

/// `at + d`, or far in the future when that overflows (a huge `ttl`).
fn expiry(at: Instant, d: Duration) -> Instant {
    at.checked_add(d).unwrap_or_else(|| at + Duration::from_secs(100 * 365 * 86_400))
}

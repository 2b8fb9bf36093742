//! The job store: every job by id, the two queues (normal, low priority) and the known workers.
//!
//! Everything here is synchronous and runs under one mutex, never across an `.await`; the
//! HTTP handlers wait on the [`Notify`]s it hands out. Methods that end a job return the
//! [`Ended`] record so that the caller can send the webhook outside the lock. With a data
//! directory, every change is noted in the [`journal`] for the writer to save.

mod entry;
pub(crate) mod journal;
mod sweep;

pub(crate) use entry::{Ended, Entry, Sizes};

use crate::config::Config;
use crate::error::ApiError;
use entry::{ms, reset_for_queue, Saved};
use journal::Journal;
use runpod_protocol::{Health, Job, JobDone, JobRequest, JobStatus, StatusResponse};
use serde_json::Value;
use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};
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
    /// The jobs `IN_PROGRESS` on it.
    running: HashSet<String>,
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
            running: HashSet::new(),
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

/// Indexes that keep each sweep proportional to the jobs due, not to every job kept: walking
/// 200,000 queued jobs every 100 ms took 61 % of a core on an idle endpoint.
#[derive(Debug, Default)]
struct Index {
    /// Active jobs by when the sweep must end them (a queued job's ttl, a running one's
    /// execution timeout); one entry per active job with a deadline.
    deadlines: BTreeSet<(Instant, String)>,
    /// Finished jobs by when their result expires; one entry per finished job.
    expiry: BTreeSet<(Instant, String)>,
}

/// The whole state of an endpoint.
#[derive(Debug)]
pub(crate) struct Store {
    jobs: HashMap<String, Entry>,
    queue: VecDeque<String>,
    low_queue: VecDeque<String>,
    workers: HashMap<String, Worker>,
    counters: Counters,
    index: Index,
    /// Bytes held by finished jobs ([`Entry::retained_bytes`] summed).
    retained_bytes: usize,
    max_retained_bytes: usize,
    /// Finished jobs dropped for the byte bound and not yet logged (the next sweep logs them).
    dropped_over_bound: usize,
    /// Bytes (roughly) let go of since the last [`Store::take_freed`].
    freed: usize,
    pub(crate) journal: Journal,
}

impl Default for Store {
    fn default() -> Self {
        Store::new(usize::MAX)
    }
}

impl Store {
    /// An empty store whose finished jobs may hold `max_retained_bytes` in all.
    pub(crate) fn new(max_retained_bytes: usize) -> Self {
        Store {
            jobs: HashMap::new(),
            queue: VecDeque::new(),
            low_queue: VecDeque::new(),
            workers: HashMap::new(),
            counters: Counters::default(),
            index: Index::default(),
            retained_bytes: 0,
            max_retained_bytes,
            dropped_over_bound: 0,
            freed: 0,
            journal: Journal::default(),
        }
    }

    fn queued(&self) -> usize {
        self.queue.len() + self.low_queue.len()
    }

    fn check_room(&self, cfg: &Config) -> Result<(), ApiError> {
        if self.queued() >= cfg.max_queue {
            return Err(ApiError::TooManyRequests {
                message: format!(
                    "queue is full: {} jobs are waiting (limit {}); retry later",
                    self.queued(),
                    cfg.max_queue
                ),
                retry_after: Duration::from_secs(1),
            });
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

    /// Files `id` under its current deadline (and out of its previous one).
    fn index_deadline(&mut self, id: &str) {
        let Some(e) = self.jobs.get_mut(id) else { return };
        if let Some(at) = e.deadline_at.take() {
            self.index.deadlines.remove(&(at, e.id.clone()));
        }
        if let Some(at) = e.deadline() {
            self.index.deadlines.insert((at, e.id.clone()));
            e.deadline_at = Some(at);
        }
    }

    /// Files finished job `id` to expire `retention` after it finished (out of any earlier
    /// expiry).
    fn index_expiry(&mut self, id: &str) {
        let Some(e) = self.jobs.get_mut(id) else { return };
        if let Some(at) = e.expires_at.take() {
            self.index.expiry.remove(&(at, e.id.clone()));
        }
        if let Some(finished) = e.finished_at {
            let at = expiry(finished, e.retention);
            self.index.expiry.insert((at, e.id.clone()));
            e.expires_at = Some(at);
        }
    }

    /// Bytes let go of since the previous call (to decide when to return memory to the system).
    pub(crate) fn take_freed(&mut self) -> usize {
        std::mem::take(&mut self.freed)
    }

    /// Forgets job `id` entirely (its result expired or was dropped to make room).
    fn remove(&mut self, id: &str) {
        let Some(e) = self.jobs.remove(id) else { return };
        // The entry itself, its id in the indexes and the queue: a few hundred bytes.
        self.freed += e.retained_bytes() + 512;
        if let Some(at) = e.deadline_at {
            self.index.deadlines.remove(&(at, e.id.clone()));
        }
        if let Some(at) = e.expires_at {
            self.index.expiry.remove(&(at, e.id.clone()));
        }
        if e.status.is_final() {
            self.retained_bytes = self.retained_bytes.saturating_sub(e.retained_bytes());
        }
        self.journal.job(id);
    }

    /// Queues a validated request under a new id; `bytes` is its size as JSON.
    #[cfg(test)]
    pub(crate) fn submit(
        &mut self,
        cfg: &Config,
        req: JobRequest,
        bytes: usize,
        origin: Origin,
        now: Instant,
    ) -> Result<String, ApiError> {
        self.submit_as(cfg, new_id(origin), req, bytes, origin, now)
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
        bytes: usize,
        origin: Origin,
        now: Instant,
    ) -> Result<String, ApiError> {
        let id = self.insert_held(cfg, id, req, bytes, origin, now)?;
        self.release(&id);
        Ok(id)
    }

    /// [`Store::submit_as`] without queueing the job: it is held until [`Store::release`]
    /// queues it (once it is saved) or [`Store::forget`] drops it (it could not be saved).
    pub(crate) fn insert_held(
        &mut self,
        cfg: &Config,
        id: String,
        req: JobRequest,
        bytes: usize,
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
            input: Some(Arc::new(req.input)),
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
            stream_base: 0,
            retention,
            execution_timeout,
            ttl,
            changed: Arc::default(),
            extra: Default::default(),
            deadline_at: None,
            expires_at: None,
            sizes: Sizes { input: bytes, ..Sizes::default() },
            saved: Saved::default(),
        };
        self.jobs.insert(id.clone(), entry);
        self.index_deadline(&id);
        self.journal.job(&id);
        Ok(id)
    }

    /// Queues held job `id` (see [`Store::insert_held`]), unless it ended meanwhile.
    pub(crate) fn release(&mut self, id: &str) {
        let Some(e) = self.jobs.get(id) else { return };
        if e.status == JobStatus::InQueue {
            let low = e.low_priority();
            self.enqueue_back(id.to_owned(), low);
        }
    }

    /// Drops held job `id` (see [`Store::insert_held`]): it was refused.
    pub(crate) fn forget(&mut self, id: &str) {
        if self.jobs.get(id).is_some_and(|e| e.status == JobStatus::InQueue) {
            self.unqueue(id);
            self.remove(id);
        }
    }

    /// Puts back at the front of the queue, in their order, the jobs just handed to worker `w`
    /// that it never got (the hand-over could not be saved); those no longer running on `w`
    /// are left alone.
    pub(crate) fn untake(&mut self, w: &str, ids: &[String], now: Instant) {
        for id in ids.iter().rev() {
            let Some(e) = self.jobs.get_mut(id) else { continue };
            if e.status != JobStatus::InProgress || e.worker_id.as_deref() != Some(w) {
                continue;
            }
            reset_for_queue(e, now);
            e.changed.notify_waiters();
            let low = e.low_priority();
            if let Some(worker) = self.workers.get_mut(w) {
                worker.running.remove(id);
            }
            self.index_deadline(id);
            self.journal.job(id);
            if low {
                self.low_queue.push_front(id.clone())
            } else {
                self.queue.push_front(id.clone())
            }
        }
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

    /// Sets how long a job's result is kept once it ends (`/status?ttl=`). One index entry per
    /// job whatever the number of calls.
    pub(crate) fn set_retention(&mut self, id: &str, retention: Duration) -> Result<(), ApiError> {
        let e = self.get_mut(id)?;
        if e.retention == retention {
            return Ok(());
        }
        e.retention = retention;
        self.index_expiry(id);
        self.journal.job(id);
        Ok(())
    }

    /// The chunks streamed since the previous call, each returned once (and then dropped).
    pub(crate) fn drain_stream(
        &mut self,
        id: &str,
    ) -> Result<(JobStatus, Vec<Value>, Option<String>), ApiError> {
        let e = self.jobs.get_mut(id).ok_or_else(|| ApiError::unknown_job(id))?;
        let new = std::mem::take(&mut e.stream);
        if !new.is_empty() {
            e.stream_base += new.len() as u64;
            if e.status.is_final() {
                self.retained_bytes = self.retained_bytes.saturating_sub(e.sizes.stream);
            }
            e.sizes.stream = 0;
            self.journal.job(id);
        }
        Ok((e.status, new, e.error.clone()))
    }

    /// Ends active job `id` with `status`; returns the webhook record.
    fn end(&mut self, id: &str, status: JobStatus, error: Option<String>, now: Instant) -> Option<Ended> {
        let e = self.jobs.get_mut(id)?;
        if let Some(w) = &e.worker_id {
            if let Some(worker) = self.workers.get_mut(w) {
                worker.running.remove(id);
            }
        }
        e.status = status;
        if error.is_some() {
            e.error = error;
        }
        e.finished_at = Some(now);
        if let Some(started) = e.started_at {
            e.execution_ms = Some(ms(now - started));
        }
        match status {
            JobStatus::Completed => self.counters.completed += 1,
            JobStatus::Failed | JobStatus::TimedOut => self.counters.failed += 1,
            _ => {}
        }
        let webhook = e.webhook.clone();
        // Only FAILED and TIMED_OUT jobs can be retried: the others never hand out their
        // input (or s3Config) again.
        if !matches!(status, JobStatus::Failed | JobStatus::TimedOut) {
            if e.input.take().is_some() {
                self.freed += e.sizes.input;
            }
            e.s3_config = None;
            e.webhook = None;
        }
        e.changed.notify_waiters();
        self.retained_bytes += e.retained_bytes();
        let response = e.status_response();
        self.index_deadline(id);
        self.index_expiry(id);
        self.journal.job(id);
        let hook_key = match &webhook {
            Some(url) => self.journal.hook(url, &response),
            None => 0,
        };
        Some(Ended { webhook, status: response, hook_key })
    }

    /// Cancels a queued or running job; a running job's worker is told on `job-stop`.
    pub(crate) fn cancel(
        &mut self,
        id: &str,
        now: Instant,
    ) -> Result<(StatusResponse, Option<Ended>), ApiError> {
        let e = self.get(id)?;
        let was = e.status;
        if was.is_final() {
            return Ok((e.status_response(), None));
        }
        let worker = e.worker_id.clone();
        let ended = self.end(id, JobStatus::Cancelled, None, now).expect("the job exists");
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
        let held = e.retained_bytes();
        reset_for_queue(e, now);
        let low = e.low_priority();
        e.changed.notify_waiters();
        self.retained_bytes = self.retained_bytes.saturating_sub(held);
        self.index_expiry(id);
        self.index_deadline(id);
        self.journal.job(id);
        self.counters.retried += 1;
        self.enqueue_back(id.to_string(), low);
        Ok(JobStatus::InQueue)
    }

    /// Drops every queued job (they end `CANCELLED`); running jobs are left alone.
    pub(crate) fn purge(&mut self, now: Instant) -> Vec<Ended> {
        let ids: Vec<String> = self.queue.drain(..).chain(self.low_queue.drain(..)).collect();
        ids.iter().filter_map(|id| self.end(id, JobStatus::Cancelled, None, now)).collect()
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
            self.index_deadline(&id);
            self.journal.job(&id);
            if let Some(worker) = self.workers.get_mut(w) {
                worker.running.insert(id);
            }
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

    /// A `job-done` post of `bytes` JSON bytes: a progress update, or the final result. A
    /// final result repeated by the worker that delivered it (its answer was lost) is accepted
    /// and ignored.
    pub(crate) fn done(
        &mut self,
        w: &str,
        id: &str,
        done: JobDone,
        bytes: usize,
        now: Instant,
    ) -> Result<Option<Ended>, ApiError> {
        self.seen(w, now);
        if !done.is_progress() {
            let repeated = self.jobs.get(id).is_some_and(|e| {
                matches!(e.status, JobStatus::Completed | JobStatus::Failed)
                    && e.worker_id.as_deref() == Some(w)
            });
            if repeated {
                return Ok(None);
            }
        }
        let progress = done.is_progress();
        let e = Self::held_by(&mut self.jobs, w, id)?;
        e.output = done.output.map(Arc::new);
        e.sizes.output = if e.output.is_some() { bytes } else { 0 };
        e.saved.output = false;
        if progress {
            e.changed.notify_waiters();
            self.journal.job(id);
            return Ok(None);
        }
        let failed = done.error.is_some() || done.status == Some(JobStatus::Failed);
        let (status, error) = if failed {
            let err = done.error.unwrap_or_else(|| "the worker reported the job FAILED".into());
            (JobStatus::Failed, Some(err))
        } else {
            (JobStatus::Completed, None)
        };
        if done.stop_pod == Some(true) {
            tracing::info!(worker = w, job = id, "worker asked to be replaced after this job (stopPod)");
        }
        let ended = self.end(id, status, error, now);
        self.drop_over_bound(Some(id));
        Ok(ended)
    }

    /// A `job-stream` post of `bytes` JSON bytes: one more chunk for `/stream`.
    pub(crate) fn stream(
        &mut self,
        w: &str,
        id: &str,
        chunk: Value,
        bytes: usize,
        now: Instant,
    ) -> Result<(), ApiError> {
        self.seen(w, now);
        let e = Self::held_by(&mut self.jobs, w, id)?;
        e.stream.push(chunk);
        e.sizes.stream += bytes;
        e.changed.notify_waiters();
        self.journal.job(id);
        Ok(())
    }

    /// Counters and gauges for `/health`: proportional to the workers, not to the jobs.
    pub(crate) fn health(&self, cfg: &Config, now: Instant) -> Health {
        let mut h = Health::default();
        h.jobs.completed = self.counters.completed;
        h.jobs.failed = self.counters.failed;
        h.jobs.retried = self.counters.retried;
        h.jobs.in_queue = self.queued() as u64;
        for w in self.workers.values() {
            h.jobs.in_progress += w.running.len() as u64;
            if w.open_polls == 0 && now - w.last_seen > cfg.ping_grace {
                continue;
            }
            if w.unhealthy {
                h.workers.unhealthy += 1;
            } else if !w.running.is_empty() {
                h.workers.running += 1;
            } else {
                h.workers.idle += 1;
            }
        }
        h
    }
}

/// A new job id: a v4 UUID, `sync-` before it for `/runsync`.
pub(crate) fn new_id(origin: Origin) -> String {
    // A v4 UUID from the thread's ChaCha generator: `Uuid::new_v4` asks the kernel
    // (a getrandom syscall) for every id.
    let uuid = uuid::Builder::from_random_bytes(rand::random()).into_uuid();
    match origin {
        Origin::Run => uuid.to_string(),
        Origin::RunSync => format!("sync-{uuid}"),
    }
}

/// `at + d`, or far in the future when that overflows (a huge `ttl`).
fn expiry(at: Instant, d: Duration) -> Instant {
    at.checked_add(d).unwrap_or_else(|| at + Duration::from_secs(100 * 365 * 86_400))
}

//! The job service: every change to the jobs, and every wait on them, in one place.
//!
//! [`Jobs`] is a cheap-to-clone handle over the store. Each of its methods that changes a job
//! does, in order: lock the store, change it, unlock; wake whoever waits (takers, clients
//! long-polling the job); wait until the change is saved (with a data directory); send the
//! webhooks of the jobs that ended. Callers never see the lock, the journal or a notify.
//!
//! One durability rule: an answer that acknowledges a change comes once the change is in the
//! data directory; when it cannot be saved, the answer is `503` and says so. A job refused
//! that way is not kept (a client that retries cannot get it twice): a new job is held out of
//! the queue until it is saved, dropped if it cannot be; jobs handed to a worker whose hand-over
//! cannot be saved go back to the front of the queue. Without a data directory every change
//! counts as saved at once. The one change made with no answer to give, the cancel of an
//! OpenAI call whose client went away, is saved with the next commit.

use crate::config::Config;
use crate::error::ApiError;
use crate::memory;
use crate::store::{Ended, Store};
/// A job as readers see it (read-only), and which route queued it.
pub(crate) use crate::store::{Entry, Origin};
use crate::webhook::{self, Ledger, PendingHook, Webhooks};
use runpod_protocol::{
    Health, Job, JobDone, JobRequest, JobStatus, StatusResponse, StreamChunk, StreamResponse,
};
use serde_json::Value;
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;
use tokio::sync::Notify;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// The job service of one endpoint (see the module doc).
#[derive(Clone)]
pub(crate) struct Jobs(Arc<Inner>);

struct Inner {
    cfg: Arc<Config>,
    store: Mutex<Store>,
    /// Woken whenever a job enters a queue.
    queue_changed: Notify,
    /// Cancelled on shutdown: long polls answer at once, background tasks end.
    shutdown: CancellationToken,
    webhooks: Webhooks,
    /// The data directory's writer, with one.
    #[cfg(feature = "persistence")]
    writer: std::sync::OnceLock<crate::disk::Writer>,
}

/// What a reader of one job gets: its status, its chunks from some index on, and when it was
/// queued.
#[derive(Debug)]
pub(crate) struct JobView {
    pub status: StatusResponse,
    pub chunks: Vec<Value>,
    /// The absolute index after the last chunk.
    pub next: u64,
    pub submitted_at: Instant,
}

/// `now + d`, or a point far in the future when that overflows (a huge configured wait).
pub(crate) fn deadline(d: Duration) -> Instant {
    let now = Instant::now();
    now.checked_add(d).unwrap_or_else(|| now + Duration::from_secs(100 * 365 * 86_400))
}

/// The checks of a request beyond its JSON shape: an `input`; an http(s) `webhook` whose host,
/// when an IP address, is one webhooks may go to.
pub(crate) fn check_request(cfg: &Config, req: &JobRequest) -> Result<(), ApiError> {
    if req.input.is_null() {
        return Err(ApiError::BadRequest("'input' is required and must not be null".into()));
    }
    if let Some(hook) = &req.webhook {
        let url = url::Url::parse(hook).ok().filter(|u| matches!(u.scheme(), "http" | "https"));
        let Some(url) = url else {
            return Err(ApiError::BadRequest("'webhook' must be an http:// or https:// URL".into()));
        };
        cfg.webhook_targets
            .check_url(&url)
            .map_err(|why| ApiError::BadRequest(format!("'webhook': {why}")))?;
    }
    if let Some(schema) = &cfg.schema {
        schema.check_input(&req.input).map_err(|v| ApiError::BadRequest(v.to_string()))?;
    }
    Ok(())
}

impl Inner {
    /// The store, locked. Never hold the guard across an `.await`.
    fn lock(&self) -> MutexGuard<'_, Store> {
        // A panic while locked cannot leave the store half-updated in a way that matters more
        // than losing the endpoint, so keep serving.
        self.store.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// True with a data directory: changes must be saved before they are acknowledged.
    fn durable(&self) -> bool {
        #[cfg(feature = "persistence")]
        return self.writer.get().is_some();
        #[cfg(not(feature = "persistence"))]
        false
    }

    /// The durability rule: returns once change `seq` of the store is in the data directory,
    /// at once without one; `503` when it could not be saved.
    async fn saved(&self, seq: u64) -> Result<(), ApiError> {
        #[cfg(feature = "persistence")]
        if let Some(w) = self.writer.get() {
            if !w.wait(seq).await {
                return Err(ApiError::Unavailable(
                    "the change could not be saved in the data directory (see the endpoint's log); retry later"
                        .into(),
                ));
            }
        }
        let _ = seq;
        Ok(())
    }

    /// Tells the data directory's writer that something changed (no wait).
    fn kick(&self) {
        #[cfg(feature = "persistence")]
        if let Some(w) = self.writer.get() {
            w.kick();
        }
    }

    /// Sends the webhooks of jobs that just ended.
    fn ended(&self, ended: impl IntoIterator<Item = Ended>) {
        for e in ended {
            if let Some(url) = e.webhook {
                self.webhooks.send(e.hook_key, PendingHook { url, body: e.status, attempts: 0 });
            }
        }
    }
}

/// Records webhook deliveries in the store's journal (a weak handle: the deliveries do not
/// keep the endpoint alive).
struct HookLedger(Weak<Inner>);

impl Ledger for HookLedger {
    fn attempted(&self, key: u64, hook: &PendingHook) {
        if let Some(inner) = self.0.upgrade() {
            inner.lock().journal.hook_attempted(key, hook);
            inner.kick();
        }
    }

    fn finished(&self, key: u64) {
        if let Some(inner) = self.0.upgrade() {
            inner.lock().journal.hook_finished(key);
            inner.kick();
        }
    }
}

/// Counts an open long poll of a worker; the worker cannot be declared lost while one is open.
struct PollGuard<'a> {
    inner: &'a Inner,
    worker: &'a str,
}

impl<'a> PollGuard<'a> {
    fn open(inner: &'a Inner, worker: &'a str) -> Self {
        inner.lock().poll_open(worker, Instant::now(), true);
        PollGuard { inner, worker }
    }
}

impl Drop for PollGuard<'_> {
    fn drop(&mut self) {
        self.inner.lock().poll_open(self.worker, Instant::now(), false);
    }
}

/// Jobs taken for a worker and not yet handed over: dropped before [`Handover::done`] (the
/// save failed, or the request went away meanwhile), they go back to the front of the queue.
struct Handover<'a> {
    inner: &'a Inner,
    worker: &'a str,
    ids: Vec<String>,
}

impl Handover<'_> {
    fn done(mut self) {
        self.ids.clear();
    }
}

impl Drop for Handover<'_> {
    fn drop(&mut self) {
        if self.ids.is_empty() {
            return;
        }
        tracing::warn!(worker = %self.worker, jobs = self.ids.len(), "jobs not handed over; back to the front of the queue");
        self.inner.lock().untake(self.worker, &self.ids, Instant::now());
        self.inner.queue_changed.notify_waiters();
        self.inner.kick();
    }
}

impl Jobs {
    /// A service with no jobs; `shutdown` ends its long polls and background tasks.
    pub(crate) fn new(cfg: Arc<Config>, shutdown: CancellationToken) -> Jobs {
        let settings = webhook::Settings {
            concurrency: cfg.webhook_concurrency,
            timeout: cfg.webhook_timeout,
            attempts: cfg.webhook_attempts,
            retry_delay: cfg.webhook_retry_delay,
            targets: cfg.webhook_targets,
            kept: cfg.data_dir.is_some(),
        };
        let webhooks = Webhooks::new(settings, shutdown.clone());
        let inner = Arc::new(Inner {
            store: Mutex::new(Store::new(cfg.max_retained_bytes)),
            cfg,
            queue_changed: Notify::new(),
            shutdown,
            webhooks,
            #[cfg(feature = "persistence")]
            writer: std::sync::OnceLock::new(),
        });
        inner.webhooks.set_ledger(Arc::new(HookLedger(Arc::downgrade(&inner))));
        Jobs(inner)
    }

    /// The endpoint's settings.
    pub(crate) fn cfg(&self) -> &Config {
        &self.0.cfg
    }

    /// True once the endpoint shuts down.
    pub(crate) fn is_shutting_down(&self) -> bool {
        self.0.shutdown.is_cancelled()
    }

    /// Puts a job in the store under `id` (a new one when `None`): queued at once without a
    /// data directory, else held until [`Jobs::confirm`]. Its change number when it must be
    /// saved first.
    fn admit(
        &self,
        id: Option<String>,
        req: JobRequest,
        bytes: usize,
        origin: Origin,
        extra: Option<serde_json::Map<String, Value>>,
    ) -> Result<(String, Option<u64>), ApiError> {
        check_request(&self.0.cfg, &req)?;
        let durable = self.0.durable();
        let cfg = &self.0.cfg;
        let mut store = self.0.lock();
        let id = id.unwrap_or_else(|| crate::store::new_id(origin));
        let now = Instant::now();
        let id = match durable {
            true => store.insert_held(cfg, id, req, bytes, origin, now)?,
            false => store.submit_as(cfg, id, req, bytes, origin, now)?,
        };
        if let Some(extra) = extra {
            store.set_extra(&id, extra);
        }
        let seq = durable.then(|| store.journal.seq());
        drop(store);
        if !durable {
            self.0.queue_changed.notify_waiters();
        }
        Ok((id, seq))
    }

    /// Queues held job `id` once saved, or drops it when it could not be.
    fn confirm(&self, id: &str, saved: Result<(), ApiError>) -> Result<(), ApiError> {
        match saved {
            Ok(()) => {
                self.0.lock().release(id);
                self.0.queue_changed.notify_waiters();
                Ok(())
            }
            Err(e) => {
                self.0.lock().forget(id);
                self.0.kick();
                tracing::warn!(job = %id, "job refused: it could not be saved in the data directory");
                Err(e)
            }
        }
    }

    /// Queues a validated request (`bytes`: its size as JSON); its new id.
    pub(crate) async fn submit(
        &self,
        req: JobRequest,
        bytes: usize,
        origin: Origin,
    ) -> Result<String, ApiError> {
        let (id, seq) = self.admit(None, req, bytes, origin, None)?;
        if let Some(seq) = seq {
            let saved = self.0.saved(seq).await;
            self.confirm(&id, saved)?;
        }
        tracing::debug!(job = %id, "job queued");
        Ok(id)
    }

    /// Queues `req` under `id` with other fields the worker gets (`409` when the id exists),
    /// from synchronous code: with a data directory, blocks the thread until it is saved.
    pub(crate) fn submit_as_blocking(
        &self,
        id: &str,
        req: JobRequest,
        extra: Option<serde_json::Map<String, Value>>,
    ) -> Result<(), ApiError> {
        let bytes = serde_json::to_vec(&req.input).map_or(0, |v| v.len());
        let (id, seq) = self.admit(Some(id.to_owned()), req, bytes, Origin::Run, extra)?;
        if let Some(seq) = seq {
            // The writer is a thread of its own: waiting here does not need this runtime.
            let saved = futures::executor::block_on(self.0.saved(seq));
            self.confirm(&id, saved)?;
        }
        Ok(())
    }

    /// Waits until `ready` holds for job `id` (called with `None` once it is gone),
    /// `deadline` passes or the endpoint shuts down. Woken by the job's own notify: no polling.
    pub(crate) async fn wait_job(&self, id: &str, deadline: Instant, ready: impl Fn(Option<&Entry>) -> bool) {
        loop {
            let notify = {
                let store = self.0.lock();
                let entry = store.get(id).ok();
                if ready(entry) {
                    return;
                }
                match entry {
                    Some(e) => e.changed(),
                    None => return,
                }
            };
            let notified = notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if ready(self.0.lock().get(id).ok()) {
                return;
            }
            tokio::select! {
                _ = &mut notified => {}
                _ = tokio::time::sleep_until(deadline) => return,
                _ = self.0.shutdown.cancelled() => return,
            }
        }
    }

    /// Job `id` as it stands, its chunks from absolute index `from` on; `None` when unknown.
    pub(crate) fn view(&self, id: &str, from: u64) -> Option<JobView> {
        let store = self.0.lock();
        let e = store.get(id).ok()?;
        let (chunks, next) = e.stream_from(from);
        Some(JobView {
            status: e.status_response(),
            chunks: chunks.to_vec(),
            next,
            submitted_at: e.submitted_at(),
        })
    }

    /// `404` unless job `id` is known.
    pub(crate) fn exists(&self, id: &str) -> Result<(), ApiError> {
        self.0.lock().get(id).map(|_| ())
    }

    /// The `limit` newest jobs (brief status and when queued), how many are kept, and health.
    pub(crate) fn list(&self, limit: usize) -> (Vec<(StatusResponse, Instant)>, usize, Health) {
        let now = Instant::now();
        let store = self.0.lock();
        let mut all: Vec<&Entry> = store.jobs().collect();
        let newest = |a: &&Entry, b: &&Entry| b.submitted_at().cmp(&a.submitted_at());
        if all.len() > limit {
            all.select_nth_unstable_by(limit, newest);
            all.truncate(limit);
        }
        all.sort_by(newest);
        let rows = all.iter().map(|e| (e.status_brief(), e.submitted_at())).collect();
        (rows, store.jobs().count(), store.health(&self.0.cfg, now))
    }

    /// Waits up to `deadline` for job `id` to end; its status then, once saved.
    pub(crate) async fn wait_final(&self, id: &str, deadline: Instant) -> Result<StatusResponse, ApiError> {
        self.wait_job(id, deadline, |e| e.is_none_or(|e| e.status().is_final())).await;
        let (status, seq) = {
            let store = self.0.lock();
            (store.get(id)?.status_response(), store.journal.seq())
        };
        self.0.saved(seq).await?;
        Ok(status)
    }

    /// Where job `id` stands; `ttl` sets how long its result is kept (a change: saved first).
    pub(crate) async fn status(&self, id: &str, ttl: Option<Duration>) -> Result<StatusResponse, ApiError> {
        let (status, seq) = {
            let mut store = self.0.lock();
            if let Some(ttl) = ttl {
                store.set_retention(id, ttl)?;
            }
            (store.get(id)?.status_response(), store.journal.seq())
        };
        if ttl.is_some() {
            self.0.saved(seq).await?;
        }
        Ok(status)
    }

    /// The chunks streamed since the previous call, each once and in order; when there is
    /// none yet and the job runs, waits up to `stream_wait` for one.
    pub(crate) async fn read_stream(&self, id: &str) -> Result<StreamResponse, ApiError> {
        let ready = |e: Option<&Entry>| e.is_none_or(|e| e.has_unread_stream() || e.status().is_final());
        self.wait_job(id, deadline(self.0.cfg.stream_wait), ready).await;
        let ((status, chunks, error), seq) = {
            let mut store = self.0.lock();
            (store.drain_stream(id)?, store.journal.seq())
        };
        self.0.saved(seq).await?;
        let stream = chunks.into_iter().map(|output| StreamChunk { output }).collect();
        Ok(StreamResponse { status, stream, error })
    }

    /// Cancels job `id`: a queued job leaves the queue, a running one is announced on
    /// `job-stop`. Its status after.
    pub(crate) async fn cancel(&self, id: &str) -> Result<StatusResponse, ApiError> {
        let ((status, ended), seq) = {
            let mut store = self.0.lock();
            (store.cancel(id, Instant::now())?, store.journal.seq())
        };
        if ended.is_some() {
            tracing::info!(job = %id, "job cancelled");
        }
        let saved = self.0.saved(seq).await;
        self.0.ended(ended);
        saved?;
        Ok(status)
    }

    /// Cancels job `id` with no answer to give (its client went away): saved with the next
    /// commit. Logs `why` when it was still active.
    pub(crate) fn cancel_detached(&self, id: &str, why: &str) {
        let cancelled = self.0.lock().cancel(id, Instant::now());
        if let Ok((_, ended)) = cancelled {
            if ended.is_some() {
                tracing::info!(job = %id, "{why}: job cancelled");
            }
            self.0.ended(ended);
            self.0.kick();
        }
    }

    /// Re-queues a `FAILED` or `TIMED_OUT` job under the same id.
    pub(crate) async fn retry(&self, id: &str) -> Result<JobStatus, ApiError> {
        let (status, seq) = {
            let mut store = self.0.lock();
            (store.retry(&self.0.cfg, id, Instant::now())?, store.journal.seq())
        };
        self.0.queue_changed.notify_waiters();
        self.0.saved(seq).await?;
        tracing::info!(job = %id, "job re-queued by /retry");
        Ok(status)
    }

    /// Drops every queued job (they end `CANCELLED`); how many.
    pub(crate) async fn purge(&self) -> Result<u64, ApiError> {
        let (ended, seq) = {
            let mut store = self.0.lock();
            (store.purge(Instant::now()), store.journal.seq())
        };
        let removed = ended.len() as u64;
        let saved = self.0.saved(seq).await;
        self.0.ended(ended);
        saved?;
        Ok(removed)
    }

    /// Job and worker counters.
    pub(crate) fn health(&self) -> Health {
        self.0.lock().health(&self.0.cfg, Instant::now())
    }

    /// Long-polls the queue for up to `n` jobs for `worker`, woken the moment a job is queued;
    /// none after `take_wait` or at shutdown. Jobs are handed over only once saved: after a
    /// restart the worker's result is accepted.
    pub(crate) async fn take(&self, worker: &str, n: usize) -> Result<Vec<Job>, ApiError> {
        let inner = &*self.0;
        let _poll = PollGuard::open(inner, worker);
        let deadline = deadline(inner.cfg.take_wait);
        loop {
            let notified = inner.queue_changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if inner.shutdown.is_cancelled() {
                // No job goes out once the endpoint stops: it could not be answered for.
                return Ok(Vec::new());
            }
            let (jobs, seq) = {
                let mut store = inner.lock();
                (store.take(worker, n, Instant::now()), store.journal.seq())
            };
            if !jobs.is_empty() {
                let handover = Handover { inner, worker, ids: jobs.iter().map(|j| j.id.clone()).collect() };
                inner.saved(seq).await?;
                handover.done();
                for j in &jobs {
                    tracing::debug!(job = %j.id, worker, "job taken");
                }
                return Ok(jobs);
            }
            tokio::select! {
                _ = &mut notified => {}
                _ = tokio::time::sleep_until(deadline) => return Ok(Vec::new()),
                _ = inner.shutdown.cancelled() => return Ok(Vec::new()),
            }
        }
    }

    /// Long-polls `worker`'s stop list: the ids of its running jobs that were cancelled or
    /// timed out; none after `take_wait` or at shutdown.
    pub(crate) async fn stops(&self, worker: &str) -> Vec<String> {
        let inner = &*self.0;
        let _poll = PollGuard::open(inner, worker);
        let deadline = deadline(inner.cfg.take_wait);
        loop {
            let (stops, notify) = inner.lock().take_stops(worker, Instant::now());
            if !stops.is_empty() {
                return stops;
            }
            let notified = notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let (stops, _) = inner.lock().take_stops(worker, Instant::now());
            if !stops.is_empty() {
                return stops;
            }
            tokio::select! {
                _ = &mut notified => {}
                _ = tokio::time::sleep_until(deadline) => return Vec::new(),
                _ = inner.shutdown.cancelled() => return Vec::new(),
            }
        }
    }

    /// A `job-done` post (`bytes`: its size as JSON): a progress update or the final result.
    /// `409` when the job is not running on this worker (then nothing is applied).
    pub(crate) async fn done(
        &self,
        worker: &str,
        job: &str,
        done: JobDone,
        bytes: usize,
    ) -> Result<(), ApiError> {
        let progress = done.is_progress();
        let (ended, seq) = {
            let mut store = self.0.lock();
            (store.done(worker, job, done, bytes, Instant::now())?, store.journal.seq())
        };
        if let Some(e) = &ended {
            tracing::info!(job = %job, worker = %worker, status = %e.status.status, "job ended");
        } else if !progress {
            tracing::debug!(job = %job, "result repeated by the worker that delivered it: ignored");
        }
        let saved = self.0.saved(seq).await;
        self.0.ended(ended);
        saved
    }

    /// A `job-stream` post: one partial output for `/stream`.
    pub(crate) async fn stream_chunk(
        &self,
        worker: &str,
        job: &str,
        output: Value,
        bytes: usize,
    ) -> Result<(), ApiError> {
        let seq = {
            let mut store = self.0.lock();
            store.stream(worker, job, output, bytes, Instant::now())?;
            store.journal.seq()
        };
        self.0.saved(seq).await
    }

    /// A worker's heartbeat: the jobs it runs, and whether a start-up check failed.
    pub(crate) fn ping(&self, worker: &str, running: &[&str], unhealthy: bool) {
        self.0.lock().ping(worker, running, unhealthy, Instant::now());
    }

    /// Applies the time-based rules every `sweep_interval` until shutdown, and gives the memory
    /// of forgotten jobs back to the system.
    pub(crate) async fn sweep_until_shutdown(self) {
        let inner = &*self.0;
        let mut tick = tokio::time::interval(inner.cfg.sweep_interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut trim = memory::Trim::default();
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = inner.shutdown.cancelled() => return,
            }
            let (swept, freed) = {
                let mut store = inner.lock();
                let swept = store.sweep(&inner.cfg, Instant::now());
                (swept, store.take_freed())
            };
            if swept.requeued {
                inner.queue_changed.notify_waiters();
            }
            if swept.requeued || swept.dropped > 0 || !swept.ended.is_empty() {
                inner.kick();
            }
            inner.ended(swept.ended);
            trim.freed(freed);
        }
    }

    /// Opens the data directory: restores the jobs it holds, resumes its pending webhooks, and
    /// starts the writer that keeps it up to date.
    #[cfg(feature = "persistence")]
    pub(crate) fn open_data_dir(&self, dir: &std::path::Path) -> Result<(), String> {
        use crate::store::journal::Clock;
        let (disk, loaded) = crate::disk::Disk::open(dir, self.0.cfg.fsync).map_err(|e| e.to_string())?;
        let count = |s: JobStatus| loaded.jobs.iter().filter(|j| j.record.status == s).count();
        let (queued, running) = (count(JobStatus::InQueue), count(JobStatus::InProgress));
        let (jobs, hooks) = (loaded.jobs.len(), loaded.hooks.len());
        let last_hook = loaded.hooks.iter().map(|(k, _)| *k).max().unwrap_or(0);
        {
            let mut store = self.0.lock();
            store.restore(loaded.jobs, Clock::now());
            store.journal.enable(last_hook);
        }
        let weak = Arc::downgrade(&self.0);
        let weak2 = weak.clone();
        let take = move || weak.upgrade().map(|inner| inner.lock().take_batch(Clock::now()));
        let redo = move |batch| {
            if let Some(inner) = weak2.upgrade() {
                inner.lock().redo(batch);
            }
        };
        let _ = self.0.writer.set(crate::disk::Writer::start(disk, take, redo));
        if jobs + hooks > 0 {
            let finished = jobs - queued - running;
            tracing::info!(queued, running, finished, webhooks = hooks, dir = %dir.display(), "restored from the data directory");
        }
        for (key, hook) in loaded.hooks {
            self.0.webhooks.send(key, hook);
        }
        Ok(())
    }

    /// The last stage of a shutdown (the server has stopped): gives each pending webhook one
    /// more attempt, and commits the last changes; each waits at most `grace`.
    pub(crate) async fn finish(&self, grace: Duration) {
        self.0.webhooks.finish(grace).await;
        #[cfg(feature = "persistence")]
        if let Some(w) = self.0.writer.get() {
            w.finish(grace).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn service() -> (Jobs, CancellationToken) {
        let token = CancellationToken::new();
        (Jobs::new(Arc::new(Config::default()), token.clone()), token)
    }

    #[tokio::test]
    async fn a_held_take_ends_at_shutdown() {
        let (jobs, token) = service();
        let held = tokio::spawn({
            let jobs = jobs.clone();
            async move { jobs.take("w", 1).await }
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        let t = std::time::Instant::now();
        token.cancel();
        let taken = tokio::time::timeout(Duration::from_secs(5), held).await.expect("ended").unwrap();
        assert!(taken.unwrap().is_empty());
        assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
    }

    #[tokio::test]
    async fn no_job_goes_out_once_shutting_down() {
        let (jobs, token) = service();
        let id = jobs.submit(JobRequest::new(json!(1)), 1, Origin::Run).await.unwrap();
        token.cancel();
        assert!(jobs.take("w", 1).await.unwrap().is_empty());
        assert_eq!(jobs.view(&id, 0).unwrap().status.status, JobStatus::InQueue, "still queued");
    }
}

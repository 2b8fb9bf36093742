//! The worker API: `job-take` (+ batch), `job-stop`, `job-done`, `job-stream`, `ping`.

use crate::error::ApiError;
use crate::request::{read_json, Params};
use crate::server::{deadline, query_pairs, query_u64, Shared};
use axum::body::Body;
use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use runpod_protocol::{JobDone, JobsToStop, StreamPost};
use std::sync::Arc;
use tokio::time::Instant;

type Shd = State<Arc<Shared>>;

/// Largest `batch_size` honoured by `job-take-batch`.
const MAX_BATCH: u64 = 1000;

/// Counts an open long poll of a worker; the worker cannot be declared lost while one is open.
struct PollGuard<'a> {
    sh: &'a Shared,
    worker: &'a str,
}

impl<'a> PollGuard<'a> {
    fn open(sh: &'a Shared, worker: &'a str) -> Self {
        sh.lock().poll_open(worker, Instant::now(), true);
        PollGuard { sh, worker }
    }
}

impl Drop for PollGuard<'_> {
    fn drop(&mut self) {
        self.sh.lock().poll_open(self.worker, Instant::now(), false);
    }
}

/// `GET job-take/{worker}`: one job as a JSON object, or `204` after `take_wait`.
pub(crate) async fn take(State(sh): Shd, Params((_, worker)): Params<(String, String)>) -> Response {
    take_jobs(&sh, &worker, None).await
}

/// `GET job-take-batch/{worker}?batch_size=N`: up to N jobs as a JSON array, or `204`.
pub(crate) async fn take_batch(
    State(sh): Shd,
    Params((_, worker)): Params<(String, String)>,
    RawQuery(q): RawQuery,
) -> Response {
    let n = match query_u64(&query_pairs(q.as_deref()), "batch_size") {
        Ok(n) => n.unwrap_or(1).clamp(1, MAX_BATCH) as usize,
        Err(e) => return e.into_response(),
    };
    take_jobs(&sh, &worker, Some(n)).await
}

/// Long-polls the queue: woken by `queue_changed` the moment a job is queued.
async fn take_jobs(sh: &Shared, worker: &str, batch: Option<usize>) -> Response {
    let _poll = PollGuard::open(sh, worker);
    let deadline = deadline(sh.cfg.take_wait);
    loop {
        let notified = sh.queue_changed.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        let (mut jobs, seq) = {
            let mut store = sh.lock();
            (store.take(worker, batch.unwrap_or(1), Instant::now()), store.journal.seq())
        };
        if !jobs.is_empty() {
            for j in &jobs {
                tracing::debug!(job = %j.id, worker, "job taken");
            }
            // Handed over only once saved: after a restart the worker's result is accepted.
            if let Err(e) = sh.saved(seq).await {
                return e.into_response();
            }
            return match batch {
                Some(_) => Json(jobs).into_response(),
                None => Json(jobs.swap_remove(0)).into_response(),
            };
        }
        tokio::select! {
            _ = &mut notified => {}
            _ = tokio::time::sleep_until(deadline) => return StatusCode::NO_CONTENT.into_response(),
            _ = sh.shutdown.cancelled() => return StatusCode::NO_CONTENT.into_response(),
        }
    }
}

/// `GET job-stop/{worker}`: `{"jobsToStop": [...]}` once a running job of this worker is
/// cancelled or times out, or `204` after `take_wait`.
pub(crate) async fn stop(State(sh): Shd, Params((_, worker)): Params<(String, String)>) -> Response {
    let _poll = PollGuard::open(&sh, &worker);
    let deadline = deadline(sh.cfg.take_wait);
    loop {
        let (stops, notify) = sh.lock().take_stops(&worker, Instant::now());
        if !stops.is_empty() {
            return Json(JobsToStop { jobs_to_stop: stops }).into_response();
        }
        let notified = notify.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        let (stops, _) = sh.lock().take_stops(&worker, Instant::now());
        if !stops.is_empty() {
            return Json(JobsToStop { jobs_to_stop: stops }).into_response();
        }
        tokio::select! {
            _ = &mut notified => {}
            _ = tokio::time::sleep_until(deadline) => return StatusCode::NO_CONTENT.into_response(),
            _ = sh.shutdown.cancelled() => return StatusCode::NO_CONTENT.into_response(),
        }
    }
}

/// `POST job-done/{worker}/{job}`: a progress update (`"status": "IN_PROGRESS"`) or the final
/// result. `409` when the job is not running on this worker (then nothing is applied).
pub(crate) async fn done(
    State(sh): Shd,
    Params((_, worker, job)): Params<(String, String, String)>,
    body: Body,
) -> Result<StatusCode, ApiError> {
    let (done, bytes): (JobDone, usize) =
        read_json(body, sh.cfg.max_result_bytes, sh.cfg.body_timeout).await?;
    let progress = done.is_progress();
    let (ended, seq) = {
        let mut store = sh.lock();
        (store.done(&worker, &job, done, bytes, Instant::now())?, store.journal.seq())
    };
    if let Some(e) = &ended {
        tracing::info!(job = %job, worker = %worker, status = %e.status.status, "job ended");
    } else if !progress {
        tracing::debug!(job = %job, "result repeated by the worker that delivered it: ignored");
    }
    let saved = sh.saved(seq).await;
    sh.ended(ended);
    saved?;
    Ok(StatusCode::OK)
}

/// `POST job-stream/{worker}/{job}`: one partial output, `{"output": ...}`.
pub(crate) async fn stream(
    State(sh): Shd,
    Params((_, worker, job)): Params<(String, String, String)>,
    body: Body,
) -> Result<StatusCode, ApiError> {
    let (post, bytes): (StreamPost, usize) =
        read_json(body, sh.cfg.max_stream_chunk_bytes, sh.cfg.body_timeout).await?;
    let seq = {
        let mut store = sh.lock();
        store.stream(&worker, &job, post.output, bytes, Instant::now())?;
        store.journal.seq()
    };
    sh.saved(seq).await?;
    Ok(StatusCode::OK)
}

/// `GET ping/{worker}?job_id=..&runpod_version=..` (or `status=unhealthy&check=..&reason=..`).
pub(crate) async fn ping(
    State(sh): Shd,
    Params((_, worker)): Params<(String, String)>,
    RawQuery(q): RawQuery,
) -> StatusCode {
    let pairs = query_pairs(q.as_deref());
    let get = |k: &str| pairs.iter().find(|(key, _)| key == k).map(|(_, v)| v.as_str());
    let unhealthy = get("status") == Some("unhealthy");
    if unhealthy {
        let check = get("check").unwrap_or("?");
        let reason: String = get("reason").unwrap_or("").chars().take(256).collect();
        tracing::warn!(worker = %worker, check, reason = %reason, "worker reports a failed start-up check");
    }
    let running: Vec<&str> =
        get("job_id").map(|ids| ids.split(',').filter(|id| !id.is_empty()).collect()).unwrap_or_default();
    sh.lock().ping(&worker, &running, unhealthy, Instant::now());
    StatusCode::OK
}

//! The client API: `/run`, `/runsync`, `/status`, `/stream`, `/cancel`, `/retry`,
//! `/purge-queue`, `/health`.

use crate::config::Config;
use crate::error::ApiError;
use crate::request::{read_json, Params};
use crate::server::{deadline, query_pairs, query_u64, Shared};
use crate::store::Origin;
use axum::body::Body;
use axum::extract::{RawQuery, State};
use axum::Json;
use runpod_protocol::limits::{MAX_RUNSYNC_WAIT_MS, MIN_RUNSYNC_WAIT_MS};
use runpod_protocol::{
    Health, JobRequest, JobStatus, PurgeResponse, RunResponse, StatusResponse, StreamChunk, StreamResponse,
};
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

type Shd = State<Arc<Shared>>;

/// Parses and queues a request body.
async fn submit(sh: &Shared, body: Body, origin: Origin) -> Result<String, ApiError> {
    let limit = match origin {
        Origin::Run => sh.cfg.max_run_bytes,
        Origin::RunSync => sh.cfg.max_runsync_bytes,
    };
    let (req, bytes): (JobRequest, usize) = read_json(body, limit, sh.cfg.body_timeout).await?;
    check_request(&sh.cfg, &req)?;
    let (id, seq) = {
        let mut store = sh.lock();
        let id = store.submit(&sh.cfg, req, bytes, origin, Instant::now())?;
        (id, store.journal.seq())
    };
    sh.queue_changed.notify_waiters();
    sh.saved(seq).await?;
    tracing::debug!(job = %id, "job queued");
    Ok(id)
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
    Ok(())
}

/// `POST /run`: queue a job, answer `{"id", "status": "IN_QUEUE"}` at once.
pub(crate) async fn run(State(sh): Shd, body: Body) -> Result<Json<RunResponse>, ApiError> {
    let id = submit(&sh, body, Origin::Run).await?;
    Ok(Json(RunResponse { id, status: JobStatus::InQueue }))
}

/// `POST /runsync?wait=ms`: queue a job and wait for it to end, else answer its current status.
pub(crate) async fn runsync(
    State(sh): Shd,
    RawQuery(q): RawQuery,
    body: Body,
) -> Result<Json<StatusResponse>, ApiError> {
    let wait = match query_u64(&query_pairs(q.as_deref()), "wait")? {
        None => sh.cfg.runsync_wait,
        Some(ms) if (MIN_RUNSYNC_WAIT_MS..=MAX_RUNSYNC_WAIT_MS).contains(&ms) => Duration::from_millis(ms),
        Some(ms) => {
            return Err(ApiError::BadRequest(format!(
                "query parameter 'wait' must be between {MIN_RUNSYNC_WAIT_MS} and {MAX_RUNSYNC_WAIT_MS} ms, got {ms}"
            )))
        }
    };
    let id = submit(&sh, body, Origin::RunSync).await?;
    let deadline = deadline(wait);
    let is_final = |s: &crate::store::Store| s.get(&id).map_or(true, |e| e.status().is_final());
    sh.wait_job(&id, deadline, is_final).await?;
    let (status, seq) = {
        let store = sh.lock();
        (store.get(&id)?.status_response(), store.journal.seq())
    };
    sh.saved(seq).await?;
    Ok(Json(status))
}

/// `GET /status/{id}?ttl=ms`: where the job stands; `ttl` sets how long its result is kept.
pub(crate) async fn status(
    State(sh): Shd,
    Params((_, id)): Params<(String, String)>,
    RawQuery(q): RawQuery,
) -> Result<Json<StatusResponse>, ApiError> {
    let ttl = query_u64(&query_pairs(q.as_deref()), "ttl")?;
    let (status, seq) = {
        let mut store = sh.lock();
        if let Some(ms) = ttl {
            store.set_retention(&id, Duration::from_millis(ms))?;
        }
        (store.get(&id)?.status_response(), store.journal.seq())
    };
    if ttl.is_some() {
        sh.saved(seq).await?;
    }
    Ok(Json(status))
}

/// `GET /stream/{id}`: the chunks streamed since the previous call, each once and in order.
/// When there is none yet and the job runs, waits up to `stream_wait` for one.
pub(crate) async fn stream(
    State(sh): Shd,
    Params((_, id)): Params<(String, String)>,
) -> Result<Json<StreamResponse>, ApiError> {
    let deadline = deadline(sh.cfg.stream_wait);
    let ready = |s: &crate::store::Store| {
        s.has_unread_stream(&id) || s.get(&id).map_or(true, |e| e.status().is_final())
    };
    sh.wait_job(&id, deadline, ready).await?;
    let ((status, chunks, error), seq) = {
        let mut store = sh.lock();
        (store.drain_stream(&id)?, store.journal.seq())
    };
    sh.saved(seq).await?;
    let stream = chunks.into_iter().map(|output| StreamChunk { output }).collect();
    Ok(Json(StreamResponse { status, stream, error }))
}

/// `POST /cancel/{id}`: a queued job leaves the queue; a running one is announced on `job-stop`.
pub(crate) async fn cancel(
    State(sh): Shd,
    Params((_, id)): Params<(String, String)>,
) -> Result<Json<StatusResponse>, ApiError> {
    let ((status, ended), seq) = {
        let mut store = sh.lock();
        (store.cancel(&id, Instant::now())?, store.journal.seq())
    };
    if ended.is_some() {
        tracing::info!(job = %id, "job cancelled");
    }
    let saved = sh.saved(seq).await;
    sh.ended(ended);
    saved?;
    Ok(Json(status))
}

/// `POST /retry/{id}`: re-queue a `FAILED` or `TIMED_OUT` job under the same id.
pub(crate) async fn retry(
    State(sh): Shd,
    Params((_, id)): Params<(String, String)>,
) -> Result<Json<RunResponse>, ApiError> {
    let (status, seq) = {
        let mut store = sh.lock();
        (store.retry(&sh.cfg, &id, Instant::now())?, store.journal.seq())
    };
    sh.queue_changed.notify_waiters();
    sh.saved(seq).await?;
    tracing::info!(job = %id, "job re-queued by /retry");
    Ok(Json(RunResponse { id, status }))
}

/// `POST /purge-queue`: drop every queued job (they end `CANCELLED`).
pub(crate) async fn purge(State(sh): Shd) -> Result<Json<PurgeResponse>, ApiError> {
    let (ended, seq) = {
        let mut store = sh.lock();
        (store.purge(Instant::now()), store.journal.seq())
    };
    let removed = ended.len() as u64;
    let saved = sh.saved(seq).await;
    sh.ended(ended);
    saved?;
    Ok(Json(PurgeResponse { removed, status: "completed".into() }))
}

/// `GET /health`: job and worker counters.
pub(crate) async fn health(State(sh): Shd) -> Json<Health> {
    Json(sh.lock().health(&sh.cfg, Instant::now()))
}

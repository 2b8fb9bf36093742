//! The client API: `/run`, `/runsync`, `/status`, `/stream`, `/cancel`, `/retry`,
//! `/purge-queue`, `/health`. Each handler parses the request, calls the job service and
//! shapes its answer.

use crate::error::ApiError;
use crate::jobs::{deadline, Jobs, Origin};
use crate::request::{query_pairs, query_u64, read_json, Params};
use axum::body::Body;
use axum::extract::{RawQuery, State};
use axum::Json;
use runpod_protocol::limits::{MAX_RUNSYNC_WAIT_MS, MIN_RUNSYNC_WAIT_MS};
use runpod_protocol::{
    Health, JobRequest, JobStatus, PurgeResponse, RunResponse, StatusResponse, StreamResponse,
};
use std::time::Duration;

/// Parses a request body and queues it.
async fn submit(jobs: &Jobs, body: Body, origin: Origin) -> Result<String, ApiError> {
    let cfg = jobs.cfg();
    let limit = match origin {
        Origin::Run => cfg.max_run_bytes,
        Origin::RunSync => cfg.max_runsync_bytes,
    };
    let (req, bytes): (JobRequest, usize) = read_json(body, limit, cfg.body_timeout).await?;
    jobs.submit(req, bytes, origin).await
}

/// `POST /run`: queue a job, answer `{"id", "status": "IN_QUEUE"}` at once.
pub(crate) async fn run(State(jobs): State<Jobs>, body: Body) -> Result<Json<RunResponse>, ApiError> {
    let id = submit(&jobs, body, Origin::Run).await?;
    Ok(Json(RunResponse { id, status: JobStatus::InQueue }))
}

/// `POST /runsync?wait=ms`: queue a job and wait for it to end, else answer its current status.
pub(crate) async fn runsync(
    State(jobs): State<Jobs>,
    RawQuery(q): RawQuery,
    body: Body,
) -> Result<Json<StatusResponse>, ApiError> {
    let wait = match query_u64(&query_pairs(q.as_deref()), "wait")? {
        None => jobs.cfg().runsync_wait,
        Some(ms) if (MIN_RUNSYNC_WAIT_MS..=MAX_RUNSYNC_WAIT_MS).contains(&ms) => Duration::from_millis(ms),
        Some(ms) => {
            return Err(ApiError::BadRequest(format!(
                "query parameter 'wait' must be between {MIN_RUNSYNC_WAIT_MS} and {MAX_RUNSYNC_WAIT_MS} ms, got {ms}"
            )))
        }
    };
    let id = submit(&jobs, body, Origin::RunSync).await?;
    Ok(Json(jobs.wait_final(&id, deadline(wait)).await?))
}

/// `GET /status/{id}?ttl=ms`: where the job stands; `ttl` sets how long its result is kept.
pub(crate) async fn status(
    State(jobs): State<Jobs>,
    Params((_, id)): Params<(String, String)>,
    RawQuery(q): RawQuery,
) -> Result<Json<StatusResponse>, ApiError> {
    let ttl = query_u64(&query_pairs(q.as_deref()), "ttl")?.map(Duration::from_millis);
    Ok(Json(jobs.status(&id, ttl).await?))
}

/// `GET /stream/{id}`: the chunks streamed since the previous call, each once and in order.
/// When there is none yet and the job runs, waits up to `stream_wait` for one.
pub(crate) async fn stream(
    State(jobs): State<Jobs>,
    Params((_, id)): Params<(String, String)>,
) -> Result<Json<StreamResponse>, ApiError> {
    Ok(Json(jobs.read_stream(&id).await?))
}

/// `POST /cancel/{id}`: a queued job leaves the queue; a running one is announced on `job-stop`.
pub(crate) async fn cancel(
    State(jobs): State<Jobs>,
    Params((_, id)): Params<(String, String)>,
) -> Result<Json<StatusResponse>, ApiError> {
    Ok(Json(jobs.cancel(&id).await?))
}

/// `POST /retry/{id}`: re-queue a `FAILED` or `TIMED_OUT` job under the same id.
pub(crate) async fn retry(
    State(jobs): State<Jobs>,
    Params((_, id)): Params<(String, String)>,
) -> Result<Json<RunResponse>, ApiError> {
    let status = jobs.retry(&id).await?;
    Ok(Json(RunResponse { id, status }))
}

/// `POST /purge-queue`: drop every queued job (they end `CANCELLED`).
pub(crate) async fn purge(State(jobs): State<Jobs>) -> Result<Json<PurgeResponse>, ApiError> {
    let removed = jobs.purge().await?;
    Ok(Json(PurgeResponse { removed, status: "completed".into() }))
}

/// `GET /health`: job and worker counters.
pub(crate) async fn health(State(jobs): State<Jobs>) -> Json<Health> {
    Json(jobs.health())
}

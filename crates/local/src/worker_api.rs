//! The worker API: `job-take` (+ batch), `job-stop`, `job-done`, `job-stream`, `ping`. Each
//! handler parses the request, calls the job service and shapes its answer.

use crate::error::ApiError;
use crate::jobs::Jobs;
use crate::request::{query_pairs, query_u64, read_json, Params};
use axum::body::Body;
use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use runpod_protocol::{JobDone, JobsToStop, StreamPost};

/// Largest `batch_size` honoured by `job-take-batch`.
const MAX_BATCH: u64 = 1000;

/// `GET job-take/{worker}`: one job as a JSON object, or `204` after `take_wait`.
pub(crate) async fn take(
    State(jobs): State<Jobs>,
    Params((_, worker)): Params<(String, String)>,
) -> Response {
    match jobs.take(&worker, 1).await {
        Ok(mut taken) if !taken.is_empty() => Json(taken.swap_remove(0)).into_response(),
        Ok(_) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => e.into_response(),
    }
}

/// `GET job-take-batch/{worker}?batch_size=N`: up to N jobs as a JSON array, or `204`.
pub(crate) async fn take_batch(
    State(jobs): State<Jobs>,
    Params((_, worker)): Params<(String, String)>,
    RawQuery(q): RawQuery,
) -> Response {
    let n = match query_u64(&query_pairs(q.as_deref()), "batch_size") {
        Ok(n) => n.unwrap_or(1).clamp(1, MAX_BATCH) as usize,
        Err(e) => return e.into_response(),
    };
    match jobs.take(&worker, n).await {
        Ok(taken) if !taken.is_empty() => Json(taken).into_response(),
        Ok(_) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => e.into_response(),
    }
}

/// `GET job-stop/{worker}`: `{"jobsToStop": [...]}` once a running job of this worker is
/// cancelled or times out, or `204` after `take_wait`.
pub(crate) async fn stop(
    State(jobs): State<Jobs>,
    Params((_, worker)): Params<(String, String)>,
) -> Response {
    let stops = jobs.stops(&worker).await;
    if stops.is_empty() {
        return StatusCode::NO_CONTENT.into_response();
    }
    Json(JobsToStop { jobs_to_stop: stops }).into_response()
}

/// `POST job-done/{worker}/{job}`: a progress update (`"status": "IN_PROGRESS"`) or the final
/// result. `409` when the job is not running on this worker (then nothing is applied).
pub(crate) async fn done(
    State(jobs): State<Jobs>,
    Params((_, worker, job)): Params<(String, String, String)>,
    body: Body,
) -> Result<StatusCode, ApiError> {
    let cfg = jobs.cfg();
    let (done, bytes): (JobDone, usize) = read_json(body, cfg.max_result_bytes, cfg.body_timeout).await?;
    jobs.done(&worker, &job, done, bytes).await?;
    Ok(StatusCode::OK)
}

/// `POST job-stream/{worker}/{job}`: one partial output, `{"output": ...}`.
pub(crate) async fn stream(
    State(jobs): State<Jobs>,
    Params((_, worker, job)): Params<(String, String, String)>,
    body: Body,
) -> Result<StatusCode, ApiError> {
    let cfg = jobs.cfg();
    let (post, bytes): (StreamPost, usize) =
        read_json(body, cfg.max_stream_chunk_bytes, cfg.body_timeout).await?;
    jobs.stream_chunk(&worker, &job, post.output, bytes).await?;
    Ok(StatusCode::OK)
}

/// `GET ping/{worker}?job_id=..&runpod_version=..` (or `status=unhealthy&check=..&reason=..`).
pub(crate) async fn ping(
    State(jobs): State<Jobs>,
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
    jobs.ping(&worker, &running, unhealthy);
    StatusCode::OK
}

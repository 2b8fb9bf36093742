//! One ordered sender per job: progress, stream chunks and the final result leave in the
//! order the handler produced them, so nothing arrives after the result.

use crate::queue::backoff::Backoff;
use crate::queue::held_jobs::HeldJobs;
use crate::queue::worker_api::{Api, ApiError};
use crate::sink::StreamError;
use runpod_protocol::{JobDone, StreamPost};
use serde_json::Value;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

/// Something a job sends to the endpoint.
pub(crate) enum Post {
    /// A progress update (best effort: a few tries).
    Progress(Value),
    /// A streamed chunk, acknowledged once delivered or given up.
    Chunk(Value, oneshot::Sender<Result<(), StreamError>>),
    /// The final result; retried for a long time.
    Done { body: JobDone, is_stream: bool },
    /// The job ends without a result (stopped by the platform).
    End,
}

/// How hard the sender tries.
#[derive(Debug, Clone)]
pub(crate) struct RetryPolicy {
    /// Attempts for one progress update.
    pub(crate) progress_attempts: u32,
    /// How long to keep retrying one stream chunk.
    pub(crate) chunk_retry_for: Duration,
    /// How long to keep retrying the final result.
    pub(crate) result_retry_for: Duration,
    /// First delay between tries.
    pub(crate) base_delay: Duration,
    /// Longest delay between tries.
    pub(crate) max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            progress_attempts: 3,
            chunk_retry_for: Duration::from_secs(60),
            result_retry_for: Duration::from_secs(600),
            base_delay: Duration::from_millis(200),
            max_delay: Duration::from_secs(15),
        }
    }
}

/// Where posts go: the worker API, tried as hard as `policy` says.
#[derive(Clone)]
pub(crate) struct Sink {
    pub(crate) api: Api,
    pub(crate) policy: RetryPolicy,
}

/// Delivers `rx` in order until the final result (or `End`); then the job leaves `held`.
/// `cancelled` fires when the job is over early: queued progress and chunks are dropped.
pub(crate) async fn deliver(
    sink: Sink,
    job_id: String,
    mut rx: mpsc::UnboundedReceiver<Post>,
    cancelled: CancellationToken,
    held: HeldJobs,
    span: tracing::Span,
) {
    async move {
        while let Some(post) = rx.recv().await {
            match post {
                Post::Progress(v) => {
                    if !cancelled.is_cancelled() {
                        send_progress(&sink, &job_id, v).await;
                    }
                }
                Post::Chunk(v, ack) => {
                    let r = if cancelled.is_cancelled() {
                        Err(StreamError::Closed)
                    } else {
                        send_chunk(&sink, &job_id, v).await
                    };
                    let _ = ack.send(r);
                }
                Post::Done { body, is_stream } => {
                    send_result(&sink, &job_id, body, is_stream).await;
                    break;
                }
                Post::End => break,
            }
        }
        held.remove(&job_id);
    }
    .instrument(span)
    .await
}

async fn send_progress(sink: &Sink, job_id: &str, v: Value) {
    let Sink { api, policy } = sink;
    let body = JobDone::progress(v);
    let mut backoff = Backoff::new(policy.base_delay, policy.max_delay);
    for attempt in 1..=policy.progress_attempts.max(1) {
        match api.post_done(job_id, &body, false).await {
            Ok(()) => return,
            Err(e) if e.retryable() && attempt < policy.progress_attempts => {
                tracing::debug!("progress post failed (try {attempt}): {e}");
                tokio::time::sleep(backoff.next_delay()).await;
            }
            Err(e) => return tracing::warn!("progress update dropped: {e}"),
        }
    }
}

async fn send_chunk(sink: &Sink, job_id: &str, v: Value) -> Result<(), StreamError> {
    let Sink { api, policy } = sink;
    let body = StreamPost { output: v };
    retry(policy, policy.chunk_retry_for, || api.post_stream(job_id, &body))
        .await
        .map_err(|e| StreamError::Delivery(e.to_string()))
}

async fn send_result(sink: &Sink, job_id: &str, body: JobDone, is_stream: bool) {
    let Sink { api, policy } = sink;
    let started = Instant::now();
    match retry(policy, policy.result_retry_for, || api.post_done(job_id, &body, is_stream)).await {
        Ok(()) => tracing::debug!(elapsed_ms = started.elapsed().as_millis() as u64, "result delivered"),
        Err(e) if matches!(e.status, Some(404 | 409 | 410)) => {
            tracing::warn!("the endpoint no longer holds this job (cancelled, timed out or re-queued): {e}")
        }
        Err(e) if matches!(e.status, Some(400 | 413 | 422)) && body.error.is_none() => {
            // The endpoint refused the output itself (too large, malformed): tell it why,
            // so the job fails visibly instead of hanging.
            tracing::error!("the endpoint rejected the result: {e}; reporting the job as failed");
            let failed =
                JobDone { error: Some(format!("the endpoint rejected the job's result: {e}")), ..body };
            if let Err(e) =
                retry(policy, policy.result_retry_for, || api.post_done(job_id, &failed, is_stream)).await
            {
                tracing::error!("result LOST: the failure report was not accepted either: {e}");
            }
        }
        Err(e) => {
            tracing::error!("result LOST after {:.0} s of retries: {e}", started.elapsed().as_secs_f64())
        }
    }
}

/// Calls `f` until it succeeds, fails for good, or `budget` has passed.
async fn retry<F, Fut>(policy: &RetryPolicy, budget: Duration, mut f: F) -> Result<(), ApiError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<(), ApiError>>,
{
    let deadline = Instant::now() + budget;
    let mut backoff = Backoff::new(policy.base_delay, policy.max_delay);
    let mut attempt = 0u32;
    loop {
        attempt += 1;
        match f().await {
            Ok(()) => return Ok(()),
            Err(e) if e.retryable() => {
                let delay = backoff.next_delay();
                if Instant::now() + delay > deadline {
                    return Err(e);
                }
                tracing::warn!("post failed (try {attempt}), retrying in {} ms: {e}", delay.as_millis());
                tokio::time::sleep(delay).await;
            }
            Err(e) => return Err(e),
        }
    }
}

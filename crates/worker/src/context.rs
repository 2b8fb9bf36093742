//! [`JobContext`]: what a running job can do besides returning its output.

use crate::scope::WorkerScope;
use crate::sink::{JobSink, StreamError};
use runpod_protocol::S3Config;
use serde::Serialize;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use tokio_util::sync::CancellationToken;

/// Why a job's cancellation token fired.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum CancelReason {
    /// The platform asked to stop it (client `/cancel`, or its own timeout) on `job-stop`.
    Stopped,
    /// It ran past its `policy.executionTimeout`.
    TimedOut,
    /// The worker is shutting down and the grace period ran out.
    Shutdown,
}

/// The running job's handle to the runtime: progress, streaming, cancellation, its span.
///
/// Cheap to clone; clones may move into spawned tasks and blocking threads.
#[derive(Clone)]
pub struct JobContext {
    inner: Arc<Inner>,
}

struct Inner {
    id: String,
    worker_id: String,
    sink: Arc<dyn JobSink>,
    token: CancellationToken,
    reason: OnceLock<CancelReason>,
    streamed: AtomicBool,
    max_chunk_bytes: usize,
    s3_config: Option<S3Config>,
    span: tracing::Span,
    scope: WorkerScope,
}

impl std::fmt::Debug for JobContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JobContext").field("job_id", &self.inner.id).finish_non_exhaustive()
    }
}

impl JobContext {
    #[allow(clippy::too_many_arguments, reason = "one constructor, called from two places")]
    #[allow(clippy::too_many_arguments, reason = "one constructor, called by each mode")]
    pub(crate) fn new(
        id: String,
        worker_id: String,
        sink: Arc<dyn JobSink>,
        token: CancellationToken,
        max_chunk_bytes: usize,
        s3_config: Option<S3Config>,
        span: tracing::Span,
        scope: WorkerScope,
    ) -> JobContext {
        JobContext {
            inner: Arc::new(Inner {
                id,
                worker_id,
                sink,
                token,
                reason: OnceLock::new(),
                streamed: AtomicBool::new(false),
                max_chunk_bytes,
                s3_config,
                span,
                scope,
            }),
        }
    }

    /// The job id.
    pub fn job_id(&self) -> &str {
        &self.inner.id
    }

    /// This worker's id (`RUNPOD_POD_ID`).
    pub fn worker_id(&self) -> &str {
        &self.inner.worker_id
    }

    /// Reports progress: the job's `/status` shows `value` as its `output` while it runs.
    ///
    /// Never blocks: the update is queued and sent by the job's one sender task, in order,
    /// and always before the final result. A value that does not serialize is logged and
    /// dropped.
    pub fn progress(&self, value: impl Serialize) {
        match serde_json::to_value(value) {
            Ok(v) => self.inner.sink.progress(v, &self.inner.span),
            Err(e) => tracing::warn!(parent: &self.inner.span, "progress value is not JSON: {e}"),
        }
    }

    /// Streams one partial output (`/stream/{id}` returns the chunks in order). Waits until
    /// the endpoint has accepted it, so a slow consumer slows the handler instead of
    /// piling up memory.
    pub async fn stream(&self, chunk: impl Serialize) -> Result<(), StreamError> {
        let value = serde_json::to_value(chunk).map_err(|e| StreamError::Serialize(e.to_string()))?;
        let size = serde_json::to_vec(&value).map(|v| v.len()).unwrap_or(0);
        if size > self.inner.max_chunk_bytes {
            return Err(StreamError::TooLarge { size, limit: self.inner.max_chunk_bytes });
        }
        if self.is_cancelled() {
            return Err(StreamError::Closed);
        }
        self.inner.streamed.store(true, Ordering::SeqCst);
        self.inner.sink.chunk(value, &self.inner.span).await
    }

    /// A token that fires when the job is cancelled by the client, times out, or is cut
    /// short by a worker shutdown. Pass it into blocking code and check it between steps.
    pub fn cancellation_token(&self) -> CancellationToken {
        self.inner.token.clone()
    }

    /// Completes when the job is cancelled (see [`JobContext::cancellation_token`]).
    pub async fn cancelled(&self) {
        self.inner.token.cancelled().await
    }

    /// True once the job is cancelled.
    pub fn is_cancelled(&self) -> bool {
        self.inner.token.is_cancelled()
    }

    /// Why the job was cancelled, once it is.
    pub fn cancel_reason(&self) -> Option<CancelReason> {
        if self.is_cancelled() {
            Some(*self.inner.reason.get().unwrap_or(&CancelReason::Shutdown))
        } else {
            None
        }
    }

    /// The job's tracing span (carries `job_id`); use it for work on other threads:
    /// `let _g = ctx.span().enter();`.
    pub fn span(&self) -> &tracing::Span {
        &self.inner.span
    }

    /// The job's own bucket (`s3Config`, keys redacted in `Debug`), if the client sent one.
    ///
    /// With the `s3` feature, `ctx.s3()` builds a ready client from it (falling back to the
    /// `BUCKET_*` environment); without it, this is the raw configuration for your own client.
    pub fn s3_config(&self) -> Option<&S3Config> {
        self.inner.s3_config.as_ref()
    }

    /// What the worker's jobs share.
    #[cfg_attr(not(feature = "s3"), allow(dead_code, reason = "only storage reads the scope"))]
    pub(crate) fn scope(&self) -> &WorkerScope {
        &self.inner.scope
    }

    /// Cancels the job for `reason` (the first reason given wins).
    pub(crate) fn cancel(&self, reason: CancelReason) {
        let _ = self.inner.reason.set(reason);
        self.inner.token.cancel();
    }

    /// Marks the job as a streaming one before its first chunk (a [`stream_fn`](crate::stream_fn)
    /// handler), so that its result has `isStream=true` even when it fails before any chunk,
    /// as the Python SDK posts a generator's result.
    pub(crate) fn mark_streaming(&self) {
        self.inner.streamed.store(true, Ordering::SeqCst);
    }

    /// True when the handler streamed at least one chunk, or is a streaming handler (the result
    /// then has `isStream=true`).
    pub(crate) fn streamed(&self) -> bool {
        self.inner.streamed.load(Ordering::SeqCst)
    }
}

//! Where a running job's progress updates and stream chunks go: the [`JobSink`] each mode hands
//! the job's [`JobContext`](crate::JobContext) (the queue's ordered sender, a load-balancing
//! request's answer, a local run's record), and the [`StreamError`] a chunk can meet.

use futures::future::BoxFuture;
use serde_json::Value;

/// A partial output could not be streamed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StreamError {
    /// The chunk is larger than the platform accepts.
    #[error("stream chunk is {size} bytes, over the {limit}-byte limit per chunk")]
    TooLarge {
        /// Its size as JSON.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// The chunk does not serialize to JSON.
    #[error("stream chunk is not serializable to JSON: {0}")]
    Serialize(String),
    /// The endpoint did not accept it after retries.
    #[error("stream chunk was not delivered: {0}")]
    Delivery(String),
    /// The job is over (cancelled or already finished).
    #[error("the job is no longer running")]
    Closed,
}

/// Takes what a running job sends besides its result.
pub(crate) trait JobSink: Send + Sync + 'static {
    /// A progress update. Never blocks; a sink may drop it (the job is over, the update is
    /// best effort).
    fn progress(&self, value: Value, span: &tracing::Span);

    /// A stream chunk; completes once it is delivered, or with why not.
    fn chunk(&self, value: Value, span: &tracing::Span) -> BoxFuture<'static, Result<(), StreamError>>;
}

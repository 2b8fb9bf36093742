//! What a job sent, kept in memory instead of posted: the progress updates and stream chunks
//! of a local test job (`--test-input`, [`Worker::run_test_job`](crate::Worker::run_test_job))
//! or of a test's `JobContext`.

use crate::sink::{JobSink, StreamError};
use futures::future::BoxFuture;
use serde_json::Value;
use std::sync::{Mutex, PoisonError};

/// The progress updates and stream chunks of one job, in the order they were sent.
#[derive(Debug, Default)]
pub(crate) struct Recorder(Mutex<Sent>);

/// What a [`Recorder`] holds.
#[derive(Debug, Default, Clone)]
pub(crate) struct Sent {
    pub(crate) progress: Vec<Value>,
    pub(crate) chunks: Vec<Value>,
}

/// Keeps each update and chunk (and logs it, as a local run shows it); a chunk is accepted at
/// once.
impl JobSink for Recorder {
    fn progress(&self, value: Value, span: &tracing::Span) {
        tracing::info!(parent: span, "progress: {value}");
        self.0.lock().unwrap_or_else(PoisonError::into_inner).progress.push(value);
    }

    fn chunk(&self, value: Value, span: &tracing::Span) -> BoxFuture<'static, Result<(), StreamError>> {
        tracing::info!(parent: span, "stream chunk: {value}");
        self.0.lock().unwrap_or_else(PoisonError::into_inner).chunks.push(value);
        Box::pin(std::future::ready(Ok(())))
    }
}

impl Recorder {
    /// What was sent so far.
    pub(crate) fn sent(&self) -> Sent {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }
}

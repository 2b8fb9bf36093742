//! Streaming handlers: return a `Stream` of chunks instead of one value.

use crate::{Failure, Handler, Job, JobContext, StreamError};
use futures::{Stream, StreamExt};
use serde::{de::DeserializeOwned, Serialize};
use serde_json::Value;
use std::fmt::{self, Display};
use std::marker::PhantomData;

/// A [`Handler`] whose function returns a stream of chunks, made by [`stream_fn`].
///
/// Each chunk is posted to job-stream in order (`/stream/{id}` returns them); the job's
/// final output is the list of all chunks with [`StreamFn::aggregate`], else `[]` (the
/// Python SDK's `return_aggregate_stream`). A chunk that is an `Err` ends the stream and
/// fails the job with that error.
pub struct StreamFn<F, I, C, E> {
    f: F,
    aggregate: bool,
    _types: PhantomData<fn(I) -> (C, E)>,
}

impl<F, I, C, E> fmt::Debug for StreamFn<F, I, C, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StreamFn").field("aggregate", &self.aggregate).finish_non_exhaustive()
    }
}

/// Turns `Fn(Job<I>, JobContext) -> impl Stream<Item = Result<C, E>>` into a [`Handler`].
///
/// ```
/// use runpod_worker::{stream_fn, Job, JobContext};
/// use futures::stream;
///
/// let words = stream_fn(|job: Job<String>, _ctx: JobContext| {
///     let words: Vec<Result<String, std::convert::Infallible>> =
///         job.input.split(' ').map(|w| Ok(w.to_owned())).collect();
///     stream::iter(words)
/// })
/// .aggregate(true);
/// # let _ = words;
/// ```
pub fn stream_fn<F, S, I, C, E>(f: F) -> StreamFn<F, I, C, E>
where
    F: Fn(Job<I>, JobContext) -> S + Send + Sync + 'static,
    S: Stream<Item = Result<C, E>> + Send,
    I: DeserializeOwned + Send + 'static,
    C: Serialize + Send + 'static,
    E: Into<Failure> + Send + 'static,
{
    StreamFn { f, aggregate: false, _types: PhantomData }
}

impl<F, I, C, E> StreamFn<F, I, C, E> {
    /// Makes the final output the list of all chunks (`return_aggregate_stream`).
    #[must_use]
    pub fn aggregate(mut self, yes: bool) -> Self {
        self.aggregate = yes;
        self
    }
}

/// Why a streaming handler failed: its own error, or a chunk that could not be streamed.
#[derive(Debug)]
#[non_exhaustive]
pub enum StreamFnError<E> {
    /// The stream yielded an error.
    Handler(E),
    /// A chunk was too large or was not delivered.
    Stream(StreamError),
}

impl<E: Display> Display for StreamFnError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StreamFnError::Handler(e) => e.fmt(f),
            StreamFnError::Stream(e) => e.fmt(f),
        }
    }
}

/// The stream's own error as it converts; a chunk that could not be streamed as
/// `error_type: "StreamError"`.
impl<E: Into<Failure>> From<StreamFnError<E>> for Failure {
    fn from(e: StreamFnError<E>) -> Failure {
        match e {
            StreamFnError::Handler(e) => e.into(),
            StreamFnError::Stream(e) => e.into(),
        }
    }
}

#[async_trait::async_trait]
impl<F, S, I, C, E> Handler for StreamFn<F, I, C, E>
where
    F: Fn(Job<I>, JobContext) -> S + Send + Sync + 'static,
    S: Stream<Item = Result<C, E>> + Send,
    I: DeserializeOwned + Send + 'static,
    C: Serialize + Send + 'static,
    E: Into<Failure> + Send + 'static,
{
    type Input = I;
    type Output = Vec<Value>;
    type Error = StreamFnError<E>;

    async fn handle(&self, job: Job<I>, ctx: JobContext) -> Result<Vec<Value>, StreamFnError<E>> {
        ctx.mark_streaming();
        let stream = (self.f)(job, ctx.clone());
        futures::pin_mut!(stream);
        let mut all = Vec::new();
        while let Some(item) = stream.next().await {
            let chunk = item.map_err(StreamFnError::Handler)?;
            let value = serde_json::to_value(chunk)
                .map_err(|e| StreamFnError::Stream(StreamError::Serialize(e.to_string())))?;
            ctx.stream(&value).await.map_err(StreamFnError::Stream)?;
            if self.aggregate {
                all.push(value);
            }
        }
        Ok(all)
    }
}

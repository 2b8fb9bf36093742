//! The [`Handler`] trait and [`handler_fn`], which turns an async closure into one.

use crate::{Failure, Job, JobContext};
use serde::{de::DeserializeOwned, Serialize};
use std::future::Future;
use std::marker::PhantomData;

/// What a worker does with one job: typed input in, typed output (or an error) out.
///
/// One instance serves every job, concurrently, so load models in the constructor (before
/// the worker takes its first job) and keep per-job state in the future.
///
/// CPU-bound work belongs in [`tokio::task::spawn_blocking`] (checking
/// [`JobContext::is_cancelled`] between steps); even a handler that blocks its thread does
/// not stop the heartbeat or the job loop, which run elsewhere.
#[async_trait::async_trait]
pub trait Handler: Send + Sync + 'static {
    /// The job's `input`, decoded from JSON; a mismatch fails the job, naming the field.
    type Input: DeserializeOwned + Send + 'static;
    /// The job's `output`, encoded as JSON. An object with an `error` key fails the job, and a
    /// `refresh_worker: true` key asks for a fresh worker, as in the Python SDK.
    type Output: Serialize + Send + 'static;
    /// A failure: converted into a [`Failure`] (its `error_type`, `error_message` and
    /// traceback), which the job's `error` reports. `String`, `&str`, boxed errors and
    /// (feature `anyhow`) `anyhow::Error` convert already; for your own error type, implement
    /// `From<YourError> for Failure` and name each variant (see [`Failure`]).
    type Error: Into<Failure> + Send + 'static;

    /// Runs one job.
    async fn handle(&self, job: Job<Self::Input>, ctx: JobContext) -> Result<Self::Output, Self::Error>;
}

/// A [`Handler`] made from an async function or closure by [`handler_fn`].
pub struct HandlerFn<F, I, O, E> {
    f: F,
    _types: PhantomData<fn(I) -> (O, E)>,
}

impl<F, I, O, E> std::fmt::Debug for HandlerFn<F, I, O, E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HandlerFn").finish_non_exhaustive()
    }
}

/// Turns `async fn(Job<I>, JobContext) -> Result<O, E>` into a [`Handler`].
///
/// ```
/// use runpod_worker::{handler_fn, Job, JobContext};
///
/// async fn double(job: Job<u64>, _ctx: JobContext) -> Result<u64, std::convert::Infallible> {
///     Ok(job.input * 2)
/// }
/// let _handler = handler_fn(double);
/// ```
pub fn handler_fn<F, Fut, I, O, E>(f: F) -> HandlerFn<F, I, O, E>
where
    F: Fn(Job<I>, JobContext) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<O, E>> + Send,
    I: DeserializeOwned + Send + 'static,
    O: Serialize + Send + 'static,
    E: Into<Failure> + Send + 'static,
{
    HandlerFn { f, _types: PhantomData }
}

#[async_trait::async_trait]
impl<F, Fut, I, O, E> Handler for HandlerFn<F, I, O, E>
where
    F: Fn(Job<I>, JobContext) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<O, E>> + Send,
    I: DeserializeOwned + Send + 'static,
    O: Serialize + Send + 'static,
    E: Into<Failure> + Send + 'static,
{
    type Input = I;
    type Output = O;
    type Error = E;

    async fn handle(&self, job: Job<I>, ctx: JobContext) -> Result<O, E> {
        (self.f)(job, ctx).await
    }
}

#[async_trait::async_trait]
impl<H: Handler> Handler for std::sync::Arc<H> {
    type Input = H::Input;
    type Output = H::Output;
    type Error = H::Error;

    async fn handle(&self, job: Job<H::Input>, ctx: JobContext) -> Result<H::Output, H::Error> {
        (**self).handle(job, ctx).await
    }
}

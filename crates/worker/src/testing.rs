//! (feature `testing`) Testing handlers: a [`JobContext`] that records what the handler sends,
//! for unit tests that call a handler directly, and a real local endpoint with a worker taking
//! jobs from it over HTTP, in the test's process, for end-to-end tests.
//!
//! ```
//! use runpod_worker::testing::TestContext;
//! use runpod_worker::{Job, JobContext};
//!
//! async fn count(job: Job<Vec<String>>, ctx: JobContext) -> Result<usize, String> {
//!     for (i, word) in job.input.iter().enumerate() {
//!         ctx.progress(format!("{i}: {word}"));
//!         ctx.stream(word).await.map_err(|e| e.to_string())?;
//!     }
//!     Ok(job.input.len())
//! }
//!
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! let (ctx, sent) = TestContext::new();
//! let n = count(Job::new("t1", vec!["a".into(), "b".into()]), ctx).await.unwrap();
//! assert_eq!(n, 2);
//! assert_eq!(sent.progress(), ["0: a", "1: b"]);
//! assert_eq!(sent.chunks(), ["a", "b"]);
//! # });
//! ```
//!
//! End to end, with any HTTP client (here the `reqwest` the runtime uses; `runpod-client` works
//! as well):
//!
//! ```
//! use runpod_worker::testing::{LocalWorker, API_KEY};
//! use runpod_worker::{handler_fn, Job, JobContext, Worker};
//!
//! async fn shout(job: Job<String>, _ctx: JobContext) -> Result<String, String> {
//!     Ok(job.input.to_uppercase())
//! }
//!
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! let local = LocalWorker::start(Worker::new(handler_fn(shout))).await?;
//! let answer: serde_json::Value = reqwest::Client::new()
//!     .post(format!("{}/runsync", local.endpoint().endpoint_url()))
//!     .bearer_auth(API_KEY)
//!     .json(&serde_json::json!({"input": "hi"}))
//!     .send()
//!     .await
//!     .unwrap()
//!     .json()
//!     .await
//!     .unwrap();
//! assert_eq!((&answer["status"], &answer["output"]), (&"COMPLETED".into(), &"HI".into()));
//! local.stop().await?;
//! # Ok::<(), runpod_worker::WorkerError>(())
//! # }).unwrap();
//! ```

use crate::context::CancelReason;
use crate::local::record::Recorder;
use crate::scope::WorkerScope;
use crate::{Config, Handler, Job, JobContext, Worker, WorkerError};
use runpod_protocol::limits::MAX_STREAM_CHUNK_BYTES;
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub use runpod_local::{LocalEndpoint, LocalEndpointBuilder};

/// The API key of the endpoint [`LocalWorker::start`] binds.
pub const API_KEY: &str = "test-key";

/// The worker id [`RunningWorker::spawn`] gives the worker (`workerId` in `/status`).
pub const WORKER_ID: &str = "w1";

/// How long [`RunningWorker::stop`] waits for the worker to end.
const STOP_TIMEOUT: Duration = Duration::from_secs(60);

/// What a test's [`JobContext`] was sent: made with the context by [`TestContext::new`].
///
/// Progress updates and stream chunks are kept in order (stream chunks are accepted at once,
/// within the platform's size limit); [`TestContext::cancel`] cancels the job as a client's
/// `/cancel` would.
#[derive(Debug, Clone)]
pub struct TestContext {
    ctx: JobContext,
    recorder: Arc<Recorder>,
}

impl TestContext {
    /// A context for a job `local_test` with no bucket, and what records its sends.
    pub fn new() -> (JobContext, TestContext) {
        TestContext::make("local_test".to_owned(), None)
    }

    /// A context for `job`: its id, and its `s3Config` for [`JobContext::s3_config`].
    pub fn for_job<T>(job: &Job<T>) -> (JobContext, TestContext) {
        TestContext::make(job.id.clone(), job.s3_config.clone())
    }

    fn make(id: String, s3_config: Option<runpod_protocol::S3Config>) -> (JobContext, TestContext) {
        let recorder = Arc::new(Recorder::default());
        let span = tracing::info_span!("job", job_id = %id);
        let ctx = JobContext::new(
            id,
            "local".to_owned(),
            recorder.clone(),
            CancellationToken::new(),
            MAX_STREAM_CHUNK_BYTES,
            s3_config,
            span,
            WorkerScope::from_env(),
        );
        (ctx.clone(), TestContext { ctx, recorder })
    }

    /// The progress updates sent so far, in order.
    pub fn progress(&self) -> Vec<Value> {
        self.recorder.sent().progress
    }

    /// The stream chunks sent so far, in order.
    pub fn chunks(&self) -> Vec<Value> {
        self.recorder.sent().chunks
    }

    /// Cancels the job, as a client's `/cancel` does: its token fires, `cancel_reason()` is
    /// [`CancelReason::Stopped`], and further stream chunks fail with `StreamError::Closed`.
    pub fn cancel(&self) {
        self.ctx.cancel(CancelReason::Stopped);
    }
}

/// A worker running in the background (a task on the test's runtime), taking jobs from an
/// endpoint until [`RunningWorker::stop`]; dropping it stops the worker too.
#[derive(Debug)]
pub struct RunningWorker {
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<Result<(), WorkerError>>,
}

impl RunningWorker {
    /// Starts `worker` as worker [`WORKER_ID`] of `endpoint` (its `worker_env`). Call it
    /// inside a Tokio runtime.
    pub fn spawn<H: Handler>(
        endpoint: &LocalEndpoint,
        worker: Worker<H>,
    ) -> Result<RunningWorker, WorkerError> {
        let config = Config::from_vars(endpoint.worker_env(WORKER_ID))?;
        Ok(RunningWorker::spawn_with(config, worker))
    }

    /// Starts `worker` with `config` (for instance an endpoint's `worker_env` with its URLs
    /// pointed through a proxy). Call it inside a Tokio runtime.
    pub fn spawn_with<H: Handler>(config: Config, worker: Worker<H>) -> RunningWorker {
        let (stop, stopped) = oneshot::channel::<()>();
        let worker = worker.config(config).shutdown_on(async move {
            let _ = stopped.await;
        });
        RunningWorker { stop: Some(stop), task: tokio::spawn(worker.run()) }
    }

    /// True once the worker has ended (by itself, e.g. with `refresh_after_job`).
    pub fn is_finished(&self) -> bool {
        self.task.is_finished()
    }

    /// Shuts the worker down gracefully (as SIGTERM would) and returns how it ended; an
    /// `Io` error when it did not end within a minute or its task panicked.
    pub async fn stop(mut self) -> Result<(), WorkerError> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        self.join().await
    }

    /// Waits (up to a minute) for the worker to end by itself, and returns how it ended.
    pub async fn join(self) -> Result<(), WorkerError> {
        let stuck = |what| WorkerError::Io { what, source: std::io::Error::other("test worker") };
        match tokio::time::timeout(STOP_TIMEOUT, self.task).await {
            Ok(Ok(result)) => result,
            Ok(Err(_)) => Err(stuck("the worker's task panicked")),
            Err(_) => Err(stuck("the worker did not end within a minute")),
        }
    }
}

/// A local endpoint (runpod-local on 127.0.0.1, a free port, key [`API_KEY`]) and a worker
/// taking jobs from it over HTTP, both in the test's process: send jobs to
/// [`LocalEndpoint::endpoint_url`] with any client, then [`LocalWorker::stop`].
#[derive(Debug)]
pub struct LocalWorker {
    endpoint: LocalEndpoint,
    worker: RunningWorker,
}

impl LocalWorker {
    /// Binds an endpoint with key [`API_KEY`] and starts `worker` against it. The endpoint
    /// answers a job-take with no job after 2 s (30 s by default): a stopping worker waits for
    /// its open job-take's answer, so [`LocalWorker::stop`] of an idle worker takes up to that.
    pub async fn start<H: Handler>(worker: Worker<H>) -> Result<LocalWorker, WorkerError> {
        let builder = LocalEndpoint::builder().api_key(API_KEY).take_wait(Duration::from_secs(2));
        LocalWorker::start_with(builder, worker).await
    }

    /// Binds the endpoint `builder` describes on 127.0.0.1 (a free port) and starts `worker`
    /// against it.
    pub async fn start_with<H: Handler>(
        builder: LocalEndpointBuilder,
        worker: Worker<H>,
    ) -> Result<LocalWorker, WorkerError> {
        let endpoint = builder
            .bind("127.0.0.1:0")
            .await
            .map_err(|source| WorkerError::Io { what: "cannot bind the local endpoint", source })?;
        let worker = RunningWorker::spawn(&endpoint, worker)?;
        Ok(LocalWorker { endpoint, worker })
    }

    /// The endpoint: [`LocalEndpoint::endpoint_url`] takes the client API.
    pub fn endpoint(&self) -> &LocalEndpoint {
        &self.endpoint
    }

    /// Stops the worker gracefully, then the endpoint; returns how the worker ended.
    pub async fn stop(self) -> Result<(), WorkerError> {
        let LocalWorker { endpoint, worker } = self;
        let result = worker.stop().await;
        endpoint.shutdown().await;
        result
    }
}

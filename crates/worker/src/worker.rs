//! [`Worker`]: the builder, and its entry points ([`start`], [`Worker::run`],
//! [`Worker::run_cli`], [`Worker::run_test_job`]); each mode has its own module.

use crate::config::Config;
use crate::executor::Executor;
use crate::fitness::FitnessCheck;
use crate::outcome::Reporter;
use crate::sender::RetryPolicy;
use crate::{Handler, TestOutcome, WorkerError};
use futures::future::BoxFuture;
use runpod_protocol::limits::MAX_STREAM_CHUNK_BYTES;
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::future::Future;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

type ConcurrencyFn = Box<dyn FnMut(usize) -> usize + Send>;

/// A worker: one handler, the platform's job loop around it.
///
/// ```no_run
/// use runpod_worker::{handler_fn, Job, JobContext, Worker};
/// use std::time::Duration;
///
/// # async fn run() -> Result<(), runpod_worker::WorkerError> {
/// async fn echo(job: Job<String>, _ctx: JobContext) -> Result<String, std::convert::Infallible> {
///     Ok(job.input)
/// }
/// Worker::new(handler_fn(echo))
///     .concurrency(4)
///     .shutdown_grace(Duration::from_secs(20))
///     .run() // reads RUNPOD_* from the environment, stops on SIGTERM/SIGINT
///     .await
/// # }
/// ```
#[must_use]
pub struct Worker<H: Handler> {
    pub(crate) handler: H,
    pub(crate) opts: Options,
    shutdown: Option<BoxFuture<'static, ()>>,
}

// The settings that say how jobs run (not the configuration: it holds the API key).
impl<H: Handler> std::fmt::Debug for Worker<H> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Worker")
            .field("concurrency", &self.opts.concurrency)
            .field("refresh_after_job", &self.opts.refresh_after_job)
            .field("shutdown_grace", &self.opts.shutdown_grace)
            .finish_non_exhaustive()
    }
}

/// The builder's settings.
pub(crate) struct Options {
    pub(crate) concurrency: usize,
    pub(crate) concurrency_fn: Option<ConcurrencyFn>,
    pub(crate) refresh_after_job: bool,
    pub(crate) ping_interval: Option<Duration>,
    pub(crate) shutdown_grace: Duration,
    pub(crate) retry: RetryPolicy,
    handler_threads: Option<usize>,
    max_result_bytes: Option<usize>,
    pub(crate) config: Option<Config>,
    /// Checks run before the first job-take, then the system checks unless turned off.
    pub(crate) fitness: Vec<FitnessCheck>,
    pub(crate) system_checks: bool,
    pub(crate) debugger: bool,
}

impl<H: Handler> Worker<H> {
    /// A worker for `handler`, one job at a time, with the platform's defaults.
    pub fn new(handler: H) -> Worker<H> {
        Worker {
            handler,
            opts: Options {
                concurrency: 1,
                concurrency_fn: None,
                refresh_after_job: false,
                ping_interval: None,
                shutdown_grace: Duration::from_secs(30),
                retry: RetryPolicy::default(),
                handler_threads: None,
                max_result_bytes: None,
                config: None,
                fitness: Vec::new(),
                system_checks: true,
                debugger: false,
            },
            shutdown: None,
        }
    }

    /// Runs up to `n` jobs at once (at least 1).
    pub fn concurrency(mut self, n: usize) -> Self {
        self.opts.concurrency = n.max(1);
        self
    }

    /// Decides the concurrency before each job-take, from the current one (the Python SDK's
    /// `concurrency_modifier`). Lowering it never stops running jobs; it takes fewer.
    pub fn concurrency_fn(mut self, f: impl FnMut(usize) -> usize + Send + 'static) -> Self {
        self.opts.concurrency_fn = Some(Box::new(f));
        self
    }

    /// After one job, report `stopPod: true` and exit cleanly (a fresh worker per job).
    pub fn refresh_after_job(mut self, yes: bool) -> Self {
        self.opts.refresh_after_job = yes;
        self
    }

    /// Overrides `RUNPOD_PING_INTERVAL`.
    pub fn ping_interval(mut self, every: Duration) -> Self {
        self.opts.ping_interval = Some(every);
        self
    }

    /// How long in-flight jobs may run on after SIGTERM/SIGINT (default 30 s); jobs still
    /// running then are cancelled and reported failed. Keep it under the platform's kill delay.
    /// A job-take open at the signal is still answered within it (the endpoint may have handed
    /// over a job already; it is run, not lost), so an idle worker exits when its long poll ends.
    pub fn shutdown_grace(mut self, grace: Duration) -> Self {
        self.opts.shutdown_grace = grace;
        self
    }

    /// How long a final result is retried before it is given up (default 10 min). The job
    /// stays in the heartbeat's job list meanwhile, so the platform does not re-queue it.
    pub fn result_retry_for(mut self, d: Duration) -> Self {
        self.opts.retry.result_retry_for = d;
        self
    }

    /// Threads of the runtime that runs handler futures (default: the CPU count, at least 2).
    pub fn handler_threads(mut self, n: usize) -> Self {
        self.opts.handler_threads = Some(n.max(1));
        self
    }

    /// Overrides the result size limit (default 20 MB for `/runsync` jobs, 10 MB otherwise).
    pub fn max_result_bytes(mut self, n: usize) -> Self {
        self.opts.max_result_bytes = Some(n);
        self
    }

    /// Uses this configuration instead of reading `RUNPOD_*` from the environment.
    pub fn config(mut self, config: Config) -> Self {
        self.opts.config = Some(config);
        self
    }

    /// Adds a fitness check, run once before the first job-take (in the order added, before
    /// the system checks). When one fails the worker reports itself unhealthy and `run`
    /// returns [`WorkerError::Unfit`] (exit status 1 from [`start`]); see [`crate::fitness`].
    pub fn fitness_check<F, Fut, E>(mut self, name: impl Into<String>, check: F) -> Self
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = Result<(), E>> + Send + 'static,
        E: std::fmt::Display,
    {
        self.opts.fitness.push(FitnessCheck::new(name, check));
        self
    }

    /// Adds a ready-made check, e.g. [`fitness::free_disk`](crate::fitness::free_disk).
    pub fn fitness(mut self, check: FitnessCheck) -> Self {
        self.opts.fitness.push(check);
        self
    }

    /// Runs the system checks (free disk, available memory; see [`crate::fitness`]) after the
    /// program's own (default `true`).
    pub fn system_checks(mut self, on: bool) -> Self {
        self.opts.system_checks = on;
        self
    }

    /// Adds per-job timings to each object output under `rp_debugger`, as the Python SDK's
    /// `--rp_debugger` does (also the `--rp_debugger`/`--debugger` flag of [`start`]).
    pub fn debugger(mut self, on: bool) -> Self {
        self.opts.debugger = on;
        self
    }

    /// Shuts down gracefully when `signal` completes, instead of on SIGTERM/SIGINT.
    pub fn shutdown_on(mut self, signal: impl Future<Output = ()> + Send + 'static) -> Self {
        self.shutdown = Some(Box::pin(signal));
        self
    }

    /// Runs the worker until shutdown (or, with `refresh_after_job`, one job): takes jobs,
    /// runs them, delivers their results, then returns `Ok(())`.
    pub async fn run(self) -> Result<(), WorkerError> {
        let config = match self.opts.config.clone() {
            Some(c) => c,
            None => Config::from_env()?,
        };
        self.run_with(config).await
    }

    async fn run_with(self, config: Config) -> Result<(), WorkerError> {
        let Worker { handler, mut opts, shutdown } = self;
        if let Err(failure) = crate::fitness::run_checks(opts.take_fitness_checks()).await {
            crate::worker_api::Api::new(Arc::new(config.clone())).report_unhealthy(&failure).await;
            return Err(WorkerError::Unfit(failure));
        }
        let signal = shutdown.unwrap_or_else(|| Box::pin(crate::shutdown::signal()));
        crate::lifecycle::run_platform(Arc::new(handler), opts, config, signal).await
    }

    /// [`start`] with this worker's settings: reads the process's arguments, runs the mode
    /// they select, and returns the process's exit status (0 after a clean shutdown or a
    /// successful `--test-input` job; 1 on a start-up error, said on stderr, or a failed job).
    pub async fn start(self) -> ExitCode {
        crate::cli::exit_code(self.run_cli(std::env::args().skip(1)).await)
    }

    /// Runs the mode `args` select (the runtime's flags, see [`start`]; the program name left
    /// out) and returns how it ended instead of an exit status.
    pub async fn run_cli(self, args: impl IntoIterator<Item = String>) -> Result<(), WorkerError> {
        crate::cli::run_mode(self, args).await
    }

    /// Runs one job (`{"input": ..., "id"?: ...}`) locally, without an endpoint, as the
    /// platform would (input decoded, output mapped and size-checked, errors reported), and
    /// returns how it ended: its status, its output decoded into `O`, its [`Failure`](crate::Failure), and the
    /// progress updates and stream chunks it sent (also logged).
    ///
    /// `Err` when `job` is not a usable test job, or its output does not decode into `O`.
    ///
    /// ```
    /// use runpod_worker::{handler_fn, Job, JobContext, JobStatus, TestOutcome, Worker};
    ///
    /// async fn double(job: Job<u64>, ctx: JobContext) -> Result<u64, String> {
    ///     ctx.progress("doubling");
    ///     job.input.checked_mul(2).ok_or_else(|| "too large".to_owned())
    /// }
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// let done: TestOutcome<u64> =
    ///     Worker::new(handler_fn(double)).run_test_job(serde_json::json!({"input": 21})).await?;
    /// assert_eq!((done.status, done.output, done.progress), (JobStatus::Completed, Some(42), vec!["doubling".into()]));
    ///
    /// let failed: TestOutcome =
    ///     Worker::new(handler_fn(double)).run_test_job(serde_json::json!({"input": u64::MAX})).await?;
    /// assert_eq!(failed.status, JobStatus::Failed);
    /// assert_eq!(failed.error.unwrap().error_message, "too large");
    /// # Ok::<(), runpod_worker::WorkerError>(())
    /// # }).unwrap();
    /// ```
    pub async fn run_test_job<O: DeserializeOwned>(self, job: Value) -> Result<TestOutcome<O>, WorkerError> {
        crate::test_input::run_test_job(self, job).await
    }
}

/// Runs `handler` as this program's worker and returns the process's exit status: 0 after a
/// clean shutdown or a successful `--test-input` job, 1 on a start-up error or a failed test
/// job. Return it from `main`.
///
/// The flags it reads are [`RUNTIME_FLAGS`](crate::RUNTIME_FLAGS) (`--test-input`,
/// `--serve-api`, ...; other arguments are left to the program). Without a local flag, the
/// worker reads the platform's `RUNPOD_*` environment.
///
/// ```no_run
/// use runpod_worker::{handler_fn, Job, JobContext};
/// use std::process::ExitCode;
///
/// async fn echo(job: Job<serde_json::Value>, _ctx: JobContext) -> Result<serde_json::Value, String> {
///     Ok(job.input)
/// }
///
/// #[tokio::main]
/// async fn main() -> ExitCode {
///     runpod_worker::start(handler_fn(echo)).await
/// }
/// ```
pub async fn start<H: Handler>(handler: H) -> ExitCode {
    Worker::new(handler).start().await
}

impl Options {
    /// The program's checks, then the system checks when on.
    pub(crate) fn take_fitness_checks(&mut self) -> Vec<FitnessCheck> {
        let mut checks = std::mem::take(&mut self.fitness);
        if self.system_checks {
            checks.extend(crate::fitness::system_checks());
        }
        checks
    }

    pub(crate) fn handler_runtime(&self) -> Result<tokio::runtime::Runtime, WorkerError> {
        let threads = self
            .handler_threads
            .unwrap_or_else(|| std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2).max(2));
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .thread_name("runpod-handler")
            .enable_all()
            .build()
            .map_err(|source| WorkerError::Io { what: "cannot start the handler runtime", source })
    }

    pub(crate) fn executor<H: Handler>(
        &self,
        handler: Arc<H>,
        rt: tokio::runtime::Handle,
        config: &Config,
    ) -> Executor<H> {
        Executor {
            handler,
            rt,
            reporter: Reporter {
                hostname: config.hostname.clone().unwrap_or_else(|| "unknown".into()),
                worker_id: config.worker_id.clone(),
            },
            max_result_bytes: self.max_result_bytes,
            max_chunk_bytes: MAX_STREAM_CHUNK_BYTES,
            refresh_after_job: self.refresh_after_job,
            debugger: self.debugger,
            ready_delay_ms: if self.debugger { crate::debugger::process_age_ms() } else { None },
        }
    }
}

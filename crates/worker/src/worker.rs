//! [`Worker`]: the one builder, for every mode, and its entry points ([`start`],
//! [`Worker::start`], [`Worker::run_cli`], [`Worker::run`], [`Worker::run_load_balancing`],
//! [`Worker::run_test_job`]); each mode has its own module (`queue`, `load_balancing`,
//! `local`).

use crate::cli::{self, Mode};
use crate::config::Config;
use crate::fitness::FitnessCheck;
#[cfg(feature = "load-balancing")]
use crate::load_balancing;
use crate::local::serve_api::LocalApi;
use crate::local::test_input;
use crate::options::Options;
use crate::startup::Startup;
use crate::{Handler, TestOutcome, WorkerError};
use futures::future::BoxFuture;
use runpod_protocol::WorkerSchema;
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::fmt::Display;
use std::future::Future;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

/// A worker: one handler, and the runtime around it in the mode the process is started in:
/// queue mode (the platform's job loop), load-balancing mode (an HTTP server the platform's
/// balancer sends requests to), or a local mode (`--test-input`, `--serve-api`). The settings
/// below the constructors are shared by every mode unless they say otherwise; [`Worker::start`]
/// picks the mode from the command line and the environment.
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
    pub(crate) handler: Startup<H>,
    pub(crate) opts: Options,
    pub(crate) shutdown: Option<BoxFuture<'static, ()>>,
    /// Load-balancing mode's own settings (route, extra routes, where to listen).
    #[cfg(feature = "load-balancing")]
    pub(crate) lb: crate::load_balancing::LbOptions,
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

impl<H: Handler> Worker<H> {
    /// A worker for `handler`, one job at a time, with the platform's defaults.
    pub fn new(handler: H) -> Worker<H> {
        Worker::with(Startup::Ready(handler))
    }

    /// A worker whose handler `startup` builds (loads the model), after the fitness checks:
    /// in load-balancing mode the health path answers `204` meanwhile, then `200`; in queue
    /// mode the first job is taken after it. When it fails, the worker ends with
    /// [`WorkerError::Startup`] (exit status 1 from [`Worker::start`]); in load-balancing mode
    /// the health path answers `503` with the reason for the `unfit_linger` first.
    pub fn loading<F, E>(startup: F) -> Worker<H>
    where
        F: Future<Output = Result<H, E>> + Send + 'static,
        E: Display,
    {
        Worker::with(Startup::Loading(Box::pin(async move { startup.await.map_err(|e| e.to_string()) })))
    }

    fn with(handler: Startup<H>) -> Worker<H> {
        Worker {
            handler,
            opts: Options::default(),
            shutdown: None,
            #[cfg(feature = "load-balancing")]
            lb: Default::default(),
        }
    }

    /// Queue mode: runs up to `n` jobs at once (at least 1).
    pub fn concurrency(mut self, n: usize) -> Self {
        self.opts.concurrency = n.max(1);
        self
    }

    /// Queue mode: decides the concurrency before each job-take, from the current one (the Python SDK's
    /// `concurrency_modifier`). Lowering it never stops running jobs; it takes fewer.
    pub fn concurrency_fn(mut self, f: impl FnMut(usize) -> usize + Send + 'static) -> Self {
        self.opts.concurrency_fn = Some(Box::new(f));
        self
    }

    /// Queue mode: after one job, report `stopPod: true` and exit cleanly (a fresh worker per job).
    pub fn refresh_after_job(mut self, yes: bool) -> Self {
        self.opts.refresh_after_job = yes;
        self
    }

    /// Queue mode: overrides `RUNPOD_PING_INTERVAL`.
    pub fn ping_interval(mut self, every: Duration) -> Self {
        self.opts.ping_interval = Some(every);
        self
    }

    /// How long in-flight jobs (requests, in load-balancing mode) may run on after
    /// SIGTERM/SIGINT (default 30 s); jobs still running then are cancelled and reported failed.
    /// Keep it under the platform's kill delay. In queue mode a job-take open at the signal has
    /// 1 s of it to answer (a job it brings is run), then is dropped, so an idle worker exits
    /// within about a second.
    pub fn shutdown_grace(mut self, grace: Duration) -> Self {
        self.opts.shutdown_grace = grace;
        self
    }

    /// Queue mode: how long a final result is retried before it is given up (default 10 min). The job
    /// stays in the heartbeat's job list meanwhile, so the platform does not re-queue it.
    pub fn result_retry_for(mut self, d: Duration) -> Self {
        self.opts.result_retry_for = d;
        self
    }

    /// Threads of the runtime that runs handler futures (default: the CPU count, at least 2).
    pub fn handler_threads(mut self, n: usize) -> Self {
        self.opts.handler_threads = Some(n.max(1));
        self
    }

    /// Queue mode: overrides the result size limit (default 20 MB for `/runsync` jobs, 10 MB otherwise).
    pub fn max_result_bytes(mut self, n: usize) -> Self {
        self.opts.max_result_bytes = Some(n);
        self
    }

    /// Queue mode: uses this configuration instead of reading `RUNPOD_*` from the environment.
    pub fn config(mut self, config: Config) -> Self {
        self.opts.config = Some(config);
        self
    }

    /// Adds a fitness check, run once before the first job-take (load-balancing mode: before
    /// the health path answers `200`), in the order added, before the system checks and the
    /// start-up. When one fails the worker reports itself unhealthy (queue mode: to the
    /// platform; load-balancing mode: `503` on the health path) and ends with
    /// [`WorkerError::Unfit`] (exit status 1 from [`start`]); see [`crate::fitness`].
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

    /// Queue and local modes: adds per-job timings to each object output under `rp_debugger`, as the Python SDK's
    /// `--rp_debugger` does (also the `--rp_debugger`/`--debugger` flag of [`start`]).
    pub fn debugger(mut self, on: bool) -> Self {
        self.opts.debugger = on;
        self
    }

    /// The worker's contract: the JSON Schema of its input (and output). `--schema` prints it,
    /// each job's input is checked against it before the decode (a failure names the field, in
    /// the decode's words), and `--serve-api` gives it to the local endpoint (its
    /// `/openapi.json`, its console's form, and a `400` for input that breaks it). With types
    /// that derive `schemars::JsonSchema`, `Worker::schema_from_types` (feature `schema`) builds it.
    pub fn schema(mut self, schema: WorkerSchema) -> Self {
        self.opts.schema = Some(Arc::new(schema));
        self
    }

    /// The schema given by [`Worker::schema`] or `Worker::schema_from_types`: what `--schema`
    /// prints (as [`WorkerSchema::to_document`]).
    pub fn worker_schema(&self) -> Option<&WorkerSchema> {
        self.opts.schema.as_deref()
    }

    /// Shuts down gracefully when `signal` completes, instead of on SIGTERM/SIGINT.
    pub fn shutdown_on(mut self, signal: impl Future<Output = ()> + Send + 'static) -> Self {
        self.shutdown = Some(Box::pin(signal));
        self
    }

    /// Runs the worker in queue mode until shutdown (or, with `refresh_after_job`, one job):
    /// takes jobs, runs them, delivers their results, then returns `Ok(())`.
    pub async fn run(self) -> Result<(), WorkerError> {
        let config = match self.opts.config.clone() {
            Some(c) => c,
            None => Config::from_env()?,
        };
        self.run_with(config).await
    }

    async fn run_with(self, config: Config) -> Result<(), WorkerError> {
        let Worker { handler, mut opts, shutdown, .. } = self;
        if let Err(failure) = crate::fitness::run_checks(opts.take_fitness_checks()).await {
            crate::queue::worker_api::Api::new(Arc::new(config.clone())).report_unhealthy(&failure).await;
            return Err(WorkerError::Unfit(failure));
        }
        let mut signal = shutdown.unwrap_or_else(|| Box::pin(crate::signal::signal()));
        let handler = tokio::select! {
            h = handler.handler() => h?,
            _ = &mut signal => {
                tracing::info!("stopped during start-up");
                return Ok(());
            }
        };
        crate::queue::lifecycle::run_platform(Arc::new(handler), opts, config, signal).await
    }

    /// [`start`] with this worker's settings: reads the process's arguments and environment,
    /// runs the mode they select (see [`start`]), and returns the process's exit status (0 after a clean shutdown or a
    /// successful `--test-input` job; 1 on a start-up error, said on stderr, or a failed job).
    pub async fn start(self) -> ExitCode {
        cli::exit_code(self.run_cli(std::env::args().skip(1)).await)
    }

    /// Runs the mode `args` select (the runtime's flags, see [`start`]; the program name left
    /// out) and returns how it ended instead of an exit status.
    pub async fn run_cli(mut self, args: impl IntoIterator<Item = String>) -> Result<(), WorkerError> {
        let args = cli::parse_args(args)?;
        if args.help {
            println!("{}", cli::RUNTIME_FLAGS);
            return Ok(());
        }
        crate::init_logging(args.log_level.as_deref());
        if !args.ignored.is_empty() {
            tracing::debug!("arguments left to the program: {:?}", args.ignored);
        }
        if let Some(n) = args.concurrency {
            self = self.concurrency(n);
        }
        if args.debugger {
            self = self.debugger(true);
        }
        let mode = cli::select_mode(
            &args,
            self.opts.config.is_some(),
            |k| std::env::var(k).ok(),
            || std::path::Path::new("test_input.json").is_file(),
        );
        match mode {
            Mode::Schema => match &self.opts.schema {
                Some(schema) => {
                    println!("{}", serde_json::to_string_pretty(&schema.to_document()).unwrap_or_default());
                    Ok(())
                }
                None => Err(WorkerError::NoSchema),
            },
            Mode::TestInput => {
                let job = test_input::read_test_input(args.test_input.as_deref().unwrap_or_default())?;
                test_input::print_test_job(self.handler, self.opts, job).await
            }
            Mode::ServeApi => {
                let host = args.host.clone().unwrap_or_else(|| "127.0.0.1".into());
                self.serve_api(&host, args.port.unwrap_or(8000)).await
            }
            Mode::LoadBalancing => self.load_balancing_mode().await,
            Mode::TestInputFile => {
                tracing::info!("no platform environment: running ./test_input.json");
                let job = test_input::read_test_input("@test_input.json")?;
                test_input::print_test_job(self.handler, self.opts, job).await
            }
            Mode::Queue => self.run().await,
        }
    }

    /// `--serve-api`: the local endpoint on `host:port` in-process, this worker taking jobs
    /// from it, until SIGTERM/SIGINT (or the worker's own shutdown signal).
    async fn serve_api(self, host: &str, port: u16) -> Result<(), WorkerError> {
        let local = LocalApi::bind(host, port, self.opts.schema.clone()).await?;
        let result = self.config(local.config()).run().await;
        local.shutdown().await;
        result
    }

    #[cfg(feature = "load-balancing")]
    async fn load_balancing_mode(self) -> Result<(), WorkerError> {
        self.run_load_balancing().await
    }

    /// Load-balancing mode needs the `load-balancing` feature (on by default).
    #[cfg(not(feature = "load-balancing"))]
    async fn load_balancing_mode(self) -> Result<(), WorkerError> {
        Err(WorkerError::Args(
            "load-balancing mode: this binary was built without the `load-balancing` feature of runpod-worker"
                .into(),
        ))
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
        test_input::run_test_job(self.handler, self.opts, job).await
    }
}

#[cfg(feature = "schema")]
impl<H: Handler> Worker<H>
where
    H::Input: schemars::JsonSchema,
    H::Output: schemars::JsonSchema,
{
    /// [`Worker::schema`] from the handler's own types (feature `schema`): the JSON Schemas
    /// that `schemars` derives for `Input` (as serde decodes it: defaults optional, renames
    /// applied) and `Output` (as serde encodes it). Doc comments become descriptions;
    /// `#[schemars(range(min = 1, max = 100))]`, `length(...)` and enums become constraints
    /// that each job's input is checked against.
    ///
    /// ```
    /// use runpod_worker::{handler_fn, Job, JobContext, Worker};
    ///
    /// #[derive(serde::Deserialize, schemars::JsonSchema)]
    /// struct Input {
    ///     /// How many times.
    ///     #[schemars(range(min = 1, max = 100))]
    ///     repeat: u32,
    /// }
    /// async fn count(job: Job<Input>, _ctx: JobContext) -> Result<u32, String> {
    ///     Ok(job.input.repeat)
    /// }
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// let out: runpod_worker::TestOutcome = Worker::new(handler_fn(count))
    ///     .schema_from_types()
    ///     .run_test_job(serde_json::json!({"input": {"repeat": 500}}))
    ///     .await?;
    /// let error = out.error.unwrap().error_message;
    /// assert!(error.contains("invalid input at `input.repeat`"), "{error}");
    /// # Ok::<(), runpod_worker::WorkerError>(())
    /// # }).unwrap();
    /// ```
    pub fn schema_from_types(self) -> Self {
        self.schema(crate::schema::of::<H::Input, H::Output>())
    }
}

/// Runs `handler` as this program's worker and returns the process's exit status: 0 after a
/// clean shutdown or a successful `--test-input` job, 1 on a start-up error or a failed test
/// job. Return it from `main`.
///
/// The flags it reads are [`RUNTIME_FLAGS`](crate::RUNTIME_FLAGS) (`--test-input`,
/// `--serve-api`, `--load-balancing`, ...; other arguments are left to the program). The mode:
///
/// 1. `--test-input` or `--serve-api`: that local mode;
/// 2. load-balancing mode ([`Worker::run_load_balancing`]) with `--load-balancing`, with
///    `LOAD_BALANCING` set to `1`/`true`/`yes`, or, unless `LOAD_BALANCING` says `0`/`false`/`no`,
///    on a load-balancing endpoint: without the queue's `RUNPOD_WEBHOOK_GET_JOB` but with
///    `PORT_HEALTH` or `RUNPOD_ENDPOINT_ID` set;
/// 3. `./test_input.json` run as a test job when the platform's environment is absent;
/// 4. else queue mode ([`Worker::run`]), reading the platform's `RUNPOD_*` environment.
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

/// Load-balancing mode's settings and entry points (feature `load-balancing`).
#[cfg(feature = "load-balancing")]
impl<H: Handler> Worker<H> {
    /// Load-balancing mode: the path the handler is served on as `POST` (default `/run`; see
    /// [`handler_router`](load_balancing::handler_router) for what it answers).
    pub fn route(mut self, path: impl Into<String>) -> Self {
        self.lb.route = path.into();
        self
    }

    /// Load-balancing mode: the program's own routes, served beside the handler's (merged
    /// into one router: a path may be served once).
    pub fn routes(mut self, router: axum::Router) -> Self {
        self.lb.routes = Some(match self.lb.routes.take() {
            Some(r) => r.merge(router),
            None => router,
        });
        self
    }

    /// Load-balancing mode: listens where `config` says instead of reading `PORT`,
    /// `PORT_HEALTH`, `HEALTH_CHECK_PATH` and `LISTEN_HOST` from the environment.
    pub fn load_balancing_config(mut self, config: load_balancing::LbConfig) -> Self {
        self.lb.config = Some(config);
        self
    }

    /// Load-balancing mode: how long the health path answers `503` after a failed fitness
    /// check or start-up, before the worker exits (default 5 s).
    pub fn unfit_linger(mut self, linger: Duration) -> Self {
        self.lb.unfit_linger = linger;
        self
    }

    /// Binds the ports (so that a port 0 can be read back), then serves: see
    /// [`BoundWorker::serve`](load_balancing::BoundWorker::serve).
    pub async fn run_load_balancing(self) -> Result<(), WorkerError> {
        self.bind_load_balancing().await?.serve().await
    }

    /// Binds the load-balancing mode's ports (read from the environment unless
    /// [`Worker::load_balancing_config`] gave them); [`BoundWorker::serve`](load_balancing::BoundWorker::serve) serves them.
    pub async fn bind_load_balancing(self) -> Result<load_balancing::BoundWorker, WorkerError> {
        let Worker { handler, mut opts, shutdown, mut lb, .. } = self;
        lb.schema = opts.schema.clone();
        let config = match lb.config.clone() {
            Some(c) => c,
            None => load_balancing::LbConfig::from_env()?,
        };
        let settings = load_balancing::Settings {
            fitness: opts.take_fitness_checks(),
            shutdown_grace: opts.shutdown_grace,
            unfit_linger: lb.unfit_linger,
            shutdown,
        };
        load_balancing::bind(handler, lb, config, settings).await
    }
}

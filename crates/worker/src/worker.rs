//! [`Worker`]: the builder and the job loop.

use crate::config::Config;
use crate::executor::Executor;
use crate::heartbeat::Heartbeat;
use crate::outcome::Reporter;
use crate::running::RunningJobs;
use crate::sender::{deliver, Post, RetryPolicy, Sink};
use crate::stop::{stop_loop, ActiveJobs};
use crate::transport::{Api, Take};
use crate::{Handler, WorkerError};
use futures::future::BoxFuture;
use runpod_protocol::limits::MAX_STREAM_CHUNK_BYTES;
use runpod_protocol::Job as WireJob;
use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot, Notify};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

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
pub struct Worker<H: Handler> {
    pub(crate) handler: H,
    pub(crate) opts: Options,
    shutdown: Option<BoxFuture<'static, ()>>,
}

/// The builder's settings.
pub(crate) struct Options {
    pub(crate) concurrency: usize,
    concurrency_fn: Option<ConcurrencyFn>,
    pub(crate) refresh_after_job: bool,
    ping_interval: Option<Duration>,
    shutdown_grace: Duration,
    retry: RetryPolicy,
    handler_threads: Option<usize>,
    max_result_bytes: Option<usize>,
    pub(crate) config: Option<Config>,
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
        let Worker { handler, opts, shutdown } = self;
        let signal = shutdown.unwrap_or_else(|| Box::pin(crate::shutdown::signal()));
        run_platform(Arc::new(handler), opts, config, signal).await
    }
}

impl Options {
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
        }
    }
}

/// The platform mode: job loop, stop channel and heartbeat against the worker API.
///
/// The job loop, the senders and their HTTP connections run on one thread of their own
/// (`runpod-io`, a single-threaded runtime), handlers on the handler runtime, the heartbeat on
/// its thread. One thread for all the worker's I/O means no hand-offs between threads inside a
/// job's bookkeeping: against the caller's multi-threaded runtime it cut the worker's context
/// switches per no-op job from 14.7 to 5.2 and its CPU time per job by a quarter (`perf stat`,
/// runpod-bench, concurrency 1). `signal` is polled here, on the caller's runtime; dropping
/// this future shuts the worker down as the signal would.
pub(crate) async fn run_platform<H: Handler>(
    handler: Arc<H>,
    opts: Options,
    config: Config,
    signal: BoxFuture<'static, ()>,
) -> Result<(), WorkerError> {
    let shutdown = CancellationToken::new();
    let _shutdown_on_drop = shutdown.clone().drop_guard();
    let (done_tx, mut done_rx) = oneshot::channel();
    let io_shutdown = shutdown.clone();
    // A caller that logs through a scoped (thread-local) subscriber only keeps it on the I/O
    // thread. With a global one, none is scoped: scoping would slow every log call down.
    let scoped =
        (!tracing::dispatcher::has_been_set()).then(|| tracing::dispatcher::get_default(|d| d.clone()));
    std::thread::Builder::new()
        .name("runpod-io".into())
        .spawn(move || {
            let run = || match tokio::runtime::Builder::new_current_thread().enable_all().build() {
                Ok(rt) => rt.block_on(platform(handler, opts, config, io_shutdown)),
                Err(source) => Err(WorkerError::Io { what: "cannot start the I/O runtime", source }),
            };
            let result = match &scoped {
                Some(dispatch) => tracing::dispatcher::with_default(dispatch, run),
                None => run(),
            };
            let _ = done_tx.send(result);
        })
        .map_err(|source| WorkerError::Io { what: "cannot start the I/O thread", source })?;
    let ended = |r: Result<Result<(), WorkerError>, oneshot::error::RecvError>| {
        r.unwrap_or_else(|_| {
            Err(WorkerError::Io {
                what: "the worker's I/O thread ended abnormally",
                source: std::io::Error::other("panicked"),
            })
        })
    };
    tokio::select! {
        _ = signal => shutdown.cancel(),
        r = &mut done_rx => return ended(r),
    }
    ended(done_rx.await)
}

/// The platform mode on the I/O thread, until `shutdown` (or one job, with refresh).
async fn platform<H: Handler>(
    handler: Arc<H>,
    mut opts: Options,
    config: Config,
    shutdown: CancellationToken,
) -> Result<(), WorkerError> {
    let opts = &mut opts;
    {
        let config = Arc::new(config);
        let rt = opts.handler_runtime()?;
        let api = Api::new(config.clone());
        let running = RunningJobs::default();
        let interval = opts.ping_interval.unwrap_or(config.ping_interval);
        let heartbeat = Heartbeat::start(config.clone(), interval, running.clone())
            .map_err(|source| WorkerError::Io { what: "cannot start the heartbeat thread", source })?;

        let shared = Arc::new(Shared {
            exec: opts.executor(handler, rt.handle().clone(), &config),
            sink: Sink::Http(api.clone(), opts.retry.clone()),
            running: running.clone(),
            active: ActiveJobs::default(),
            in_flight: AtomicUsize::new(0),
            slot_freed: Notify::new(),
            handlers: TaskTracker::new(),
            senders: TaskTracker::new(),
            hard_stop: CancellationToken::new(),
        });

        let stop_end = CancellationToken::new();
        let stop_task = config
            .job_stop_url()
            .map(|url| tokio::spawn(stop_loop(api.clone(), url, shared.active.clone(), stop_end.clone())));

        tracing::info!(
            worker_id = %config.worker_id,
            concurrency = opts.concurrency,
            "worker started: taking jobs"
        );
        take_loop(&shared, &api, opts, &shutdown).await;

        // Drain: in-flight jobs get the grace period, then are cancelled and reported.
        shared.handlers.close();
        if !shared.handlers.is_empty() {
            tracing::info!(jobs = shared.handlers.len(), "waiting for in-flight jobs");
        }
        let grace = if shutdown.is_cancelled() { Some(opts.shutdown_grace) } else { None };
        let drained = match grace {
            Some(g) => tokio::time::timeout(g, shared.handlers.wait()).await.is_ok(),
            None => {
                shared.handlers.wait().await;
                true
            }
        };
        if !drained {
            tracing::warn!("grace period over: cancelling {} job(s)", shared.handlers.len());
            shared.hard_stop.cancel();
            shared.handlers.wait().await;
        }
        stop_end.cancel();
        // Results: delivered (or given up by their own retry budget) before the heartbeat stops.
        shared.senders.close();
        // After a signal the platform's kill is near; otherwise (refresh) use the full budget.
        let budget = match grace {
            Some(g) => opts.retry.result_retry_for.min(g.max(Duration::from_secs(10))),
            None => opts.retry.result_retry_for,
        };
        if tokio::time::timeout(budget, shared.senders.wait()).await.is_err() {
            tracing::error!(
                "results of job(s) {} not delivered before exit",
                running.csv().unwrap_or_default()
            );
        }
        if let Some(t) = stop_task {
            let _ = t.await;
        }
        heartbeat.stop();
        rt.shutdown_background();
        tracing::info!("worker stopped");
        Ok(())
    }
}

/// State shared by the job loop and the job tasks.
pub(crate) struct Shared<H> {
    pub(crate) exec: Executor<H>,
    pub(crate) sink: Sink,
    pub(crate) running: RunningJobs,
    pub(crate) active: ActiveJobs,
    pub(crate) in_flight: AtomicUsize,
    pub(crate) slot_freed: Notify,
    pub(crate) handlers: TaskTracker,
    pub(crate) senders: TaskTracker,
    pub(crate) hard_stop: CancellationToken,
}

impl<H: Handler> Shared<H> {
    /// Starts a job: its sender and its handler task. The slot frees when the handler ends;
    /// the job leaves the heartbeat's list when its result is accepted.
    pub(crate) fn spawn_job(self: &Arc<Self>, wire: WireJob) {
        let id = wire.id.clone();
        self.running.insert(&id);
        self.in_flight.fetch_add(1, Ordering::SeqCst);
        let (ctx, rx) = self.exec.prepare(&wire, &self.hard_stop);
        self.active.insert(&ctx);
        self.senders.spawn(deliver(
            self.sink.clone(),
            id.clone(),
            rx,
            ctx.cancellation_token(),
            self.running.clone(),
            ctx.span().clone(),
        ));
        let me = self.clone();
        self.handlers.spawn(async move {
            let post = me.exec.run(wire, ctx.clone()).await;
            ctx.finish(post);
            me.active.remove(&id);
            me.in_flight.fetch_sub(1, Ordering::SeqCst);
            me.slot_freed.notify_one();
        });
    }

    /// Fails a job that arrived malformed (it has an id but no usable input).
    pub(crate) fn fail_malformed(&self, id: String, why: String) {
        tracing::error!(job_id = %id, "{why}");
        self.running.insert(&id);
        let (tx, rx) = mpsc::unbounded_channel();
        let body = self.exec.reporter.failure("MalformedJob", &why, "");
        let _ = tx.send(Post::Done { body, is_stream: false });
        let span = tracing::info_span!("job", job_id = %id);
        self.senders.spawn(deliver(
            self.sink.clone(),
            id,
            rx,
            CancellationToken::new(),
            self.running.clone(),
            span,
        ));
    }
}

/// Takes jobs while there is room, until shutdown (or one job, with `refresh_after_job`).
async fn take_loop<H: Handler>(
    shared: &Arc<Shared<H>>,
    api: &Api,
    w: &mut Options,
    shutdown: &CancellationToken,
) {
    let mut errors = crate::backoff::Backoff::new(Duration::from_millis(100), Duration::from_secs(30));
    let mut empties = crate::backoff::Backoff::new(Duration::from_millis(50), Duration::from_secs(2));
    let mut limit = w.concurrency;
    loop {
        if shutdown.is_cancelled() {
            return;
        }
        if let Some(f) = w.concurrency_fn.as_mut() {
            limit = f(limit).max(1);
        }
        let busy = shared.in_flight.load(Ordering::SeqCst);
        if busy >= limit {
            tokio::select! {
                _ = shared.slot_freed.notified() => {}
                _ = shutdown.cancelled() => return,
            }
            continue;
        }
        let started = Instant::now();
        let res = tokio::select! {
            r = api.take(limit - busy, !shared.running.is_empty()) => r,
            _ = shutdown.cancelled() => return,
        };
        let pause = match res {
            Ok(Take::Jobs { jobs, bad }) => {
                errors.reset();
                empties.reset();
                for (id, why) in bad {
                    shared.fail_malformed(id, why);
                }
                let got = !jobs.is_empty();
                for job in jobs {
                    shared.spawn_job(job);
                }
                if got && w.refresh_after_job {
                    tracing::info!("refresh_after_job: no more jobs for this worker");
                    return;
                }
                None
            }
            // A long poll that returned at once must not turn into a busy loop.
            Ok(Take::Empty) if started.elapsed() < Duration::from_secs(1) => Some(empties.next_delay()),
            Ok(Take::Empty) => {
                empties.reset();
                None
            }
            Ok(Take::TooMany) => {
                tracing::debug!("job-take: 429, backing off");
                // At least 5 s, spread over 5 to 6.25 s so that throttled workers do not all
                // come back at the same instant.
                let spread =
                    Duration::from_secs(5).mul_f64(rand::Rng::random_range(&mut rand::rng(), 1.0..1.25));
                Some(spread.max(errors.next_delay()))
            }
            Err(e) => {
                let d = errors.next_delay();
                tracing::warn!("job-take failed: {e}; retrying in {} ms", d.as_millis());
                Some(d)
            }
        };
        if let Some(d) = pause {
            tokio::select! {
                _ = tokio::time::sleep(d) => {}
                _ = shutdown.cancelled() => return,
            }
        }
    }
}

//! The platform mode's lifecycle: the I/O thread and the handler runtime, the heartbeat and
//! the stop channel started around the job loop, and the drain after it (grace period,
//! results delivered, everything stopped in order).

use crate::config::Config;
use crate::options::Options;
use crate::queue::heartbeat::Heartbeat;
use crate::queue::held_jobs::HeldJobs;
use crate::queue::job_loop::{take_loop, Shared};
use crate::queue::sender::{RetryPolicy, Sink};
use crate::queue::stop::{stop_loop, RunningHandlers};
use crate::queue::worker_api::Api;
use crate::{Handler, WorkerError};
use futures::future::BoxFuture;
use std::sync::atomic::AtomicUsize;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{oneshot, Notify};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

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
    let config = Arc::new(config);
    let rt = opts.handler_runtime()?;
    let api = Api::new(config.clone());
    let held = HeldJobs::default();
    let interval = opts.ping_interval.unwrap_or(config.ping_interval);
    let heartbeat = Heartbeat::start(config.clone(), interval, held.clone())
        .map_err(|source| WorkerError::Io { what: "cannot start the heartbeat thread", source })?;

    let shared = Arc::new(Shared {
        exec: opts.executor(handler, rt.handle().clone(), &config),
        sink: Sink {
            api: api.clone(),
            policy: RetryPolicy { result_retry_for: opts.result_retry_for, ..RetryPolicy::default() },
        },
        held: held.clone(),
        running: RunningHandlers::default(),
        in_flight: AtomicUsize::new(0),
        slot_freed: Notify::new(),
        handlers: TaskTracker::new(),
        senders: TaskTracker::new(),
        hard_stop: CancellationToken::new(),
    });

    let stop_end = CancellationToken::new();
    let stop_task = config
        .job_stop_url()
        .map(|url| tokio::spawn(stop_loop(api.clone(), url, shared.running.clone(), stop_end.clone())));

    tracing::info!(
        worker_id = %config.worker_id,
        concurrency = opts.concurrency,
        "worker started: taking jobs"
    );
    let stopped = take_loop(&shared, &api, opts, &shutdown).await;

    // Drain: in-flight jobs get the grace period, then are cancelled and reported.
    shared.handlers.close();
    if !shared.handlers.is_empty() {
        tracing::info!(jobs = shared.handlers.len(), "waiting for in-flight jobs");
    }
    // The grace period counts from the signal (an answer to a job-take in flight was awaited
    // since), or from now when the signal came during a refresh job.
    let stopped = stopped.or_else(|| shutdown.is_cancelled().then(Instant::now));
    let grace = stopped.map(|_| opts.shutdown_grace);
    let drained = match stopped {
        Some(at) => {
            let end = tokio::time::Instant::from_std(at + opts.shutdown_grace);
            tokio::time::timeout_at(end, shared.handlers.wait()).await.is_ok()
        }
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
        Some(g) => opts.result_retry_for.min(g.max(Duration::from_secs(10))),
        None => opts.result_retry_for,
    };
    if tokio::time::timeout(budget, shared.senders.wait()).await.is_err() {
        tracing::error!("results of {} not delivered before exit", held.summary());
    }
    if let Some(t) = stop_task {
        let _ = t.await;
    }
    heartbeat.stop();
    rt.shutdown_background();
    tracing::info!("worker stopped");
    Ok(())
}

//! The job loop: takes jobs from the worker API while there is a free slot, and starts each
//! one (its handler task and its ordered sender); malformed jobs are failed, not lost.

use crate::options::Options;
use crate::queue::backoff::Backoff;
use crate::queue::executor::Executor;
use crate::queue::held_jobs::HeldJobs;
use crate::queue::posts::PostQueue;
use crate::queue::sender::{deliver, Post, Sink};
use crate::queue::stop::RunningHandlers;
use crate::queue::worker_api::{Api, Take};
use crate::{Failure, Handler};
use runpod_protocol::Job as WireJob;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, Notify};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// State shared by the job loop and the job tasks.
pub(crate) struct Shared<H> {
    pub(crate) exec: Executor<H>,
    pub(crate) sink: Sink,
    /// Taken and not yet answered (the heartbeat lists them).
    pub(crate) held: HeldJobs,
    /// Jobs whose handler runs now (a stop signal can cancel them).
    pub(crate) running: RunningHandlers,
    /// How many handlers run now (the slots in use).
    pub(crate) in_flight: AtomicUsize,
    pub(crate) slot_freed: Notify,
    pub(crate) handlers: TaskTracker,
    pub(crate) senders: TaskTracker,
    /// Fires when the grace period is over: every running handler is cancelled.
    pub(crate) hard_stop: CancellationToken,
}

impl<H: Handler> Shared<H> {
    /// Starts a job: its sender and its handler task. The slot frees when the handler ends;
    /// the job leaves the heartbeat's list when its result is accepted.
    pub(crate) fn spawn_job(self: &Arc<Self>, wire: WireJob) {
        let id = wire.id.clone();
        self.held.insert(&id);
        self.in_flight.fetch_add(1, Ordering::SeqCst);
        let (tx, rx) = mpsc::unbounded_channel();
        let ctx = self.exec.context(&wire, &self.hard_stop, Arc::new(PostQueue(tx.clone())));
        self.running.insert(&ctx);
        self.senders.spawn(deliver(
            self.sink.clone(),
            id.clone(),
            rx,
            ctx.cancellation_token(),
            self.held.clone(),
            ctx.span().clone(),
        ));
        let me = self.clone();
        self.handlers.spawn(async move {
            let post = me.exec.run(wire, ctx.clone()).await;
            // Queued behind every progress update and chunk.
            let _ = tx.send(post);
            me.running.remove(&id);
            me.in_flight.fetch_sub(1, Ordering::SeqCst);
            me.slot_freed.notify_one();
        });
    }

    /// Starts the jobs of a job-take answer and fails its malformed ones; true when it
    /// brought a job to run.
    fn start(self: &Arc<Self>, jobs: Vec<WireJob>, bad: Vec<(String, String)>) -> bool {
        for (id, why) in bad {
            self.fail_malformed(id, why);
        }
        let got = !jobs.is_empty();
        for job in jobs {
            self.spawn_job(job);
        }
        got
    }

    /// Fails a job that arrived malformed (it has an id but no usable input).
    pub(crate) fn fail_malformed(&self, id: String, why: String) {
        tracing::error!(job_id = %id, "{why}");
        self.held.insert(&id);
        let (tx, rx) = mpsc::unbounded_channel();
        let body = self.exec.reporter.failure(Failure::new("MalformedJob", why));
        let _ = tx.send(Post::Done { body, is_stream: false });
        let span = tracing::info_span!("job", job_id = %id);
        self.senders.spawn(deliver(
            self.sink.clone(),
            id,
            rx,
            CancellationToken::new(),
            self.held.clone(),
            span,
        ));
    }
}

/// How long a job-take open at the shutdown signal may still answer before it is dropped.
///
/// Long enough for an answer already on its way (the endpoint handed jobs over just before the
/// signal); short enough that an idle worker exits within about a second, whereas an endpoint
/// holds an idle take for up to 30 s (runpod-local's default; the platform's hold is not
/// documented). See docs/worker-api.md, "Shutting down".
pub(crate) const TAKE_ANSWER_ON_SHUTDOWN: Duration = Duration::from_secs(1);

/// Takes jobs while there is room, until shutdown (or one job, with `refresh_after_job`).
/// Returns when shutdown was seen (`None` after the refresh job).
///
/// A job-take in flight when shutdown comes gets [`TAKE_ANSWER_ON_SHUTDOWN`] (at most the
/// grace period) to answer: the jobs it brings are run and delivered like any other. Past
/// that it is dropped, which closes its connection: runpod-local then takes no job for it
/// (a job an endpoint hands over at that very instant stays on this departed worker until the
/// endpoint's ping grace re-queues it; the worker API has no call to give a job back).
pub(crate) async fn take_loop<H: Handler>(
    shared: &Arc<Shared<H>>,
    api: &Api,
    w: &mut Options,
    shutdown: &CancellationToken,
) -> Option<Instant> {
    let mut errors = Backoff::new(Duration::from_millis(100), Duration::from_secs(30));
    let mut empties = Backoff::new(Duration::from_millis(50), Duration::from_secs(2));
    let mut limit = w.concurrency;
    loop {
        if shutdown.is_cancelled() {
            return Some(Instant::now());
        }
        if let Some(f) = w.concurrency_fn.as_mut() {
            limit = f(limit).max(1);
        }
        let busy = shared.in_flight.load(Ordering::SeqCst);
        if busy >= limit {
            tokio::select! {
                _ = shared.slot_freed.notified() => {}
                _ = shutdown.cancelled() => return Some(Instant::now()),
            }
            continue;
        }
        let started = Instant::now();
        let take = api.take(limit - busy, !shared.held.is_empty());
        tokio::pin!(take);
        let res = tokio::select! {
            r = &mut take => r,
            _ = shutdown.cancelled() => {
                let stopped = Instant::now();
                let wait = TAKE_ANSWER_ON_SHUTDOWN.min(w.shutdown_grace);
                tracing::debug!("shutdown: the job-take in flight has {wait:?} to answer");
                match tokio::time::timeout(wait, take).await {
                    Ok(Ok(Take::Jobs { jobs, bad })) => {
                        tracing::info!(jobs = jobs.len() + bad.len(), "job-take answered after the shutdown signal: running its jobs");
                        shared.start(jobs, bad);
                    }
                    Ok(_) => {}
                    Err(_) => tracing::debug!("shutdown: the idle job-take was dropped"),
                }
                return Some(stopped);
            }
        };
        let pause = match res {
            Ok(Take::Jobs { jobs, bad }) => {
                errors.reset();
                empties.reset();
                if shared.start(jobs, bad) && w.refresh_after_job {
                    tracing::info!("refresh_after_job: no more jobs for this worker");
                    return None;
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
                _ = shutdown.cancelled() => return Some(Instant::now()),
            }
        }
    }
}

//! Runs one queue job: the handler call ([`invoke`]) on the handler runtime (isolated from the
//! job loop), raced against the job's cancellation and `executionTimeout`, and what happened
//! (output, error, panic, cancel, timeout) turned into the job's final post: the output mapped
//! as the Python SDK maps it, an oversized one offloaded to the bucket, the debugger's timings
//! added, the size checked.

use crate::context::CancelReason;
use crate::debugger::{self, Timings};
use crate::invoke::{invoke, Answer};
use crate::options::Options;
use crate::queue::outcome::{enforce_size, map_output, result_limit, Reporter};
use crate::queue::sender::Post;
use crate::scope::WorkerScope;
use crate::sink::JobSink;
use crate::Config;
use crate::{Failure, Handler, Job, JobContext};
use runpod_protocol::limits::MAX_STREAM_CHUNK_BYTES;
use runpod_protocol::{Job as WireJob, JobDone};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

/// How long past `policy.executionTimeout` the worker waits for the platform's own stop
/// signal before it cancels the job itself (so the platform can report `TIMED_OUT`).
const TIMEOUT_SLACK: Duration = Duration::from_secs(2);

/// Everything needed to run jobs of one handler.
pub(crate) struct Executor<H> {
    pub(crate) handler: Arc<H>,
    /// The runtime handler futures run on (not the job loop's).
    pub(crate) rt: tokio::runtime::Handle,
    pub(crate) reporter: Reporter,
    pub(crate) max_result_bytes: Option<usize>,
    pub(crate) max_chunk_bytes: usize,
    pub(crate) refresh_after_job: bool,
    /// `--rp_debugger`: per-job timings in the output (see `debugger`), with what the reports
    /// say of the process.
    pub(crate) debugger: Option<debugger::Process>,
    /// What the jobs share (read from the environment when the worker starts).
    pub(crate) scope: WorkerScope,
    /// The worker's schema: each input is checked against it before the decode.
    pub(crate) schema: Option<Arc<runpod_protocol::WorkerSchema>>,
}

impl<H: Handler> Executor<H> {
    /// The context of a new job whose progress and chunks go to `sink`; it is cancelled with
    /// `parent`.
    pub(crate) fn context(
        &self,
        wire: &WireJob,
        parent: &CancellationToken,
        sink: Arc<dyn JobSink>,
    ) -> JobContext {
        JobContext::new(
            wire.id.clone(),
            self.reporter.worker_id.clone(),
            sink,
            parent.child_token(),
            self.max_chunk_bytes,
            wire.s3_config.clone(),
            match wire.extra.get("batchId").and_then(|b| b.as_str()) {
                Some(batch) => tracing::info_span!("job", job_id = %wire.id, batch_id = %batch),
                None => tracing::info_span!("job", job_id = %wire.id),
            },
            self.scope.clone(),
        )
    }

    /// Runs the job to its end and returns its final post (`Done`, or `End` when stopped).
    pub(crate) async fn run(&self, wire: WireJob, ctx: JobContext) -> Post {
        let span = ctx.span().clone();
        let started = Instant::now();
        let timeout = wire.policy.as_ref().and_then(|p| p.execution_timeout).map(Duration::from_millis);
        let job_id = wire.id.clone();
        tracing::debug!(parent: &span, "job started");
        let timings = self.debugger.is_some().then(Timings::default);
        let call =
            invoke(self.handler.clone(), Job::undecoded(wire), ctx.clone(), self.schema.clone(), timings);
        let mut handle = self.rt.spawn(call.instrument(span.clone()));

        let deadline = async {
            match timeout {
                Some(t) => tokio::time::sleep(t + TIMEOUT_SLACK).await,
                None => std::future::pending().await,
            }
        };
        let ended = tokio::select! {
            biased;
            r = &mut handle => Some(r.unwrap_or_else(|e| (Answer::Failed(Failure::new(
                "JoinError",
                format!("the handler task ended abnormally: {e}"),
            )), None))),
            _ = ctx.cancelled() => None,
            _ = deadline => {
                ctx.cancel(CancelReason::TimedOut);
                None
            }
        };
        let elapsed_ms = started.elapsed().as_millis() as u64;

        #[cfg_attr(not(feature = "s3"), allow(unused_mut, reason = "only the output's upload is timed here"))]
        let (mut done, mut timings) = match ended {
            Some((Answer::Output(value), timings)) => (map_output(value), timings),
            Some((Answer::BadInput(e), timings)) => {
                tracing::warn!(parent: &span, "{e}");
                (self.reporter.failure(e.into()), timings)
            }
            Some((Answer::Failed(f), timings)) => {
                tracing::error!(parent: &span, kind = %f.error_type, "job failed: {}", f.error_message);
                (self.reporter.failure(f), timings)
            }
            None => {
                handle.abort();
                match self.interrupted(&ctx, timeout, elapsed_ms) {
                    Some(done) => (done, None),
                    None => return Post::End,
                }
            }
        };
        if self.refresh_after_job {
            done.stop_pod = Some(true);
        }
        let limit = result_limit(&job_id, self.max_result_bytes);
        #[cfg(feature = "s3")]
        let mut done = match crate::storage::offload_output(done, limit, &ctx, &self.rt, &mut timings).await {
            Ok(d) => d,
            Err(message) => self.reporter.failure(Failure::new("OutputTooLarge", message)),
        };
        if let (Some(t), Some(process)) = (&timings, &self.debugger) {
            debugger::attach(done.output.as_mut(), t.report(process), &span);
        }
        let done = enforce_size(done, limit, &self.reporter);
        if done.error.is_none() {
            tracing::info!(parent: &span, elapsed_ms, "job completed");
        }
        Post::Done { body: done, is_stream: ctx.streamed() }
    }

    /// The result of a job whose handler did not end by itself: a failure for a timeout or a
    /// shutdown, `None` when the platform stopped it (it takes no result).
    fn interrupted(&self, ctx: &JobContext, timeout: Option<Duration>, elapsed_ms: u64) -> Option<JobDone> {
        let span = ctx.span();
        match ctx.cancel_reason() {
            Some(CancelReason::Stopped) => {
                tracing::info!(parent: span, elapsed_ms, "job stopped by the platform (cancelled or timed out)");
                None
            }
            Some(CancelReason::TimedOut) => {
                let ms = timeout.unwrap_or_default().as_millis();
                let msg =
                    format!("the job ran past its policy.executionTimeout of {ms} ms and was cancelled");
                tracing::error!(parent: span, "{msg}");
                Some(self.reporter.failure(Failure::new("TimedOut", msg)))
            }
            _ => {
                let msg = "the worker shut down before the job finished (grace period over); retry the job";
                tracing::error!(parent: span, "{msg}");
                Some(self.reporter.failure(Failure::new("WorkerShutdown", msg)))
            }
        }
    }
}

impl Options {
    /// The executor of `handler`'s jobs with these settings, its futures run on `rt`.
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
            debugger: self.debugger.then(debugger::Process::read),
            scope: WorkerScope::from_env(),
            schema: self.schema.clone(),
        }
    }
}

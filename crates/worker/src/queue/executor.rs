//! Runs one job: decodes its input, runs the handler on the handler runtime (isolated from
//! the job loop), and turns what happened (output, error, panic, cancel, timeout) into the
//! job's final post.

use crate::context::{CancelReason, Outbox};
use crate::debugger::{self, Timings};
use crate::queue::outcome::{enforce_size, map_output, result_limit, Reporter};
use crate::queue::sender::Post;
use crate::{Failure, Handler, Job, JobContext};
use futures::FutureExt;
use runpod_protocol::Job as WireJob;
use serde_json::Value;
use std::panic::AssertUnwindSafe;
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
    /// `--rp_debugger`: per-job timings in the output (see `debugger`).
    pub(crate) debugger: bool,
    /// How long the process had run when the worker started (for the debugger's report).
    pub(crate) ready_delay_ms: Option<f64>,
}

impl<H: Handler> Executor<H> {
    /// The context of a new job whose progress and chunks go to `outbox`; it is cancelled
    /// with `parent`.
    pub(crate) fn context(&self, wire: &WireJob, parent: &CancellationToken, outbox: Outbox) -> JobContext {
        JobContext::new(
            wire.id.clone(),
            self.reporter.worker_id.clone(),
            outbox,
            parent.child_token(),
            self.max_chunk_bytes,
            wire.s3_config.clone(),
            match wire.extra.get("batchId").and_then(|b| b.as_str()) {
                Some(batch) => tracing::info_span!("job", job_id = %wire.id, batch_id = %batch),
                None => tracing::info_span!("job", job_id = %wire.id),
            },
        )
    }

    /// Runs the job to its end and returns its final post (`Done`, or `End` when stopped).
    pub(crate) async fn run(&self, wire: WireJob, ctx: JobContext) -> Post {
        let span = ctx.span().clone();
        let started = Instant::now();
        let timeout = wire.policy.as_ref().and_then(|p| p.execution_timeout).map(Duration::from_millis);
        let job_id = wire.id.clone();
        tracing::debug!(parent: &span, "job started");
        let mut timings = self.debugger.then(Timings::default);

        let decoding = debugger::start(&mut timings, "decode_input");
        let decoded = Job::<H::Input>::from_wire(wire);
        debugger::stop(&mut timings, decoding);
        let job = match decoded {
            Ok(job) => job,
            Err(e) => {
                tracing::warn!(parent: &span, "{e}");
                let done = self.reporter.failure(e.into());
                return Post::Done { body: done, is_stream: false };
            }
        };

        let handler = self.handler.clone();
        let hctx = ctx.clone();
        let task = async move {
            match AssertUnwindSafe(handler.handle(job, hctx)).catch_unwind().await {
                Ok(Ok(out)) => serde_json::to_value(out).map_err(|e| {
                    Failure::new(
                        "SerializeError",
                        format!("the handler's output does not serialize to JSON: {e}"),
                    )
                }),
                Ok(Err(e)) => Err(e.into()),
                Err(panic) => {
                    Err(Failure::new("Panic", format!("the handler panicked: {}", panic_message(&*panic))))
                }
            }
        };
        let handling = debugger::start(&mut timings, "handler");
        let mut handle = self.rt.spawn(task.instrument(span.clone()));

        let deadline = async {
            match timeout {
                Some(t) => tokio::time::sleep(t + TIMEOUT_SLACK).await,
                None => std::future::pending().await,
            }
        };
        let result: Option<Result<Value, Failure>> = tokio::select! {
            biased;
            r = &mut handle => Some(r.unwrap_or_else(|e| Err(Failure::new(
                "JoinError",
                format!("the handler task ended abnormally: {e}"),
            )))),
            _ = ctx.cancelled() => None,
            _ = deadline => {
                ctx.cancel(CancelReason::TimedOut);
                None
            }
        };
        let elapsed_ms = started.elapsed().as_millis() as u64;
        debugger::stop(&mut timings, handling);

        let mut done = match result {
            Some(Ok(value)) => map_output(value),
            Some(Err(f)) => {
                tracing::error!(parent: &span, kind = %f.error_type, "job failed: {}", f.error_message);
                self.reporter.failure(f)
            }
            None => {
                handle.abort();
                match ctx.cancel_reason() {
                    Some(CancelReason::Stopped) => {
                        tracing::info!(parent: &span, elapsed_ms, "job stopped by the platform (cancelled or timed out)");
                        return Post::End;
                    }
                    Some(CancelReason::TimedOut) => {
                        let ms = timeout.unwrap_or_default().as_millis();
                        let msg = format!(
                            "the job ran past its policy.executionTimeout of {ms} ms and was cancelled"
                        );
                        tracing::error!(parent: &span, "{msg}");
                        self.reporter.failure(Failure::new("TimedOut", msg))
                    }
                    _ => {
                        let msg =
                            "the worker shut down before the job finished (grace period over); retry the job";
                        tracing::error!(parent: &span, "{msg}");
                        self.reporter.failure(Failure::new("WorkerShutdown", msg))
                    }
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
        if let Some(t) = &timings {
            debugger::attach(done.output.as_mut(), t.report(self.ready_delay_ms), &span);
        }
        let done = enforce_size(done, limit, &self.reporter);
        if done.error.is_none() {
            tracing::info!(parent: &span, elapsed_ms, "job completed");
        }
        Post::Done { body: done, is_stream: ctx.streamed() }
    }
}

/// The text of a panic's payload (a `&str` or `String` message).
pub(crate) fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "(a non-string panic payload)".to_owned()
    }
}

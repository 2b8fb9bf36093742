//! One handler call, made the same way by every mode: the input decoded into the handler's
//! type, the handler run with its panics caught, its output serialized to JSON and its error
//! turned into a [`Failure`] fit to report (no backtrace in its message, no build paths). Queue mode runs it on the handler runtime and turns the answer
//! into the job's result; load-balancing mode into the HTTP answer.

use crate::debugger::{self, Timings};
use crate::{decode_input, Failure, Handler, InputError, Job, JobContext};
use futures::FutureExt;
use runpod_protocol::WorkerSchema;
use serde_json::Value;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;

/// How one handler call ended.
#[derive(Debug)]
pub(crate) enum Answer {
    /// The input does not fit the handler's `Input` (the handler did not run).
    BadInput(InputError),
    /// The handler's output, as JSON.
    Output(Value),
    /// The handler's error, a panic, or an output that does not serialize.
    Failed(Failure),
}

/// Calls `handler` on `job` (its input still JSON). With `schema` (the worker's, when it has
/// one), the input is checked against it first, so that a constraint the type alone does not
/// enforce (a range, a length) fails the job in the decode's words before the handler runs.
/// With `timings` (the debugger on), the `decode_input` and `handler` steps are timed in it;
/// it is handed back with the answer.
pub(crate) async fn invoke<H: Handler>(
    handler: Arc<H>,
    job: Job<Value>,
    ctx: JobContext,
    schema: Option<Arc<WorkerSchema>>,
    mut timings: Option<Timings>,
) -> (Answer, Option<Timings>) {
    let decoding = debugger::start(&mut timings, "decode_input");
    let checked = match schema {
        Some(schema) => schema.check_input(&job.input),
        None => Ok(()),
    };
    let decoded = match checked {
        Ok(()) => job.try_map(decode_input::<H::Input>),
        Err(v) => Err(InputError { path: v.path, message: v.message }),
    };
    debugger::stop(&mut timings, decoding);
    let job = match decoded {
        Ok(job) => job,
        Err(e) => return (Answer::BadInput(e), timings),
    };
    let handling = debugger::start(&mut timings, "handler");
    let answer = match AssertUnwindSafe(handler.handle(job, ctx)).catch_unwind().await {
        Ok(Ok(out)) => match serde_json::to_value(out) {
            Ok(v) => Answer::Output(v),
            Err(e) => Answer::Failed(Failure::new(
                "SerializeError",
                format!("the handler's output does not serialize to JSON: {e}"),
            )),
        },
        // No backtrace or build-machine path in what the job reports (see `Failure::reported`).
        Ok(Err(e)) => Answer::Failed(e.into().reported()),
        Err(panic) => Answer::Failed(
            Failure::new("Panic", format!("the handler panicked: {}", crate::panic::panic_message(&*panic)))
                .reported(),
        ),
    };
    debugger::stop(&mut timings, handling);
    (answer, timings)
}

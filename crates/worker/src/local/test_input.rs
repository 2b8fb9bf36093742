//! One job run locally, without an endpoint: the `--test-input` mode (its result printed) and
//! [`Worker::run_test_job`](crate::Worker::run_test_job) (its result returned as a [`TestOutcome`]).

use crate::local::record::{Recorder, Sent};
use crate::options::Options;
use crate::queue::sender::Post;
use crate::startup::Startup;
use crate::{Config, Failure, Handler, WorkerError};
use runpod_protocol::{ErrorReport, Job as WireJob, JobStatus};
use serde::de::DeserializeOwned;
use serde_json::{json, Value};
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// Reads a test job: JSON text, or `@path` to a JSON file.
pub(crate) fn read_test_input(raw: &str) -> Result<Value, WorkerError> {
    let text = match raw.strip_prefix('@') {
        Some(path) => std::fs::read_to_string(path)
            .map_err(|e| WorkerError::TestInput(format!("cannot read {path}: {e}")))?,
        None => raw.to_owned(),
    };
    serde_json::from_str(&text).map_err(|e| WorkerError::TestInput(format!("not JSON: {e}")))
}

/// Turns `{"input": ..., "id"?: ...}` into a wire job (id `local_test` unless given).
fn test_job(mut value: Value) -> Result<WireJob, WorkerError> {
    let obj = value
        .as_object_mut()
        .ok_or_else(|| WorkerError::TestInput("expected a JSON object like {\"input\": {...}}".into()))?;
    if !obj.contains_key("input") {
        return Err(WorkerError::TestInput(
            "the test job has no \"input\" (expected {\"input\": {...}})".into(),
        ));
    }
    obj.entry("id").or_insert_with(|| json!("local_test"));
    serde_json::from_value(value).map_err(|e| WorkerError::TestInput(e.to_string()))
}

/// How a job run with [`Worker::run_test_job`](crate::Worker::run_test_job) ended, with what it sent on the way.
///
/// `O` is the type its output is decoded into: the handler's `Output` (when it also derives
/// `Deserialize`), any type of the same JSON shape, or [`serde_json::Value`] (the default).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct TestOutcome<O = Value> {
    /// The job id (`local_test` unless the test job named one).
    pub id: String,
    /// [`JobStatus::Completed`], [`JobStatus::Failed`] or [`JobStatus::Cancelled`].
    pub status: JobStatus,
    /// The output, as the platform would report it (absent when the handler returned nothing
    /// but an `error` or an empty object).
    pub output: Option<O>,
    /// Why it failed: the error report (`error_type`, `error_message`, traceback), or for an
    /// output with an `error` key, `error_type: "Error"` and that text.
    pub error: Option<Failure>,
    /// The progress updates it sent, in order.
    pub progress: Vec<Value>,
    /// The stream chunks it sent, in order.
    pub chunks: Vec<Value>,
}

/// One job run locally: its id, its final post, and what it sent on the way.
struct LocalRun {
    id: String,
    post: Post,
    sent: Sent,
}

/// Runs one job locally, without an endpoint: progress and chunks are recorded and logged.
async fn run_locally<H: Handler>(
    handler: Startup<H>,
    opts: Options,
    job: Value,
) -> Result<LocalRun, WorkerError> {
    let wire = test_job(job)?;
    let handler = handler.handler().await?;
    let rt = opts.handler_runtime()?;
    let exec = opts.executor(Arc::new(handler), rt.handle().clone(), &local_config());
    let recorder = Arc::new(Recorder::default());
    let ctx = exec.context(&wire, &CancellationToken::new(), recorder.clone());
    let id = wire.id.clone();
    let post = exec.run(wire, ctx).await;
    rt.shutdown_background();
    Ok(LocalRun { id, post, sent: recorder.sent() })
}

/// Runs one job locally (see [`Worker::run_test_job`](crate::Worker::run_test_job)), its output decoded into `O`.
pub(crate) async fn run_test_job<H: Handler, O: DeserializeOwned>(
    handler: Startup<H>,
    opts: Options,
    job: Value,
) -> Result<TestOutcome<O>, WorkerError> {
    let LocalRun { id, post, sent } = run_locally(handler, opts, job).await?;
    let (status, output, error) = match post {
        Post::Done { body, .. } => {
            let status = if body.error.is_some() { JobStatus::Failed } else { JobStatus::Completed };
            (status, body.output, body.error.map(|text| parse_failure(&text)))
        }
        _ => (JobStatus::Cancelled, None, None),
    };
    let output = match output {
        Some(value) => Some(serde_json::from_value(value).map_err(|e| {
            WorkerError::TestOutput(format!(
                "job {id}: the output does not decode into {}: {e}",
                std::any::type_name::<O>()
            ))
        })?),
        None => None,
    };
    Ok(TestOutcome { id, status, output, error, progress: sent.progress, chunks: sent.chunks })
}

/// The failure an `error` text reports: the SDK's JSON error report, else the text itself.
fn parse_failure(text: &str) -> Failure {
    match serde_json::from_str::<ErrorReport>(text) {
        Ok(r) => Failure {
            error_type: r.error_type,
            error_message: r.error_message,
            error_traceback: Some(r.error_traceback).filter(|t| !t.is_empty()),
        },
        Err(_) => Failure::from(text),
    }
}

/// Runs the test job, prints its result on stdout (`{"id", "status", "output"?, "error"?}`,
/// `error` as the job would report it), and fails when the job failed.
pub(crate) async fn print_test_job<H: Handler>(
    handler: Startup<H>,
    opts: Options,
    job: Value,
) -> Result<(), WorkerError> {
    let LocalRun { id, post, .. } = run_locally(handler, opts, job).await?;
    let mut result = json!({"id": id});
    let mut error = None;
    match post {
        Post::Done { body, .. } => {
            let failed = body.error.is_some();
            result["status"] = json!(if failed { "FAILED" } else { "COMPLETED" });
            if let Some(o) = body.output {
                result["output"] = o;
            }
            if let Some(e) = body.error {
                result["error"] = json!(e);
                error = Some(e);
            }
        }
        _ => {
            result["status"] = json!("CANCELLED");
            error = Some("cancelled".to_owned());
        }
    }
    println!("{result}");
    match error {
        None => Ok(()),
        Some(error) => {
            tracing::error!("job {id} failed: {error}");
            Err(WorkerError::JobFailed { id, error })
        }
    }
}

/// A configuration for runs with no endpoint (the URLs are never called).
fn local_config() -> Config {
    Config {
        worker_id: "local".into(),
        job_take_url: String::new(),
        job_done_url: String::new(),
        job_stream_url: String::new(),
        ping_url: String::new(),
        ping_interval: std::time::Duration::from_secs(10),
        api_key: None,
        endpoint_id: None,
        hostname: std::env::var("RUNPOD_POD_HOSTNAME").ok(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_jobs_need_input() {
        assert_eq!(test_job(json!({"input": 1})).unwrap().id, "local_test");
        assert_eq!(test_job(json!({"input": 1, "id": "x"})).unwrap().id, "x");
        assert!(test_job(json!({"inptu": 1})).unwrap_err().to_string().contains("no \"input\""));
        assert!(test_job(json!([1])).is_err());
        assert!(read_test_input("{oops").unwrap_err().to_string().contains("not JSON"));
        assert!(read_test_input("@/nonexistent/x.json").unwrap_err().to_string().contains("cannot read"));
    }
}

//! The `--test-input` mode: one job run locally, without an endpoint, its result printed.

use crate::sender::{deliver, Post, Sink};
use crate::{Config, Handler, Worker, WorkerError};
use runpod_protocol::Job as WireJob;
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

/// Runs one job locally, without an endpoint (see [`Worker::run_test_job`]).
pub(crate) async fn run_test_job<H: Handler>(worker: Worker<H>, job: Value) -> Result<Value, WorkerError> {
    let wire = test_job(job)?;
    let Worker { handler, opts, .. } = worker;
    let rt = opts.handler_runtime()?;
    let mut config = local_config();
    config.worker_id = "local".into();
    let exec = opts.executor(Arc::new(handler), rt.handle().clone(), &config);
    let (ctx, rx) = exec.prepare(&wire, &CancellationToken::new());
    let id = wire.id.clone();
    let sender = tokio::spawn(deliver(
        Sink::Console,
        id.clone(),
        rx,
        CancellationToken::new(),
        Default::default(),
        ctx.span().clone(),
    ));
    let post = exec.run(wire, ctx.clone()).await;
    ctx.finish(Post::End);
    let _ = sender.await;
    rt.shutdown_background();
    let mut result = json!({"id": id});
    match post {
        Post::Done { body, .. } => {
            let failed = body.error.is_some();
            result["status"] = json!(if failed { "FAILED" } else { "COMPLETED" });
            if let Some(o) = body.output {
                result["output"] = o;
            }
            if let Some(e) = body.error {
                result["error"] = json!(e);
            }
        }
        _ => result["status"] = json!("CANCELLED"),
    }
    Ok(result)
}

/// Runs the test job, prints its result on stdout, and fails when the job failed.
pub(crate) async fn print_test_job<H: Handler>(worker: Worker<H>, job: Value) -> Result<(), WorkerError> {
    let result = run_test_job(worker, job).await?;
    println!("{result}");
    if result["status"] == "COMPLETED" {
        Ok(())
    } else {
        let id = result["id"].as_str().unwrap_or_default().to_owned();
        let error = result["error"].as_str().unwrap_or("cancelled").to_owned();
        tracing::error!("job {id} failed: {error}");
        Err(WorkerError::JobFailed { id, error })
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

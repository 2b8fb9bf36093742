//! Fitness checks against a real runpod-local over HTTP: a failing check is reported as the
//! Python SDK reports it (a ping with `status=unhealthy`), no job is taken, and `run` fails.

use crate::common;

use common::*;
use runpod_worker::{handler_fn, Job, JobContext, Worker, WorkerError};
use serde_json::{json, Value};

async fn echo(job: Job<Value>, _ctx: JobContext) -> Result<Value, String> {
    Ok(job.input)
}

#[tokio::test]
async fn a_failing_check_reports_unhealthy_and_takes_no_job() {
    let ep = endpoint(|b| b).await;
    let id = run(&ep, json!({"input": {"n": 1}})).await;
    let worker = Worker::new(handler_fn(echo))
        .fitness_check("passes", || async { Ok::<(), String>(()) })
        .fitness_check("gpu", || async { Err::<(), _>("CUDA_ERROR_NO_DEVICE: no CUDA-capable device") })
        .fitness_check("never runs", || async {
            panic!("checks after a failure must not run") as Result<(), String>
        });
    let running = spawn(&ep, worker);
    let result = running.join().await;
    match result {
        Err(WorkerError::Unfit(f)) => {
            assert_eq!(f.check, "gpu");
            assert!(f.reason.contains("no CUDA-capable device"), "{f}");
        }
        other => panic!("expected Unfit, got {other:?}"),
    }
    let health = get(&ep, "health").await;
    assert_eq!(health["workers"]["unhealthy"], 1, "{health}");
    assert_eq!(status(&ep, &id).await["status"], "IN_QUEUE", "an unfit worker takes no job");
}

#[tokio::test]
async fn passing_checks_then_jobs_run() {
    let ep = endpoint(|b| b).await;
    let worker = Worker::new(handler_fn(echo))
        .fitness_check("fine", || async { Ok::<(), String>(()) })
        .fitness(runpod_worker::fitness::free_disk(std::env::temp_dir(), 0.0));
    let running = spawn(&ep, worker);
    let id = run(&ep, json!({"input": {"n": 2}})).await;
    let done = wait_final(&ep, &id, 30).await;
    assert_eq!(done["status"], "COMPLETED", "{done}");
    assert_eq!(done["output"], json!({"n": 2}));
    assert_eq!(get(&ep, "health").await["workers"]["unhealthy"], 0);
    running.stop().await.unwrap();
}

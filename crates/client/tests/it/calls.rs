//! Each client call against a real runpod-local endpoint over HTTP, with a test worker.

use crate::common;

use common::{client, local, local_with, spawn_worker, Receiver};
use futures::StreamExt;
use runpod_client::{Error, JobStatus, Request, S3ConfigBuilder};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

#[derive(Serialize)]
struct Greeting {
    name: String,
    times: u32,
}

#[derive(Debug, Deserialize, PartialEq)]
struct Echoed {
    echo: EchoedInput,
}

#[derive(Debug, Deserialize, PartialEq)]
struct EchoedInput {
    name: String,
    times: u32,
}

#[tokio::test]
async fn run_then_wait_gives_typed_output() {
    let ep = local().await;
    let _w = spawn_worker(&ep);
    let c = client(&ep);

    let job = c.run(&Request::new(Greeting { name: "ada".into(), times: 2 })).await.unwrap();
    assert_eq!(job.queued_status(), JobStatus::InQueue);
    let done = job.wait_timeout::<Echoed>(Duration::from_secs(20)).await.unwrap();
    assert_eq!(done.status, JobStatus::Completed);
    assert_eq!(done.id, job.id());
    assert_eq!(done.worker_id.as_deref(), Some("w1"));
    assert!(done.delay_time.is_some() && done.execution_time.is_some());
    assert_eq!(done.into_output().unwrap(), Echoed { echo: EchoedInput { name: "ada".into(), times: 2 } });

    // status of the finished job reads the same output; a wrong output type names the field.
    let again = c.status::<Echoed>(job.id()).await.unwrap();
    assert_eq!(again.output.unwrap().echo.times, 2);
    match c.status::<Vec<u32>>(job.id()).await {
        Err(Error::Decode { what, message }) => {
            assert_eq!(what, "job output");
            assert!(message.contains("invalid type: map"), "{message}");
        }
        other => panic!("expected a decode error, got {other:?}"),
    }
}

#[tokio::test]
async fn run_sync_returns_the_result_in_one_call() {
    let ep = local().await;
    let _w = spawn_worker(&ep);
    let c = client(&ep);
    let state =
        c.run_sync::<_, Echoed>(&Request::new(Greeting { name: "bo".into(), times: 1 })).await.unwrap();
    assert_eq!(state.status, JobStatus::Completed);
    assert_eq!(state.output.unwrap().echo.name, "bo");

    let failed = c.run_sync::<_, Value>(&Request::new(json!({"fail": "bad input"}))).await.unwrap();
    assert_eq!(failed.status, JobStatus::Failed);
    assert_eq!(failed.error.as_deref(), Some("bad input"));
    match failed.into_output() {
        Err(Error::JobEnded { status: JobStatus::Failed, error: Some(e), .. }) => assert_eq!(e, "bad input"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn run_sync_keeps_polling_when_the_server_answers_first() {
    let ep = local().await;
    let _w = spawn_worker(&ep);
    // The server is asked to hold /runsync 1 s only; the job takes 2.5 s.
    let c = client(&ep).with_runsync_wait(Duration::from_secs(1));
    let started = Instant::now();
    let state = c
        .run_sync_timeout::<_, Value>(&Request::new(json!({"sleep_ms": 2500})), Duration::from_secs(20))
        .await
        .unwrap();
    assert_eq!(state.status, JobStatus::Completed);
    assert_eq!(state.output, Some(json!({"slept": 2500})));
    assert!(started.elapsed() >= Duration::from_millis(2500));
}

#[tokio::test]
async fn waiting_past_the_timeout_is_a_wait_timeout() {
    let ep = local().await;
    let _w = spawn_worker(&ep);
    let c = client(&ep);
    let started = Instant::now();
    let err = c
        .run_sync_timeout::<_, Value>(&Request::new(json!({"sleep_ms": 8000})), Duration::from_millis(1500))
        .await
        .unwrap_err();
    let Error::WaitTimeout { id, status, waited } = err else { panic!("expected WaitTimeout, got {err:?}") };
    assert!(!status.is_final());
    assert!(
        waited >= Duration::from_millis(1500) && started.elapsed() < Duration::from_secs(6),
        "{waited:?}"
    );
    // The id lets the caller follow up: cancel the job.
    assert_eq!(c.cancel(&id).await.unwrap().status, JobStatus::Cancelled);
}

#[tokio::test]
async fn wait_with_sees_progress_updates() {
    let ep = local().await;
    let _w = spawn_worker(&ep);
    let c = client(&ep);
    let job = c.run(&Request::new(json!({"sleep_ms": 1500, "progress": ["25%"]}))).await.unwrap();
    let mut seen = vec![];
    let done = c
        .wait_with::<Value>(job.id(), Duration::from_secs(20), |s| seen.push((s.status, s.progress.clone())))
        .await
        .unwrap();
    assert_eq!(done.status, JobStatus::Completed);
    assert!(seen.contains(&(JobStatus::InProgress, Some(json!("25%")))), "{seen:?}");
    assert_eq!(seen.last().unwrap().0, JobStatus::Completed);
}

#[tokio::test]
async fn cancel_purge_and_health_without_a_worker() {
    let ep = local().await;
    let c = client(&ep);
    let a = c.run(&Request::new(1)).await.unwrap();
    let cancelled = a.cancel().await.unwrap();
    assert_eq!(cancelled.status, JobStatus::Cancelled);
    let now = a.status::<Value>().await.unwrap();
    assert_eq!(now.status, JobStatus::Cancelled);
    assert!(matches!(now.into_output(), Err(Error::JobEnded { status: JobStatus::Cancelled, .. })));

    for i in 0..3 {
        c.run(&Request::new(json!({"n": i}))).await.unwrap();
    }
    assert_eq!(c.health().await.unwrap().jobs.in_queue, 3);
    let purged = c.purge_queue().await.unwrap();
    assert_eq!((purged.removed, purged.status.as_str()), (3, "completed"));
    let h = c.health().await.unwrap();
    assert_eq!(h.jobs.in_queue, 0);
}

#[tokio::test]
async fn retry_requeues_a_failed_job() {
    let ep = local().await;
    let _w = spawn_worker(&ep);
    let c = client(&ep);
    let job = c.run(&Request::new(json!({"fail": "flaky"}))).await.unwrap();
    let failed = job.wait_timeout::<Value>(Duration::from_secs(20)).await.unwrap();
    assert_eq!(failed.status, JobStatus::Failed);

    let requeued = job.retry().await.unwrap();
    assert_eq!((requeued.id.as_str(), requeued.status), (job.id(), JobStatus::InQueue));
    let again = job.wait_timeout::<Value>(Duration::from_secs(20)).await.unwrap();
    assert_eq!(again.status, JobStatus::Failed);
    let h = c.health().await.unwrap();
    assert_eq!((h.jobs.retried, h.jobs.failed), (1, 2), "{h:?}");
    assert!(h.workers.idle + h.workers.running >= 1, "{h:?}");

    // Retrying a job that has not failed is refused by the server, with its reason.
    let ok = c.run_sync::<_, Value>(&Request::new(1)).await.unwrap();
    match c.retry(&ok.id).await {
        Err(Error::BadRequest { message }) => assert!(!message.is_empty()),
        other => panic!("expected 400, got {other:?}"),
    }
}

#[tokio::test]
async fn stream_yields_every_chunk_in_order() {
    let ep = local().await;
    let _w = spawn_worker(&ep);
    let c = client(&ep);
    let job = c.run(&Request::new(json!({"stream": 60}))).await.unwrap();
    let chunks: Vec<u64> = job.stream::<u64>().map(|c| c.expect("chunk")).collect::<Vec<_>>().await;
    assert_eq!(chunks, (0..60).collect::<Vec<_>>());
    assert_eq!(job.status::<Value>().await.unwrap().status, JobStatus::Completed);
}

#[tokio::test]
async fn stream_of_a_failing_job_ends_with_its_error() {
    let ep = local().await;
    let _w = spawn_worker(&ep);
    let c = client(&ep);
    let job = c.run(&Request::new(json!({"stream": 3, "fail": "late boom"}))).await.unwrap();
    let items: Vec<Result<u64, Error>> = c.stream(job.id()).collect().await;
    assert_eq!(items.len(), 4, "{items:?}");
    let values: Vec<u64> = items[..3].iter().map(|r| *r.as_ref().unwrap()).collect();
    assert_eq!(values, vec![0, 1, 2]);
    match &items[3] {
        Err(Error::JobEnded { status: JobStatus::Failed, error, .. }) => {
            assert_eq!(error.as_deref(), Some("late boom"))
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn webhook_is_delivered_to_the_receiver_and_retried() {
    let ep = local().await;
    let _w = spawn_worker(&ep);
    let c = client(&ep);
    // The receiver refuses the first call; the endpoint tries again.
    let rx = Receiver::start(vec![500]).await;
    let job = c.run(&Request::new(json!({"hook": true})).webhook(&rx.url)).await.unwrap();
    let calls = rx.wait_for(2).await;
    for body in &calls {
        assert_eq!(body["id"], job.id());
        assert_eq!(body["status"], "COMPLETED");
        assert_eq!(body["output"], json!({"echo": {"hook": true}}));
    }
    // The webhook body is the /status JSON.
    let status = c.status::<Value>(job.id()).await.unwrap();
    assert_eq!(calls[1]["output"], status.output.unwrap());
}

#[tokio::test]
async fn s3_config_reaches_the_endpoint_but_no_answer() {
    let ep = local_with(|b| b).await;
    let c = client(&ep);
    let s3 = S3ConfigBuilder::new()
        .access_id("AKIDTEST")
        .access_secret("very-secret-s3-key")
        .bucket_name("b")
        .endpoint_url("http://127.0.0.1:9")
        .build()
        .unwrap();
    let job = c.run(&Request::new(json!({"x": 1})).s3_config(s3)).await.unwrap();
    // Take it as a worker would and see the config; the client never sees it.
    let env: std::collections::HashMap<_, _> = ep.worker_env("w9").into_iter().collect();
    let take = env["RUNPOD_WEBHOOK_GET_JOB"].replace("$ID", "w9");
    let got: Value = reqwest::Client::new()
        .get(take)
        .header("Authorization", common::KEY)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(got["id"], job.id());
    assert_eq!(got["s3Config"]["accessSecret"], "very-secret-s3-key");
    let status = c.status::<Value>(job.id()).await.unwrap();
    assert!(!format!("{status:?}").contains("very-secret"));
}

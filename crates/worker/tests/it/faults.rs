//! End-to-end with faults: a broken network between worker and endpoint, a worker thread
//! blocked by CPU work. Traffic passes through a TCP proxy the test can break.

use crate::common;

use common::*;
use runpod_worker::testing::RunningWorker;
use runpod_worker::{handler_fn, Job, JobContext, Worker};
use serde_json::json;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Notify;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heartbeat_keeps_its_period_while_a_handler_blocks_its_thread() {
    let ep = endpoint(|b| b.ping_interval_ms(200)).await;
    let proxy = Proxy::start(ep.local_addr()).await;
    let w = RunningWorker::spawn_with(
        proxy.config(&ep, "w1"),
        Worker::new(handler_fn(|_job: Job<u64>, _ctx: JobContext| async move {
            // Blocking CPU-style work inside the async fn, on the only handler thread.
            std::thread::sleep(Duration::from_secs(3));
            Ok::<_, String>("done")
        }))
        .handler_threads(1),
    );
    let id = run(&ep, json!({"input": 1})).await;
    wait_status(&ep, &id, 20, |s| s["status"] == "IN_PROGRESS").await;
    let block_start = Instant::now();
    let s = wait_final(&ep, &id, 20).await;
    assert_eq!(s["status"], "COMPLETED");
    let pings: Vec<Instant> = proxy
        .requests(&format!("/ping/w1?job_id={id}&"))
        .into_iter()
        .map(|(t, _)| t)
        .filter(|t| *t >= block_start)
        .collect();
    let gaps: Vec<u128> = pings.windows(2).map(|w| (w[1] - w[0]).as_millis()).collect();
    eprintln!("{} pings naming the job during a 3 s block; gaps (ms): {gaps:?}", pings.len());
    assert!(pings.len() >= 8, "expected ~14 pings at 200 ms, got {}", pings.len());
    assert!(gaps.iter().all(|g| *g < 600), "a ping was late: {gaps:?}");
    w.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn results_are_retried_through_an_outage_and_not_lost() {
    let ep = endpoint(|b| b).await;
    let proxy = Proxy::start(ep.local_addr()).await;
    let go = Arc::new(Notify::new());
    let g = go.clone();
    let w = RunningWorker::spawn_with(
        proxy.config(&ep, "w1"),
        Worker::new(handler_fn(move |job: Job<u32>, ctx: JobContext| {
            let g = g.clone();
            async move {
                g.notified().await;
                ctx.progress("finishing");
                Ok::<_, String>(job.input * 2)
            }
        })),
    );
    let id = run(&ep, json!({"input": 21})).await;
    wait_status(&ep, &id, 20, |s| s["status"] == "IN_PROGRESS").await;
    proxy.set_broken(true);
    go.notify_one();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(status(&ep, &id).await["status"], "IN_PROGRESS", "nothing can get through yet");
    proxy.set_broken(false);
    let s = wait_final(&ep, &id, 30).await;
    assert_eq!(s["status"], "COMPLETED", "{s}");
    assert_eq!(s["output"], 42);
    // The worker goes on taking jobs after the outage.
    let next = run(&ep, json!({"input": 1})).await;
    go.notify_one();
    assert_eq!(wait_final(&ep, &next, 30).await["output"], 2);
    w.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn job_take_backs_off_while_the_endpoint_is_unreachable() {
    let ep = endpoint(|b| b).await;
    let proxy = Proxy::start(ep.local_addr()).await;
    proxy.set_broken(true);
    let w = RunningWorker::spawn_with(
        proxy.config(&ep, "w1"),
        Worker::new(handler_fn(|job: Job<u32>, _ctx: JobContext| async move { Ok::<_, String>(job.input) })),
    );
    tokio::time::sleep(Duration::from_secs(3)).await;
    let takes = proxy.requests("REFUSED GET /v2/local/job-take/").len();
    eprintln!("{takes} job-take attempts in 3 s of outage");
    // Exponential backoff from 100 ms: a handful of tries, not a busy loop.
    assert!((2..=12).contains(&takes), "{takes} job-take attempts in 3 s");
    proxy.set_broken(false);
    let id = run(&ep, json!({"input": 5})).await;
    assert_eq!(wait_final(&ep, &id, 40).await["output"], 5);
    w.stop().await.unwrap();
}

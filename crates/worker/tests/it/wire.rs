//! What the runtime puts on the wire, seen by a TCP proxy between it and a real `runpod-local`:
//! `stopPod` for `refresh_worker` (returned key or builder option), `job_in_progress` on
//! job-take, and backoff when job-take answers 429.

use crate::common;

use common::*;
use runpod_worker::testing::RunningWorker;
use runpod_worker::{handler_fn, Job, JobContext, Worker};
use serde_json::{json, Value};
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refresh_worker_key_sends_stop_pod_and_takes_say_when_a_job_runs() {
    let ep = endpoint(|b| b).await;
    let proxy = Proxy::start(ep.local_addr()).await;
    let w = RunningWorker::spawn_with(
        proxy.config(&ep, "w1"),
        Worker::new(handler_fn(|job: Job<Value>, _ctx: JobContext| async move {
            if let Some(ms) = job.input["sleep_ms"].as_u64() {
                tokio::time::sleep(Duration::from_millis(ms)).await;
            }
            Ok::<_, String>(job.input)
        }))
        .concurrency(2),
    );

    // Idle: takes say no job is in progress.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!proxy.requests("job_in_progress=0").is_empty(), "idle takes: {:?}", proxy.requests("job-take"));

    // A running job with a slot left: the next take says a job is in progress.
    let slow = run(&ep, json!({"input": {"sleep_ms": 1500}})).await;
    wait_status(&ep, &slow, 20, |s| s["status"] == "IN_PROGRESS").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        !proxy.requests("job_in_progress=1").is_empty(),
        "takes while a job runs: {:?}",
        proxy.requests("job-take")
    );
    assert_eq!(wait_final(&ep, &slow, 20).await["status"], "COMPLETED");
    assert!(proxy.requests("\"stopPod\"").is_empty(), "no stopPod for a plain job");

    // A returned `refresh_worker: true` is stripped from the output and becomes stopPod.
    let refresh = run(&ep, json!({"input": {"refresh_worker": true, "x": 2}})).await;
    let s = wait_final(&ep, &refresh, 20).await;
    assert_eq!(s["status"], "COMPLETED", "{s}");
    assert_eq!(s["output"], json!({"x": 2}));
    let stops = proxy.requests("\"stopPod\":true");
    assert_eq!(stops.len(), 1, "one job-done body with stopPod: {stops:?}");
    w.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refresh_after_job_reports_stop_pod_then_exits() {
    let ep = endpoint(|b| b).await;
    let proxy = Proxy::start(ep.local_addr()).await;
    let id = run(&ep, json!({"input": 7})).await;
    let w = RunningWorker::spawn_with(
        proxy.config(&ep, "w1"),
        Worker::new(handler_fn(|job: Job<u32>, _ctx: JobContext| async move { Ok::<_, String>(job.input) }))
            .refresh_after_job(true),
    );
    tokio::time::timeout(Duration::from_secs(20), w.join()).await.expect("exits by itself").unwrap();
    assert_eq!(status(&ep, &id).await["output"], 7);
    let stops = proxy.requests("\"stopPod\":true");
    assert_eq!(stops.len(), 1, "the result carried stopPod: {:?}", proxy.requests(""));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn job_take_backs_off_on_429() {
    let ep = endpoint(|b| b).await;
    let proxy = Proxy::start(ep.local_addr()).await;
    proxy.set_throttled(Some("job-take"));
    let w = RunningWorker::spawn_with(
        proxy.config(&ep, "w1"),
        Worker::new(handler_fn(|job: Job<u32>, _ctx: JobContext| async move { Ok::<_, String>(job.input) })),
    );
    tokio::time::sleep(Duration::from_millis(6500)).await;
    let throttled = proxy.requests("ANSWERED 429 GET /v2/local/job-take");
    let gaps: Vec<Duration> = throttled.windows(2).map(|p| p[1].0 - p[0].0).collect();
    eprintln!("{} job-take attempts answered 429 in 6.5 s, gaps {gaps:?}", throttled.len());
    // The platform asks for a slower pace: seconds between tries (5 s at least), not a busy loop.
    assert!((2..=3).contains(&throttled.len()), "{} takes in 6.5 s", throttled.len());
    assert!(gaps.iter().all(|g| *g >= Duration::from_secs(4)), "gaps {gaps:?}");
    // The endpoint answers again: the worker takes and finishes a job.
    proxy.set_throttled(None);
    let id = run(&ep, json!({"input": 5})).await;
    assert_eq!(wait_final(&ep, &id, 40).await["output"], 5);
    w.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn job_take_400_means_no_job_and_backs_off_gently() {
    // The platform answers 400 to a job-take when it has nothing for this worker (as the
    // Python SDK reads it): no job, no error, polled again soon but not in a busy loop.
    let ep = endpoint(|b| b).await;
    let proxy = Proxy::start(ep.local_addr()).await;
    proxy.set_answer(Some("job-take"), 400);
    let w = RunningWorker::spawn_with(
        proxy.config(&ep, "w1"),
        Worker::new(handler_fn(|job: Job<u32>, _ctx: JobContext| async move { Ok::<_, String>(job.input) })),
    );
    // A job queued meanwhile waits in the endpoint: the answers never reached it.
    let id = run(&ep, json!({"input": 7})).await;
    tokio::time::sleep(Duration::from_millis(3000)).await;
    let refused = proxy.requests("ANSWERED 400 GET /v2/local/job-take");
    let gaps: Vec<Duration> = refused.windows(2).map(|p| p[1].0 - p[0].0).collect();
    eprintln!("{} job-take attempts answered 400 in 3 s, gaps {gaps:?}", refused.len());
    // Backoff 50 ms doubling to 2 s with +-25 % jitter: about 6 tries in 3 s.
    assert!((3..=12).contains(&refused.len()), "{} takes in 3 s", refused.len());
    assert!(gaps.windows(2).all(|g| g[1] >= g[0] / 2), "gaps should grow: {gaps:?}");
    assert_eq!(status(&ep, &id).await["status"], "IN_QUEUE");
    proxy.set_answer(None, 400);
    assert_eq!(wait_final(&ep, &id, 40).await["output"], 7);
    w.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn default_size_limits_are_10_mb_for_run_and_20_mb_for_runsync() {
    let ep = endpoint(|b| b).await;
    let w = spawn(
        &ep,
        Worker::new(handler_fn(|job: Job<usize>, _ctx: JobContext| async move {
            Ok::<_, String>("x".repeat(job.input))
        })),
    );
    let eleven_mib = 11 << 20;
    // /run: over 10 MiB fails with a size error; nothing is silently dropped.
    let id = run(&ep, json!({"input": eleven_mib})).await;
    let s = wait_final(&ep, &id, 60).await;
    assert_eq!(s["status"], "FAILED");
    let r = report(&s);
    assert_eq!(r["error_type"], "OutputTooLarge", "{r}");
    assert!(r["error_message"].as_str().unwrap().contains("10485760-byte limit"), "{r}");
    // /runsync: the same output is within its 20 MiB and arrives whole.
    let s = post(&ep, "runsync?wait=60000", json!({"input": eleven_mib})).await;
    assert_eq!(s["status"], "COMPLETED", "{}", s["status"]);
    assert_eq!(s["output"].as_str().map(str::len), Some(eleven_mib));
    // Over 20 MiB fails a /runsync job too.
    let s = post(&ep, "runsync?wait=60000", json!({"input": 21 << 20})).await;
    assert_eq!(s["status"], "FAILED", "{}", s["status"]);
    assert!(report(&s)["error_message"].as_str().unwrap().contains("20971520-byte limit"), "{s}");
    w.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ping_interval_override_beats_the_environment() {
    // The environment says 2000 ms; the builder says 100 ms.
    let ep = endpoint(|b| b.ping_interval_ms(2000)).await;
    let proxy = Proxy::start(ep.local_addr()).await;
    let w = RunningWorker::spawn_with(
        proxy.config(&ep, "w1"),
        Worker::new(handler_fn(|job: Job<u32>, _ctx: JobContext| async move { Ok::<_, String>(job.input) }))
            .ping_interval(Duration::from_millis(100)),
    );
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let pings = proxy.requests("/ping/w1");
    eprintln!("{} pings in 1.5 s", pings.len());
    assert!((8..=25).contains(&pings.len()), "{} pings in 1.5 s at 100 ms", pings.len());
    w.stop().await.unwrap();
}

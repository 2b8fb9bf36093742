//! Load-balancing mode of the one `Worker` builder over real HTTP, behind runpod-local's load
//! balancer: 204 during the start-up and 200 after, a typed handler and the program's own
//! routes, bad input, NDJSON streaming, cancellation when the client goes away, a failing
//! fitness check or start-up (503, then an error), a graceful SIGTERM-style shutdown, and the
//! mode picked by `--load-balancing`.

use axum::routing::get;
use axum::Router;
use runpod_local::LoadBalancer;
use runpod_worker::load_balancing::{handler_router, BoundWorker, LbConfig};
use runpod_worker::{handler_fn, stream_fn, Handler, Job, JobContext, Worker, WorkerError};
use serde_json::{json, Value};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

#[derive(serde::Deserialize)]
struct Input {
    n: u64,
    #[serde(default)]
    sleep_ms: u64,
}

async fn double(job: Job<Input>, _ctx: JobContext) -> Result<Value, String> {
    tokio::time::sleep(Duration::from_millis(job.input.sleep_ms)).await;
    if job.input.n == 13 {
        return Err("13 is unlucky".into());
    }
    Ok(json!({"doubled": job.input.n * 2, "id": job.id}))
}

fn http() -> reqwest::Client {
    reqwest::Client::builder().timeout(Duration::from_secs(30)).build().unwrap()
}

/// Where the tests listen: 127.0.0.1, free ports.
fn local(separate_health: bool) -> LbConfig {
    let c = LbConfig::default().host("127.0.0.1").port(0);
    if separate_health {
        c.health_port(0)
    } else {
        c
    }
}

/// `worker` bound on free ports, stopped when the sender fires (or is dropped).
async fn bound<H: Handler>(worker: Worker<H>, separate_health: bool) -> (BoundWorker, oneshot::Sender<()>) {
    let (stop_tx, stop_rx) = oneshot::channel::<()>();
    let w = worker
        .load_balancing_config(local(separate_health))
        .shutdown_grace(Duration::from_secs(20))
        .unfit_linger(Duration::from_secs(2))
        .shutdown_on(async move {
            let _ = stop_rx.await;
        });
    (w.bind_load_balancing().await.unwrap(), stop_tx)
}

async fn status_of(url: &str) -> u16 {
    http().get(url).send().await.map(|r| r.status().as_u16()).unwrap_or(0)
}

async fn wait_for(url: &str, want: u16) {
    let until = Instant::now() + Duration::from_secs(20);
    loop {
        let s = status_of(url).await;
        if s == want {
            return;
        }
        assert!(Instant::now() < until, "{url} answered {s}, never {want}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn initializing_then_ready_behind_the_local_load_balancer() {
    let (loaded_tx, loaded_rx) = oneshot::channel::<()>();
    let worker = Worker::loading(async move {
        // The "model load": /ping answers 204 until it is done.
        let _ = loaded_rx.await;
        Ok::<_, String>(handler_fn(double))
    })
    .route("/double")
    .routes(Router::new().route("/hello", get(|| async { "hello from axum" })));
    let (worker, stop) = bound(worker, false).await;
    let base = format!("http://{}", worker.app_addr());
    let serving = tokio::spawn(worker.serve());
    wait_for(&format!("{base}/ping"), 204).await;
    let r = http().post(format!("{base}/double")).body(r#"{"n": 1}"#).send().await.unwrap();
    assert_eq!(r.status(), 503, "requests before the start-up ends are refused");

    let lb = LoadBalancer::builder()
        .worker(&base)
        .api_key("k")
        .probe_interval(Duration::from_millis(50))
        .bind("127.0.0.1:0")
        .await
        .unwrap();
    let until = Instant::now() + Duration::from_secs(20);
    while lb.workers()[0].2 != "initializing" {
        assert!(Instant::now() < until, "{:?}", lb.workers());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // A request sent now waits in the balancer until the worker is ready.
    let url = format!("{}/double", lb.base_url());
    let early = tokio::spawn({
        let url = url.clone();
        async move { http().post(url).bearer_auth("k").json(&json!({"n": 21})).send().await.unwrap() }
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    loaded_tx.send(()).unwrap();
    let r = early.await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-runpod-worker-id"], "w1");
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["doubled"], 42);
    assert!(body["id"].as_str().unwrap().starts_with("lb-"), "{body}");
    assert_eq!(status_of(&format!("{base}/ping")).await, 200);

    // The request id comes from X-Request-Id when sent.
    let r = http()
        .post(&url)
        .bearer_auth("k")
        .header("X-Request-Id", "req-7")
        .json(&json!({"n": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.json::<Value>().await.unwrap()["id"], "req-7");
    // The program's own routes are served beside the handler's.
    let r = http().get(format!("{}/hello", lb.base_url())).bearer_auth("k").send().await.unwrap();
    assert_eq!(r.text().await.unwrap(), "hello from axum");
    // Bad input names the field; a handler error is a 500.
    let r = http().post(&url).bearer_auth("k").json(&json!({"n": "many"})).send().await.unwrap();
    assert_eq!(r.status(), 400);
    let e: Value = r.json().await.unwrap();
    assert!(e["error"].as_str().unwrap().contains("input.n"), "{e}");
    let r = http().post(&url).bearer_auth("k").body("{not json").send().await.unwrap();
    assert_eq!(r.status(), 400);
    let r = http().post(&url).bearer_auth("k").json(&json!({"n": 13})).send().await.unwrap();
    assert_eq!(r.status(), 500);
    assert_eq!(r.json::<Value>().await.unwrap()["error"], "13 is unlucky");

    stop.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(30), serving).await.unwrap().unwrap().unwrap();
}

#[tokio::test]
async fn sigterm_finishes_requests_in_flight_and_refuses_new_ones() {
    let (worker, stop) = bound(Worker::new(handler_fn(double)).route("/double"), true).await;
    let base = format!("http://{}", worker.app_addr());
    let ping = format!("http://{}/ping", worker.health_addr());
    assert_ne!(worker.app_addr(), worker.health_addr());
    let serving = tokio::spawn(worker.serve());
    wait_for(&ping, 200).await;
    assert_eq!(status_of(&format!("{base}/ping")).await, 404, "the health path lives on PORT_HEALTH only");
    let slow = tokio::spawn({
        let base = base.clone();
        async move { http().post(format!("{base}/double")).json(&json!({"n": 4, "sleep_ms": 1500})).send().await }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.send(()).unwrap();
    let r = slow.await.unwrap().expect("the request in flight is answered");
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.unwrap()["doubled"], 8);
    tokio::time::timeout(Duration::from_secs(30), serving).await.unwrap().unwrap().unwrap();
    assert!(http().get(&ping).send().await.is_err(), "no connection accepted after the shutdown");
}

#[tokio::test]
async fn a_failing_fitness_check_answers_503_then_fails() {
    let started = Arc::new(AtomicBool::new(false));
    let s = started.clone();
    let worker = Worker::loading(async move {
        s.store(true, Ordering::SeqCst);
        Ok::<_, String>(handler_fn(double))
    })
    .fitness_check("gpu", || async { Err::<(), _>("no CUDA-capable device") });
    let (worker, stop_tx) = bound(worker, false).await;
    let ping = format!("http://{}/ping", worker.app_addr());
    let serving = tokio::spawn(worker.serve());
    wait_for(&ping, 503).await;
    let body: Value = http().get(&ping).send().await.unwrap().json().await.unwrap();
    assert_eq!(body["status"], "unhealthy");
    assert!(body["reason"].as_str().unwrap().contains("no CUDA-capable device"), "{body}");
    let result = tokio::time::timeout(Duration::from_secs(30), serving).await.unwrap().unwrap();
    match result {
        Err(WorkerError::Unfit(f)) => assert_eq!(f.check, "gpu"),
        other => panic!("expected Unfit, got {other:?}"),
    }
    assert!(!started.load(Ordering::SeqCst), "the start-up does not run on an unfit machine");
    drop(stop_tx);

    // A start-up that fails is reported the same way, in load-balancing mode and in queue mode.
    let failing = || {
        Worker::loading(async {
            match std::env::var_os("RUNPOD_TEST_NEVER_SET") {
                Some(_) => Ok(handler_fn(double)),
                None => Err("weights not found"),
            }
        })
    };
    let (worker, _stop) = bound(failing(), false).await;
    let result = worker.serve().await;
    assert!(matches!(&result, Err(WorkerError::Startup(m)) if m.contains("weights not found")), "{result:?}");
    let result = failing().run_test_job::<Value>(json!({"input": {"n": 1}})).await;
    assert!(matches!(&result, Err(WorkerError::Startup(m)) if m.contains("weights not found")), "{result:?}");
}

#[tokio::test]
async fn streaming_handlers_answer_ndjson_and_a_client_that_leaves_cancels_the_job() {
    let cancelled = Arc::new(AtomicBool::new(false));
    let seen = cancelled.clone();
    let waits = handler_fn(move |_job: Job<Value>, ctx: JobContext| {
        let seen = seen.clone();
        async move {
            // The handler's future is dropped when its client leaves; its token fires first.
            let token = ctx.cancellation_token();
            tokio::spawn(async move {
                token.cancelled().await;
                seen.store(true, Ordering::SeqCst);
            });
            std::future::pending::<()>().await;
            Ok::<_, String>(json!("never sent"))
        }
    });
    let counter = stream_fn(|job: Job<u32>, _ctx| {
        futures::stream::iter((1..=job.input).map(|i| Ok::<_, String>(json!({"i": i}))))
    });
    // The worker's handler on its route; another handler on a route of the program's own.
    let worker = Worker::new(counter).route("/count").routes(handler_router("/wait", waits));
    let (worker, stop) = bound(worker, false).await;
    let base = format!("http://{}", worker.app_addr());
    let serving = tokio::spawn(worker.serve());
    wait_for(&format!("{base}/ping"), 200).await;

    let r = http().post(format!("{base}/count")).body("3").send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "application/x-ndjson");
    let text = r.text().await.unwrap();
    let lines: Vec<Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines, [json!({"i": 1}), json!({"i": 2}), json!({"i": 3})], "{text}");

    let short = reqwest::Client::builder().timeout(Duration::from_millis(300)).build().unwrap();
    assert!(short.post(format!("{base}/wait")).body("{}").send().await.is_err(), "the client gives up");
    let until = Instant::now() + Duration::from_secs(10);
    while !cancelled.load(Ordering::SeqCst) {
        assert!(Instant::now() < until, "the job was not cancelled when its client left");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    stop.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(30), serving).await.unwrap().unwrap().unwrap();
}

#[tokio::test]
async fn the_command_line_picks_load_balancing_mode_and_the_default_route() {
    let (stop_tx, stop_rx) = oneshot::channel::<()>();
    // Port 0 cannot be read back through `run_cli`: pick a free port first.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let who = handler_fn(|job: Job<Value>, ctx: JobContext| async move {
        Ok::<_, String>(json!({"worker": ctx.worker_id(), "input": job.input}))
    });
    let worker = Worker::new(who)
        .load_balancing_config(LbConfig::default().host("127.0.0.1").port(port).worker_id("pod-7"))
        .shutdown_on(async move {
            let _ = stop_rx.await;
        });
    let serving = tokio::spawn(worker.run_cli(["--load-balancing".to_owned()]));
    let base = format!("http://127.0.0.1:{port}");
    wait_for(&format!("{base}/ping"), 200).await;
    let r = http().post(format!("{base}/run")).json(&json!({"n": 5})).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.unwrap(), json!({"worker": "pod-7", "input": {"n": 5}}));
    stop_tx.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(30), serving).await.unwrap().unwrap().unwrap();
}

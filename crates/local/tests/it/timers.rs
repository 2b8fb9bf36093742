//! Time-based rules, with periods shortened through the builder: execution timeout, queue
//! expiry, lost workers, retention, webhooks, priorities, limits.

use crate::common;

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};
use common::Api;
use runpod_local::{LocalEndpoint, LocalEndpointBuilder, RateLimit, RateLimits};
use serde_json::{json, Value};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

fn fast() -> LocalEndpointBuilder {
    LocalEndpoint::builder()
        .sweep_interval(Duration::from_millis(10))
        .take_wait(Duration::from_millis(500))
        .rate_limits(RateLimits::none())
}

async fn start(b: LocalEndpointBuilder) -> (LocalEndpoint, Arc<Api>) {
    let ep = b.bind("127.0.0.1:0").await.unwrap();
    let api = Arc::new(Api::new(&ep, None));
    (ep, api)
}

#[tokio::test]
async fn execution_timeout_ends_the_job_and_stops_the_worker() {
    let (_ep, api) =
        start(fast().execution_timeout(Duration::from_millis(300)).take_wait(Duration::from_secs(5))).await;
    let id = api.run(json!(1)).await;
    api.wget("job-take/w1").await;
    let stop = {
        let api = api.clone();
        tokio::spawn(async move { api.wget("job-stop/w1").await })
    };
    let st = api.wait_status(&id, "TIMED_OUT").await;
    assert!(st["error"].as_str().unwrap().contains("timed out"), "{st}");
    assert!(st["executionTime"].as_u64().unwrap() >= 300, "{st}");
    assert_eq!(stop.await.unwrap(), (200, json!({"jobsToStop": [id.clone()]})));
    let (code, _) = api.wpost(&format!("job-done/w1/{id}"), &json!({"output": 1})).await;
    assert_eq!(code, 409);
    assert_eq!(api.get("health").await.1["jobs"]["failed"], 1);
}

#[tokio::test]
async fn policy_bounds_are_checked() {
    let (_ep, api) = start(fast()).await;
    let (code, body) = api.post("run", &json!({"input": 1, "policy": {"executionTimeout": 5000}})).await;
    assert_eq!(code, 400);
    assert!(body["error"].as_str().unwrap().contains("executionTimeout"), "{body}");
    let (code, body) = api.post("run", &json!({"input": 1, "policy": {"ttl": 9999}})).await;
    assert_eq!(code, 400);
    assert!(body["error"].as_str().unwrap().contains("ttl"), "{body}");
    let (code, _) =
        api.post("run", &json!({"input": 1, "policy": {"executionTimeout": 5001, "ttl": 10000}})).await;
    assert_eq!(code, 200);
}

#[tokio::test]
async fn queued_jobs_expire_after_their_ttl() {
    let (_ep, api) = start(fast().queue_ttl(Duration::from_millis(200))).await;
    let id = api.run(json!(1)).await;
    let st = api.wait_status(&id, "TIMED_OUT").await;
    assert!(st["error"].as_str().unwrap().contains("ttl"), "{st}");
    assert_eq!(api.wget("job-take/w1").await.0, 204, "the expired job is not handed out");
}

#[tokio::test]
async fn low_priority_jobs_go_after_normal_ones() {
    let (_ep, api) = start(fast()).await;
    let (_, low) = api.post("run", &json!({"input": "low", "policy": {"lowPriority": true}})).await;
    let normal = api.run(json!("normal")).await;
    let (_, first) = api.wget("job-take/w1").await;
    let (_, second) = api.wget("job-take/w1").await;
    assert_eq!(first["id"], normal.as_str());
    assert_eq!(second["id"], low["id"]);
    assert_eq!(second["policy"], json!({"lowPriority": true}));
}

#[tokio::test]
async fn a_lost_worker_gives_its_job_back_and_its_late_result_is_refused() {
    let (_ep, api) = start(fast().ping_grace(Duration::from_millis(300))).await;
    let id = api.run(json!("x")).await;
    let (_, job) = api.wget("job-take/w1").await;
    assert_eq!(job["id"], id.as_str());
    // w1 goes silent; a pinging worker w2 keeps its own job meanwhile.
    let id2 = api.run(json!("y")).await;
    api.wget("job-take/w2").await;
    let t = Instant::now();
    loop {
        api.wget(&format!("ping/w2?job_id={id2}&runpod_version=1.12.0")).await;
        if api.status(&id).await.1["status"] == "IN_QUEUE" {
            break;
        }
        assert!(t.elapsed() < Duration::from_secs(10), "job never re-queued");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(t.elapsed() >= Duration::from_millis(250), "{:?}", t.elapsed());
    assert_eq!(api.status(&id2).await.1["status"], "IN_PROGRESS", "a pinging worker keeps its job");
    let (_, again) = api.wget("job-take/w3").await;
    assert_eq!(again["id"], id.as_str(), "at-least-once: the job runs again");
    let (code, body) = api.wpost(&format!("job-done/w1/{id}"), &json!({"output": "late"})).await;
    assert_eq!(code, 409, "{body}");
    api.wpost(&format!("job-done/w3/{id}"), &json!({"output": "fresh"})).await;
    let st = api.wait_status(&id, "COMPLETED").await;
    assert_eq!((&st["output"], &st["workerId"]), (&json!("fresh"), &json!("w3")));
    assert_eq!(api.get("health").await.1["jobs"]["retried"], 1);
}

#[tokio::test]
async fn a_job_left_out_of_the_pings_is_requeued() {
    let (_ep, api) = start(fast().ping_grace(Duration::from_millis(300))).await;
    let kept = api.run(json!("kept")).await;
    let dropped = api.run(json!("dropped")).await;
    api.wget("job-take-batch/w1?batch_size=2").await;
    let t = Instant::now();
    loop {
        // w1 stays alive but reports only one of its two jobs.
        api.wget(&format!("ping/w1?job_id={kept}&runpod_version=1.12.0")).await;
        if api.status(&dropped).await.1["status"] == "IN_QUEUE" {
            break;
        }
        assert!(t.elapsed() < Duration::from_secs(10), "job never re-queued");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(t.elapsed() >= Duration::from_millis(250), "{:?}", t.elapsed());
    assert_eq!(api.status(&kept).await.1["status"], "IN_PROGRESS");
    assert_eq!(api.wget("job-stop/w1").await, (200, json!({"jobsToStop": [dropped.clone()]})));
    let (_, again) = api.wget("job-take/w2").await;
    assert_eq!(again["id"], dropped.as_str());
}

#[tokio::test]
async fn results_expire_after_retention_and_status_ttl() {
    let (_ep, api) = start(fast().run_retention(Duration::from_millis(300))).await;
    let id = api.run(json!(1)).await;
    api.wget("job-take/w1").await;
    api.wpost(&format!("job-done/w1/{id}"), &json!({"output": 1})).await;
    assert_eq!(api.status(&id).await.0, 200);
    tokio::time::sleep(Duration::from_millis(600)).await;
    let (code, body) = api.status(&id).await;
    assert_eq!(code, 404, "{body}");
    assert!(body["error"].as_str().unwrap().contains(&id));

    // /runsync results have their own, shorter retention.
    let (_ep, api) = start(fast().runsync_retention(Duration::from_millis(200))).await;
    let worker = {
        let api = api.clone();
        tokio::spawn(async move {
            let (_, job) = api.wget("job-take/w1").await;
            api.wpost(&format!("job-done/w1/{}", job["id"].as_str().unwrap()), &json!({"output": 1})).await;
        })
    };
    let (_, sync) = api.post("runsync", &json!({"input": 1})).await;
    worker.await.unwrap();
    let sync_id = sync["id"].as_str().unwrap();
    assert_eq!(api.status(sync_id).await.0, 200);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(api.status(sync_id).await.0, 404);

    let (_ep, api) = start(fast()).await;
    let id = api.run(json!(1)).await;
    api.wget("job-take/w1").await;
    api.wpost(&format!("job-done/w1/{id}"), &json!({"output": 1})).await;
    assert_eq!(api.get(&format!("status/{id}?ttl=100")).await.0, 200);
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(api.status(&id).await.0, 404);
    assert_eq!(api.get(&format!("status/{id}?ttl=abc")).await.0, 400);
}

/// The calls a webhook receiver got: when, and the JSON body.
type Calls = Arc<Mutex<Vec<(Instant, Value)>>>;

/// A webhook receiver that refuses the first `refuse` calls with 500.
async fn receiver(refuse: usize) -> (String, Calls) {
    let calls: Calls = Arc::default();
    let app = Router::new()
        .route(
            "/hook",
            post(|State((calls, refuse)): State<(Calls, usize)>, Json(v): Json<Value>| async move {
                let mut c = calls.lock().unwrap();
                c.push((Instant::now(), v));
                if c.len() <= refuse {
                    StatusCode::INTERNAL_SERVER_ERROR
                } else {
                    StatusCode::OK
                }
            }),
        )
        .with_state((calls.clone(), refuse));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, calls)
}

#[tokio::test]
async fn webhooks_are_retried_and_never_carry_s3_keys() {
    let (_ep, api) = start(fast().webhook_retry_delay(Duration::from_millis(200))).await;
    let (url, calls) = receiver(2).await;
    let body = json!({"input": 1, "webhook": url,
        "s3Config": {"accessId": "AKIDSECRET", "accessSecret": "TOPSECRET", "bucketName": "b", "endpointUrl": "http://127.0.0.1:1"}});
    let (_, run) = api.post("run", &body).await;
    let id = run["id"].as_str().unwrap().to_owned();
    let (_, job) = api.wget("job-take/w1").await;
    assert_eq!(job["s3Config"]["accessSecret"], "TOPSECRET", "the worker gets the keys");
    api.wpost(&format!("job-done/w1/{id}"), &json!({"output": "done"})).await;
    let t = Instant::now();
    while calls.lock().unwrap().len() < 3 {
        assert!(t.elapsed() < Duration::from_secs(10), "webhook not retried");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let calls = calls.lock().unwrap().clone();
    assert_eq!(calls.len(), 3, "stops after the first 200");
    assert!(calls[1].0 - calls[0].0 >= Duration::from_millis(180));
    for (_, v) in &calls {
        assert_eq!(v["id"], id.as_str());
        assert_eq!(v["status"], "COMPLETED");
        assert_eq!(v["output"], "done");
        assert!(!v.to_string().contains("SECRET"), "{v}");
    }
    let (_, st) = api.status(&id).await;
    assert!(!st.to_string().contains("SECRET"), "{st}");
}

#[tokio::test]
async fn a_refusing_webhook_is_tried_three_times() {
    let (_ep, api) = start(fast().webhook_retry_delay(Duration::from_millis(50))).await;
    let (url, calls) = receiver(usize::MAX).await;
    let (_, run) = api.post("run", &json!({"input": 1, "webhook": url})).await;
    let id = run["id"].as_str().unwrap().to_owned();
    api.post(&format!("cancel/{id}"), &json!({})).await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    let calls = calls.lock().unwrap().clone();
    assert_eq!(calls.len(), 3);
    assert_eq!(calls[0].1["status"], "CANCELLED");
}

#[tokio::test]
async fn a_full_queue_answers_429() {
    let (_ep, api) = start(fast().max_queue(2)).await;
    api.run(json!(1)).await;
    api.run(json!(2)).await;
    let (code, body) = api.post("run", &json!({"input": 3})).await;
    assert_eq!(code, 429);
    assert!(body["error"].as_str().unwrap().contains("queue is full"), "{body}");
    api.wget("job-take/w1").await;
    assert_eq!(api.post("run", &json!({"input": 3})).await.0, 200, "room again once a job is taken");
}

#[tokio::test]
async fn rate_limits_answer_429() {
    let limits = RateLimits::none().with_purge(RateLimit::new(2, Duration::from_secs(10)));
    let (_ep, api) = start(fast().rate_limits(limits)).await;
    assert_eq!(api.post("purge-queue", &json!({})).await.0, 200);
    assert_eq!(api.post("purge-queue", &json!({})).await.0, 200);
    let (code, body) = api.post("purge-queue", &json!({})).await;
    assert_eq!(code, 429);
    assert!(body["error"].as_str().unwrap().contains("rate limit"), "{body}");
    assert_eq!(api.post("run", &json!({"input": 1})).await.0, 200, "other routes unaffected");
}

#[tokio::test]
async fn oversized_payloads_are_refused() {
    let (_ep, api) = start(fast().max_run_bytes(1000).max_stream_chunk_bytes(100)).await;
    let big = "x".repeat(2000);
    let (code, body) = api.post("run", &json!({ "input": big })).await;
    assert_eq!(code, 413);
    assert!(body["error"].as_str().unwrap().contains("1000 bytes"), "{body}");
    let id = api.run(json!(1)).await;
    api.wget("job-take/w1").await;
    let (code, _) = api.wpost(&format!("job-stream/w1/{id}"), &json!({ "output": "y".repeat(200) })).await;
    assert_eq!(code, 413);
    assert_eq!(api.wpost(&format!("job-stream/w1/{id}"), &json!({"output": "ok"})).await.0, 200);
}

//! Fault tests: job-done failing for a while, and a worker killed with SIGKILL mid-job.
//! Real processes (`runpod-bench-worker`) and a real `runpod-local` on loopback sockets.

use crate::common;

use common::http::{forward, serve, Reply};
use common::{endpoint, eventually, tail, Client, Secrets, WorkerProcess};
use serde_json::json;
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The endpoint answers 500, drops the connection, or applies the result and then drops the
/// connection, on every job-done for 1.5 s; 1000 jobs still complete, each exactly once
/// (checked by the job's output, by /health's counts and by a webhook that must fire once per job).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn job_done_failures_lose_nothing_and_apply_nothing_twice() {
    const JOBS: usize = 1000;
    let secrets = Secrets::new();
    let ep = endpoint(&secrets).take_wait(Duration::from_secs(2)).bind("127.0.0.1:0").await.unwrap();
    let client = Client::new(&ep, &secrets.api_key);

    // Webhook receiver: counts deliveries per job id.
    let hooks: Arc<Mutex<HashMap<String, usize>>> = Default::default();
    let h = hooks.clone();
    let hook_addr = serve(move |req| {
        let h = h.clone();
        async move {
            if let Ok(v) = serde_json::from_slice::<serde_json::Value>(&req.body) {
                if let Some(id) = v["id"].as_str() {
                    *h.lock().unwrap().entry(id.to_string()).or_default() += 1;
                }
            }
            Reply::json(200, "{}")
        }
    })
    .await;

    // The faulty proxy between the worker and the endpoint.
    let upstream = ep.base_url().to_string();
    let started: Arc<Mutex<Option<Instant>>> = Default::default();
    let failed = Arc::new(AtomicUsize::new(0));
    let (st, fl) = (started.clone(), failed.clone());
    let http = reqwest::Client::new();
    let proxy = serve(move |req| {
        let (st, fl, http, upstream) = (st.clone(), fl.clone(), http.clone(), upstream.clone());
        async move {
            let is_result =
                req.uri.contains("/job-done/") && !String::from_utf8_lossy(&req.body).contains("IN_PROGRESS");
            if is_result {
                let t0 = *st.lock().unwrap().get_or_insert_with(Instant::now);
                if t0.elapsed() < Duration::from_millis(1500) {
                    return match fl.fetch_add(1, Ordering::SeqCst) % 3 {
                        0 => Reply::json(500, r#"{"error":"injected failure"}"#),
                        1 => Reply::Drop,
                        _ => {
                            // Applied upstream, but the worker never hears so: it must retry, and
                            // the endpoint must not apply the retry a second time.
                            let _ = forward(&http, &upstream, &req).await;
                            Reply::Drop
                        }
                    };
                }
            }
            forward(&http, &upstream, &req).await
        }
    })
    .await;

    let env: Vec<(String, String)> = ep
        .worker_env("w-faulty-net")
        .into_iter()
        .map(|(k, v)| {
            let v = v.replace(ep.base_url(), &format!("http://{proxy}"));
            (k, v)
        })
        .collect();
    let mut worker = WorkerProcess::spawn(env, 8);

    let mut ids = Vec::with_capacity(JOBS);
    for i in 0..JOBS {
        let body = json!({"input": {"value": i}, "webhook": format!("http://{hook_addr}/hook"), "s3Config": secrets.s3_config()});
        ids.push(client.run(body).await);
    }
    let deadline = Instant::now() + Duration::from_secs(90);
    for (i, id) in ids.iter().enumerate() {
        let v = client.wait_final(id, deadline).await;
        assert_eq!(v["status"], "COMPLETED", "job {i} ended {v}\nworker log tail: {}", tail(&worker.log()));
        assert_eq!(v["output"], json!({"value": i}), "job {i} has the wrong output: {v}");
    }
    assert!(failed.load(Ordering::SeqCst) >= 3, "the proxy never injected a failure");

    let (status, health) = client.send("GET", "/health", None).await;
    assert_eq!(status, 200);
    assert_eq!(health["jobs"]["completed"], json!(JOBS), "each result applied once: {health}");
    assert_eq!(health["jobs"]["failed"], json!(0), "{health}");

    assert!(
        eventually(Duration::from_secs(30), || {
            let hooks = hooks.clone();
            async move { hooks.lock().unwrap().len() == JOBS }
        })
        .await,
        "webhooks arrived for {} of {JOBS} jobs",
        hooks.lock().unwrap().len()
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    let twice: Vec<_> =
        hooks.lock().unwrap().iter().filter(|(_, n)| **n != 1).map(|(id, n)| (id.clone(), *n)).collect();
    assert!(twice.is_empty(), "webhook fired more than once for {twice:?}");
    assert!(worker.alive(), "the worker died: {}", tail(&worker.log()));

    secrets.assert_absent_everywhere("the worker's output", &worker.log(), &client);
}

/// A worker is SIGKILLed with 4 jobs running; once its pings stop for the grace period the
/// endpoint re-queues them and a second worker completes all 8 jobs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkilled_worker_jobs_are_requeued_and_completed() {
    let secrets = Secrets::new();
    let ep = endpoint(&secrets)
        .ping_interval_ms(200)
        .ping_grace(Duration::from_millis(1500))
        .take_wait(Duration::from_secs(1))
        .bind("127.0.0.1:0")
        .await
        .unwrap();
    let client = Client::new(&ep, &secrets.api_key);
    let mut first = WorkerProcess::spawn(ep.worker_env("w-doomed"), 4);

    let mut ids = Vec::new();
    for i in 0..8 {
        ids.push(
            client
                .run(json!({"input": {"sleep_ms": 3000, "value": i}, "s3Config": secrets.s3_config()}))
                .await,
        );
    }
    // Wait until the first worker runs 4 of them.
    let running = eventually(Duration::from_secs(20), || {
        let (client, ids) = (client.clone(), ids.clone());
        async move {
            let mut n = 0;
            for id in &ids {
                if client.status(id).await["status"] == "IN_PROGRESS" {
                    n += 1;
                }
            }
            n == 4
        }
    })
    .await;
    assert!(running, "the first worker never ran 4 jobs: {}", tail(&first.log()));
    first.signal(libc::SIGKILL);
    let _ = first.child.wait().await;

    let second = WorkerProcess::spawn(ep.worker_env("w-rescuer"), 8);
    let deadline = Instant::now() + Duration::from_secs(40);
    let mut rescued = 0;
    for (i, id) in ids.iter().enumerate() {
        let v = client.wait_final(id, deadline).await;
        assert_eq!(v["status"], "COMPLETED", "job {i} ended {v}; second worker: {}", tail(&second.log()));
        assert_eq!(v["output"], json!({"value": i}));
        if v["workerId"] == "w-rescuer" {
            rescued += 1;
        }
    }
    assert_eq!(rescued, 8, "all 8 jobs (4 re-queued, 4 never started) must be done by the second worker");

    secrets.assert_absent("the first worker's output", &first.log());
    secrets.assert_absent_everywhere("the second worker's output", &second.log(), &client);
}

/// SIGTERM with 8 jobs in flight: the worker delivers all 8 results, then exits 0.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_delivers_jobs_in_flight_then_exits_zero() {
    let secrets = Secrets::new();
    let ep = endpoint(&secrets).take_wait(Duration::from_secs(1)).bind("127.0.0.1:0").await.unwrap();
    let client = Client::new(&ep, &secrets.api_key);
    let mut worker = WorkerProcess::spawn(ep.worker_env("w-term"), 8);

    let mut ids = Vec::new();
    for i in 0..8 {
        ids.push(
            client
                .run(json!({"input": {"sleep_ms": 1500, "value": i}, "s3Config": secrets.s3_config()}))
                .await,
        );
    }
    let all_running = eventually(Duration::from_secs(20), || {
        let (client, ids) = (client.clone(), ids.clone());
        async move {
            for id in &ids {
                if client.status(id).await["status"] != "IN_PROGRESS" {
                    return false;
                }
            }
            true
        }
    })
    .await;
    assert!(all_running, "8 jobs never ran at once: {}", tail(&worker.log()));
    worker.signal(libc::SIGTERM);
    let exit = tokio::time::timeout(Duration::from_secs(30), worker.child.wait())
        .await
        .expect("the worker did not exit within 30 s of SIGTERM")
        .unwrap();
    assert_eq!(exit.code(), Some(0), "exit status {exit:?}; log: {}", tail(&worker.log()));

    // Read after the exit: whatever is COMPLETED now was delivered before the process ended.
    for (i, id) in ids.iter().enumerate() {
        let v = client.status(id).await;
        assert_eq!(v["status"], "COMPLETED", "job {i}: {v}");
        assert_eq!(v["output"], json!({"value": i}));
    }
    secrets.assert_absent_everywhere("the worker's output", &worker.log(), &client);
}

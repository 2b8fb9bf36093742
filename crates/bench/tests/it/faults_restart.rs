//! Fault tests: stopping and restarting the endpoint. SIGTERM is a graceful stop (no new
//! connections, waiting `/runsync` callers answered, pending webhooks flushed, exit 0); with a
//! data directory, SIGKILL under load followed by a restart loses no job, no result and no
//! webhook, and workers' results for jobs they ran across the restart are accepted.

use crate::common;

use common::endpoint_process::{EndpointConfig, EndpointProcess};
use common::http::{serve, Reply};
use common::WorkerProcess;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const KEY: &str = "restart-test-key";

fn http() -> reqwest::Client {
    reqwest::Client::builder().timeout(Duration::from_secs(60)).build().unwrap()
}

/// Deliveries per job id: the job statuses each webhook carried.
type Hooks = Arc<Mutex<HashMap<String, Vec<String>>>>;

/// A webhook receiver that refuses (500) the first call for each job, and records the others.
async fn receiver() -> (String, Hooks) {
    let hooks: Hooks = Default::default();
    let refused: Arc<Mutex<std::collections::HashSet<String>>> = Default::default();
    let h = hooks.clone();
    let addr = serve(move |req| {
        let (h, refused) = (h.clone(), refused.clone());
        async move {
            let v: Value = serde_json::from_slice(&req.body).unwrap_or(Value::Null);
            let id = v["id"].as_str().unwrap_or("").to_string();
            if refused.lock().unwrap().insert(id.clone()) {
                return Reply::json(500, "{}");
            }
            h.lock().unwrap().entry(id).or_default().push(v["status"].as_str().unwrap_or("").to_string());
            Reply::json(200, "{}")
        }
    })
    .await;
    (format!("http://{addr}/hook"), hooks)
}

/// SIGTERM: waiting `/runsync` callers get their answer, a webhook waiting for its retry is
/// sent before the exit, new connections are refused, and the exit status is 0.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_answers_waiters_flushes_webhooks_and_exits_zero() {
    let mut ep = EndpointProcess::spawn(&EndpointConfig {
        api_key: KEY.into(),
        shutdown_grace_ms: Some(5000),
        ..Default::default()
    });
    let url = ep.endpoint_url();
    let http = http();
    let (hook, hooks) = receiver().await;
    // A job that ends now: its webhook's first attempt is refused; the retry is due in 10 s.
    let run: Value = http
        .post(format!("{url}/run"))
        .bearer_auth(KEY)
        .body(json!({"input": 1, "webhook": hook}).to_string())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = run["id"].as_str().unwrap().to_string();
    let job = http.get(format!("{url}/job-take/w1")).header("Authorization", KEY).send().await.unwrap();
    assert_eq!(job.status(), 200);
    let r = http
        .post(format!("{url}/job-done/w1/{id}"))
        .header("Authorization", KEY)
        .body(r#"{"output": 2}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // A /runsync caller waiting for a job no worker takes.
    let waiting = {
        let (http, url) = (http.clone(), url.clone());
        tokio::spawn(async move {
            let r = http.post(format!("{url}/runsync")).bearer_auth(KEY).body(r#"{"input": 3}"#).send().await;
            let r = r.expect("the /runsync caller gets an answer");
            (r.status().as_u16(), r.json::<Value>().await.unwrap())
        })
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    let t = Instant::now();
    ep.signal(libc::SIGTERM);
    let (status, body) =
        tokio::time::timeout(Duration::from_secs(5), waiting).await.expect("answered").unwrap();
    assert_eq!((status, body["status"].as_str()), (200, Some("IN_QUEUE")), "{body}");
    let exit = tokio::task::block_in_place(|| ep.wait_exit(Duration::from_secs(10)));
    let exit = exit.expect("exited within 10 s of SIGTERM");
    eprintln!("SIGTERM: exit {exit:?} after {:?}", t.elapsed());
    assert_eq!(exit.code(), Some(0), "exit status {exit:?}; log:\n{}", ep.log());
    assert_eq!(hooks.lock().unwrap().get(&id).cloned(), Some(vec!["COMPLETED".to_string()]), "flushed");
    let after = http.get(format!("{url}/health")).bearer_auth(KEY).send().await;
    assert!(after.is_err(), "a new request after the exit connects: {after:?}");
}

/// Submits jobs until `stop`, retrying each until an answer names its id; records (value, id)
/// of every job the endpoint accepted in `accepted`.
async fn submit_until(
    url: String,
    hook: String,
    stop: Arc<AtomicBool>,
    accepted: Arc<Mutex<Vec<(u64, String)>>>,
) {
    let http = reqwest::Client::builder().timeout(Duration::from_secs(5)).build().unwrap();
    let mut i = 0u64;
    while !stop.load(Ordering::SeqCst) {
        let body = json!({"input": {"value": i, "sleep_ms": i % 100}, "webhook": hook}).to_string();
        match http.post(format!("{url}/run")).bearer_auth(KEY).body(body).send().await {
            Ok(r) if r.status() == 200 => {
                let v: Value = r.json().await.unwrap();
                accepted.lock().unwrap().push((i, v["id"].as_str().unwrap().to_string()));
                i += 1;
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            // The endpoint is down or restarting: try the same job again shortly.
            _ => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
}

/// Waits until `accepted` holds `n` jobs (at most 60 s).
async fn until_accepted(accepted: &Mutex<Vec<(u64, String)>>, n: usize) {
    let end = Instant::now() + Duration::from_secs(60);
    while accepted.lock().unwrap().len() < n {
        assert!(Instant::now() < end, "only {} of {n} jobs accepted in 60 s", accepted.lock().unwrap().len());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// With `--data-dir`: two workers run a steady stream of jobs while the endpoint is SIGKILLed
/// twice and restarted on the same port and directory. Every job `/run` accepted ends
/// COMPLETED with its own output, and its webhook (refused once, retried 500 ms later, so that
/// deliveries are pending at each kill) arrives.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_under_load_with_a_data_dir_loses_nothing() {
    let dir = std::env::temp_dir().join(format!("runpod-local-restart-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let cfg = EndpointConfig {
        api_key: KEY.into(),
        data_dir: Some(dir.clone()),
        ping_grace_ms: Some(5000),
        take_wait_ms: Some(1000),
        webhook_retry_delay_ms: Some(500),
        ..Default::default()
    };
    let mut ep = EndpointProcess::spawn(&cfg);
    let cfg = EndpointConfig { port: ep.port, ..cfg };
    let url = ep.endpoint_url();
    let (hook, hooks) = receiver().await;
    let workers: Vec<WorkerProcess> =
        ["w-a", "w-b"].iter().map(|w| WorkerProcess::spawn(ep.worker_env(w, KEY, 500), 4)).collect();
    let stop = Arc::new(AtomicBool::new(false));
    let accepted: Arc<Mutex<Vec<(u64, String)>>> = Default::default();
    let submitter = tokio::spawn(submit_until(url.clone(), hook, stop.clone(), accepted.clone()));
    let mut restored = Vec::new();
    for round in 0..2 {
        // Kill it with jobs queued, running and finished, and webhooks pending.
        until_accepted(&accepted, 80 * (round + 1)).await;
        ep.signal(libc::SIGKILL);
        let exit = tokio::task::block_in_place(|| ep.wait_exit(Duration::from_secs(10)));
        assert!(exit.is_some(), "round {round}: SIGKILLed endpoint still runs");
        ep = EndpointProcess::spawn(&cfg);
        let line =
            ep.log().lines().find(|l| l.contains("restored from the data directory")).map(str::to_owned);
        restored.push(line.unwrap_or_else(|| panic!("round {round}: nothing restored:\n{}", ep.log())));
    }
    until_accepted(&accepted, 240).await;
    stop.store(true, Ordering::SeqCst);
    submitter.await.unwrap();
    let accepted = accepted.lock().unwrap().clone();

    let http = http();
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut missing = Vec::new();
    for (value, id) in &accepted {
        let v = loop {
            let r = http.get(format!("{url}/status/{id}")).bearer_auth(KEY).send().await.unwrap();
            let status = r.status().as_u16();
            let v: Value = r.json().await.unwrap_or(Value::Null);
            let done = v["status"] == "COMPLETED" || status == 404 || v["status"] == "FAILED";
            if done || Instant::now() > deadline {
                break v;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        if v["status"] != "COMPLETED" || v["output"] != json!({"value": value}) {
            missing.push(format!("job {value} ({id}): {v}"));
        }
    }
    let log = ep.log();
    let worker_logs: Vec<String> = workers.iter().map(|w| w.log()).collect();
    assert!(
        missing.is_empty(),
        "{} of {} jobs lost or wrong:\n{}\nendpoint log:\n{}",
        missing.len(),
        accepted.len(),
        missing.iter().take(20).cloned().collect::<Vec<_>>().join("\n"),
        &log[log.len().saturating_sub(3000)..]
    );
    let webhooks = common::eventually(Duration::from_secs(60), || {
        let (hooks, accepted) = (hooks.clone(), accepted.clone());
        async move {
            let hooks = hooks.lock().unwrap();
            accepted.iter().all(|(_, id)| hooks.get(id).is_some_and(|s| s.iter().any(|s| s == "COMPLETED")))
        }
    })
    .await;
    let got = hooks.lock().unwrap().len();
    eprintln!(
        "SIGKILL x2 under load with a data dir: {} jobs accepted, all COMPLETED; webhooks for {got}",
        accepted.len()
    );
    for line in &restored {
        eprintln!("  {}", line.trim());
    }
    assert!(webhooks, "webhooks arrived for {got} of {} jobs", accepted.len());
    // No worker heard that the endpoint no longer holds a job it ran (404 or 409 to a result).
    for (w, l) in workers.iter().zip(&worker_logs) {
        let refused: Vec<&str> = l.lines().filter(|l| l.contains("no longer holds this job")).collect();
        assert!(refused.is_empty(), "worker {}: {}", w.id, refused.join("\n"));
    }
    drop(ep);
    let _ = std::fs::remove_dir_all(&dir);
}

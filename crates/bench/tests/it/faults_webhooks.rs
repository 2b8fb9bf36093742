//! Fault tests: webhooks. Deliveries in flight are bounded (the rest wait their turn); a
//! receiver that never answers times out and the endpoint stays fast; each failed attempt is
//! logged with its cause;
//! a redirect is a failed attempt, never followed; link-local targets (cloud metadata) are
//! refused, loopback ones delivered unless turned off.

use crate::common;

use common::http::{serve, Reply};
use common::{captured_logs, endpoint, Client, Secrets};
use runpod_local::WebhookTargets;
use serde_json::{json, Value};
use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::AsyncReadExt;

/// A receiver that reads each request and never answers; counts the connections it accepted.
#[derive(Default)]
struct Hang {
    accepted: AtomicUsize,
}

async fn hanging_receiver() -> (std::net::SocketAddr, Arc<Hang>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let hang = Arc::new(Hang::default());
    let h = hang.clone();
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            let h = h.clone();
            h.accepted.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                while let Ok(n) = sock.read(&mut buf).await {
                    if n == 0 {
                        break;
                    }
                }
            });
        }
    });
    (addr, hang)
}

/// Plays the worker: takes and completes every queued job.
async fn complete_all(client: &Client, key: &str, n: usize) {
    let http = reqwest::Client::new();
    let mut done = 0;
    while done < n {
        let r = http
            .get(format!("{}/job-take-batch/w1?batch_size=100", client.url))
            .header("Authorization", key)
            .send()
            .await
            .unwrap();
        if r.status() != 200 {
            continue;
        }
        let jobs: Vec<Value> = r.json().await.unwrap();
        for j in jobs {
            let id = j["id"].as_str().unwrap();
            let r = http
                .post(format!("{}/job-done/w1/{id}", client.url))
                .header("Authorization", key)
                .body(json!({"output": j["input"]}).to_string())
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200);
            done += 1;
        }
    }
}

/// 300 jobs whose webhook receiver never answers: `/run` stays fast meanwhile, every delivery
/// is tried, and each failed attempt's log line says it timed out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hanging_receivers_time_out_and_the_endpoint_stays_fast() {
    const JOBS: usize = 300;
    let secrets = Secrets::new();
    let ep = endpoint(&secrets)
        .webhook_concurrency(16)
        .webhook_timeout(Duration::from_millis(500))
        .webhook_attempts(1)
        .bind("127.0.0.1:0")
        .await
        .unwrap();
    let client = Client::new(&ep, &secrets.api_key);
    let (addr, hang) = hanging_receiver().await;
    let mut ids = Vec::new();
    for i in 0..JOBS {
        ids.push(client.run(json!({"input": i, "webhook": format!("http://{addr}/hook/{i}")})).await);
    }
    complete_all(&client, &secrets.api_key, JOBS).await;
    // While deliveries hang, submitting stays fast.
    let mut slowest = Duration::ZERO;
    for i in 0..50 {
        let t = Instant::now();
        client.run(json!({"input": i})).await;
        slowest = slowest.max(t.elapsed());
    }
    let all_tried = common::eventually(Duration::from_secs(60), || {
        let hang = hang.clone();
        async move { hang.accepted.load(Ordering::SeqCst) >= JOBS }
    })
    .await;
    eprintln!(
        "{JOBS} hanging webhooks: {} tried; slowest /run meanwhile {slowest:?}",
        hang.accepted.load(Ordering::SeqCst)
    );
    assert!(all_tried, "only {} of {JOBS} deliveries were tried", hang.accepted.load(Ordering::SeqCst));
    assert!(slowest < Duration::from_secs(1), "/run took {slowest:?} with webhooks hanging");
    let said_why = common::eventually(Duration::from_secs(10), || {
        let ids = ids.clone();
        async move {
            let logs = captured_logs();
            let timed_out: HashSet<&str> = logs
                .lines()
                .filter(|l| l.contains("webhook attempt failed") && l.contains("timed out after 500 ms"))
                .filter_map(|l| ids.iter().find(|id| l.contains(id.as_str())).map(String::as_str))
                .collect();
            timed_out.len() == JOBS
        }
    })
    .await;
    assert!(said_why, "not every failed attempt was logged as timed out");
}

/// 300 jobs whose webhook receiver takes 200 ms to answer: never more than 16 deliveries in
/// flight at once (the rest wait their turn; there were 300 at once before), and all arrive.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deliveries_in_flight_are_bounded() {
    const JOBS: usize = 300;
    let secrets = Secrets::new();
    let ep = endpoint(&secrets).webhook_concurrency(16).bind("127.0.0.1:0").await.unwrap();
    let client = Client::new(&ep, &secrets.api_key);
    let (now, most, got) =
        (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let (n, m, g) = (now.clone(), most.clone(), got.clone());
    let addr = serve(move |_req| {
        let (n, m, g) = (n.clone(), m.clone(), g.clone());
        async move {
            let in_flight = n.fetch_add(1, Ordering::SeqCst) + 1;
            m.fetch_max(in_flight, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(200)).await;
            n.fetch_sub(1, Ordering::SeqCst);
            g.fetch_add(1, Ordering::SeqCst);
            Reply::json(200, "{}")
        }
    })
    .await;
    for i in 0..JOBS {
        client.run(json!({"input": i, "webhook": format!("http://{addr}/hook/{i}")})).await;
    }
    complete_all(&client, &secrets.api_key, JOBS).await;
    let all = common::eventually(Duration::from_secs(60), || {
        let got = got.clone();
        async move { got.load(Ordering::SeqCst) == JOBS }
    })
    .await;
    let most = most.load(Ordering::SeqCst);
    eprintln!("{JOBS} webhooks answered after 200 ms: at most {most} in flight at once");
    assert!(all, "{} of {JOBS} webhooks arrived", got.load(Ordering::SeqCst));
    assert!(most <= 16, "{most} deliveries in flight at once (limit 16)");
    assert!(most >= 8, "only {most} at once: the deliveries did not overlap");
}

/// The calls a receiver got: path and status of the job in the body.
type Calls = Arc<Mutex<Vec<(String, String)>>>;

/// A receiver answering every request with `status` (and a `Location` to `/moved` when 3xx).
async fn receiver(status: u16) -> (std::net::SocketAddr, Calls) {
    let calls: Calls = Default::default();
    let c = calls.clone();
    let addr = serve(move |req| {
        let c = c.clone();
        async move {
            let v: Value = serde_json::from_slice(&req.body).unwrap_or(Value::Null);
            let job_status = v["status"].as_str().unwrap_or("").to_string();
            c.lock().unwrap().push((format!("{} {}", req.method, req.uri), job_status));
            if (300..400).contains(&status) {
                return Reply::Redirect(status, "/moved");
            }
            Reply::json(status, "{}")
        }
    })
    .await;
    (addr, calls)
}

/// Each failed attempt is logged with its cause: connection refused, an error status, a
/// redirect (not followed: the redirect's target hears nothing, and all 3 attempts are made).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_attempts_say_why_and_redirects_are_not_followed() {
    let secrets = Secrets::new();
    let ep =
        endpoint(&secrets).webhook_retry_delay(Duration::from_millis(100)).bind("127.0.0.1:0").await.unwrap();
    let client = Client::new(&ep, &secrets.api_key);
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let (refusing, refused_calls) = receiver(503).await;
    let (redirecting, redirect_calls) = receiver(302).await;
    let hooks = [
        format!("http://{closed}/closed"),
        format!("http://{refusing}/refusing"),
        format!("http://{redirecting}/redirecting"),
    ];
    let mut ids = Vec::new();
    for h in &hooks {
        ids.push(client.run(json!({"input": 1, "webhook": h})).await);
    }
    complete_all(&client, &secrets.api_key, hooks.len()).await;
    let done = common::eventually(Duration::from_secs(20), || {
        let ids = ids.clone();
        async move {
            let logs = captured_logs();
            ids.iter().all(|id| logs.lines().any(|l| l.contains(id.as_str()) && l.contains("given up")))
        }
    })
    .await;
    let logs = captured_logs();
    let lines = |id: &str| -> Vec<String> {
        logs.lines().filter(|l| l.contains(id) && l.contains("webhook")).map(str::to_owned).collect()
    };
    assert!(done, "not every webhook was given up:\n{logs}");
    // Only the attempt lines count, and the cause is matched with its words: a job id is random
    // hex and may itself contain "503".
    let causes = [("closed", "connect"), ("refusing", "answered 503"), ("redirecting", "redirect")];
    for ((what, cause), id) in causes.iter().zip(&ids) {
        let l = lines(id);
        let failed = l.iter().filter(|l| l.contains("webhook attempt failed") && l.contains(cause)).count();
        assert_eq!(failed, 3, "{what}: 3 attempts, each logged with {cause:?}:\n{}", l.join("\n"));
    }
    assert_eq!(refused_calls.lock().unwrap().len(), 3);
    let calls = redirect_calls.lock().unwrap().clone();
    assert_eq!(calls.len(), 3, "{calls:?}");
    assert!(calls.iter().all(|(req, st)| req == "POST /redirecting" && st == "COMPLETED"), "{calls:?}");
}

/// Link-local targets (cloud metadata) are refused when the job is queued; loopback ones are
/// delivered by default, and not when loopback targets are turned off.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_targets_follow_the_policy() {
    let secrets = Secrets::new();
    let ep = endpoint(&secrets).bind("127.0.0.1:0").await.unwrap();
    let client = Client::new(&ep, &secrets.api_key);
    for hook in [
        "http://169.254.169.254/latest/meta-data/",
        "http://[fe80::1]/hook",
        "http://[::ffff:169.254.169.254]/hook",
        "http://[fd00:ec2::254]/hook",
        "http://0.0.0.0:9/hook",
    ] {
        let (status, v) =
            client.send("POST", "/run", Some(json!({"input": 1, "webhook": hook}).to_string())).await;
        assert_eq!(status, 400, "{hook}: {v}");
        assert!(v["error"].as_str().unwrap().contains("webhook"), "{hook}: {v}");
    }
    let (addr, calls) = receiver(200).await;
    let id = client.run(json!({"input": 1, "webhook": format!("http://localhost:{}/ok", addr.port())})).await;
    complete_all(&client, &secrets.api_key, 1).await;
    let delivered = common::eventually(Duration::from_secs(10), || {
        let calls = calls.clone();
        async move { calls.lock().unwrap().len() == 1 }
    })
    .await;
    assert!(delivered, "a loopback webhook is delivered by default");

    let strict = endpoint(&secrets)
        .webhook_targets(WebhookTargets { loopback: false, ..WebhookTargets::default() })
        .webhook_retry_delay(Duration::from_millis(50))
        .bind("127.0.0.1:0")
        .await
        .unwrap();
    let client = Client::new(&strict, &secrets.api_key);
    let (status, v) = client
        .send(
            "POST",
            "/run",
            Some(json!({"input": 1, "webhook": format!("http://{addr}/literal")}).to_string()),
        )
        .await;
    assert_eq!(status, 400, "a literal loopback address is refused when queued: {v}");
    let id2 =
        client.run(json!({"input": 1, "webhook": format!("http://localhost:{}/named", addr.port())})).await;
    complete_all(&client, &secrets.api_key, 1).await;
    let given_up = common::eventually(Duration::from_secs(10), || {
        let id2 = id2.clone();
        async move { captured_logs().lines().any(|l| l.contains(id2.as_str()) && l.contains("given up")) }
    })
    .await;
    assert!(given_up, "{}", captured_logs());
    assert_eq!(calls.lock().unwrap().len(), 1, "nothing reached the receiver through 'localhost'");
    let logs = captured_logs();
    assert!(
        logs.lines().any(|l| l.contains(id2.as_str()) && l.contains("not allowed")),
        "the log says why:\n{logs}"
    );
    let _ = id;
}

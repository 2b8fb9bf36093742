//! The local load balancer in front of real HTTP workers on 127.0.0.1: health polling, round
//! robin, 400 with no healthy worker, 524 past the request timeout, the API key, 413, 502 and
//! affinity; and the `runpod-local load-balance` command.

use crate::common;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use axum::{Json, Router};
use runpod_local::{LoadBalancer, LoadBalancerBuilder};
use serde_json::{json, Value};
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A load-balancing worker: `/ping` answers the status the test sets, `/echo` says who it is,
/// whether it saw an `Authorization` header, and what it got; `/slow` sleeps.
struct TestWorker {
    url: String,
    health: Arc<AtomicU16>,
    _task: tokio::task::JoinHandle<()>,
}

async fn test_worker(name: &'static str, health: u16) -> TestWorker {
    let state = Arc::new(AtomicU16::new(health));
    let app = Router::new()
        .route(
            "/ping",
            get(|State(s): State<Arc<AtomicU16>>| async move {
                StatusCode::from_u16(s.load(Ordering::SeqCst)).unwrap()
            }),
        )
        .route(
            "/echo",
            post(move |headers: HeaderMap, body: Bytes| async move {
                Json(json!({
                    "worker": name,
                    "auth_seen": headers.contains_key("authorization"),
                    "headers": headers.keys().map(|k| k.as_str()).collect::<Vec<_>>(),
                    "body": String::from_utf8_lossy(&body),
                }))
            }),
        )
        .route(
            "/slow",
            get(|| async {
                tokio::time::sleep(Duration::from_secs(5)).await;
                "late"
            }),
        )
        .route("/drip", get(|| async { drip(None) }))
        .route("/drip-sized", get(|| async { drip(Some(1000)) }))
        .route(
            "/hop",
            get(|| async {
                ([("connection", "x-internal"), ("x-internal", "secret"), ("x-kept", "yes")], "hop")
            }),
        )
        .with_state(state.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let task = tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    TestWorker { url, health: state, _task: task }
}

/// An answer that sends 10 bytes, then nothing for 5 s, then the rest; with `Some(n)` it
/// declares `Content-Length: n`, else it is chunked.
fn drip(len: Option<usize>) -> axum::response::Response {
    let first = futures::stream::once(async { Ok::<_, std::io::Error>(Bytes::from_static(b"0123456789")) });
    let rest = futures::stream::once(async move {
        tokio::time::sleep(Duration::from_secs(5)).await;
        Ok(Bytes::from(vec![b'x'; len.unwrap_or(20) - 10]))
    });
    let mut r =
        axum::response::Response::new(axum::body::Body::from_stream(futures::StreamExt::chain(first, rest)));
    if let Some(n) = len {
        r.headers_mut().insert("content-length", n.into());
    }
    r
}

fn builder() -> LoadBalancerBuilder {
    LoadBalancer::builder()
        .probe_interval(Duration::from_millis(50))
        .no_worker_timeout(Duration::from_secs(20))
}

fn http() -> reqwest::Client {
    reqwest::Client::builder().timeout(Duration::from_secs(30)).build().unwrap()
}

async fn echo(lb: &LoadBalancer, body: &str) -> (StatusCode, Option<String>, Value) {
    let r = http().post(format!("{}/echo", lb.base_url())).body(body.to_owned()).send().await.unwrap();
    let id = r.headers().get("x-runpod-worker-id").map(|v| v.to_str().unwrap().to_owned());
    (r.status(), id, r.json().await.unwrap_or(Value::Null))
}

async fn wait_state(lb: &LoadBalancer, id: &str, state: &str) {
    let until = Instant::now() + Duration::from_secs(20);
    while lb.workers().iter().find(|w| w.0 == id).unwrap().2 != state {
        assert!(Instant::now() < until, "{id} never became {state}: {:?}", lb.workers());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn round_robin_over_healthy_workers_only() {
    let (a, b, c) = (test_worker("a", 200).await, test_worker("b", 200).await, test_worker("c", 204).await);
    let lb = builder().worker(&a.url).worker(&b.url).worker(&c.url).bind("127.0.0.1:0").await.unwrap();
    wait_state(&lb, "w1", "healthy").await;
    wait_state(&lb, "w2", "healthy").await;
    wait_state(&lb, "w3", "initializing").await;
    let mut seen = Vec::new();
    for i in 0..6 {
        let (status, id, body) = echo(&lb, &format!("req {i}")).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["body"], format!("req {i}"));
        let id = id.expect("X-Runpod-Worker-Id on every answer");
        assert_eq!(body["worker"], if id == "w1" { "a" } else { "b" }, "{id} {body}");
        seen.push(id);
    }
    assert!(seen.windows(2).all(|w| w[0] != w[1]), "alternates: {seen:?}");
    assert!(!seen.contains(&"w3".to_owned()), "an initializing worker gets no request: {seen:?}");

    // Once it answers 200 it takes its turn.
    c.health.store(200, Ordering::SeqCst);
    wait_state(&lb, "w3", "healthy").await;
    let mut ids = Vec::new();
    for _ in 0..3 {
        ids.push(echo(&lb, "x").await.1.unwrap());
    }
    ids.sort();
    assert_eq!(ids, ["w1", "w2", "w3"]);

    // An unhealthy one (503) leaves the rotation.
    a.health.store(503, Ordering::SeqCst);
    wait_state(&lb, "w1", "unhealthy").await;
    for _ in 0..4 {
        assert_ne!(echo(&lb, "x").await.1.unwrap(), "w1");
    }
    assert_eq!(lb.served(), 13);
}

#[tokio::test]
async fn no_healthy_worker_is_400_after_the_wait_and_a_worker_that_becomes_ready_is_used() {
    let a = test_worker("a", 204).await;
    let lb = builder()
        .worker(&a.url)
        .no_worker_timeout(Duration::from_millis(300))
        .bind("127.0.0.1:0")
        .await
        .unwrap();
    wait_state(&lb, "w1", "initializing").await;
    let started = Instant::now();
    let (status, _, body) = echo(&lb, "x").await;
    assert_eq!(status, 400);
    assert_eq!(body, json!({"error": "no workers available"}));
    assert!(started.elapsed() >= Duration::from_millis(300), "waited for a worker first");

    // A request waiting while the worker finishes its start-up is served.
    let lb = builder().worker(&a.url).bind("127.0.0.1:0").await.unwrap();
    wait_state(&lb, "w1", "initializing").await;
    let pending = tokio::spawn(async move {
        let r = echo(&lb, "early").await;
        (r, lb)
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    a.health.store(200, Ordering::SeqCst);
    let ((status, id, body), _lb) = pending.await.unwrap();
    assert_eq!((status, id.as_deref()), (StatusCode::OK, Some("w1")), "{body}");
}

#[tokio::test]
async fn slow_answers_get_524() {
    let a = test_worker("a", 200).await;
    let lb = builder()
        .worker(&a.url)
        .request_timeout(Duration::from_millis(500))
        .bind("127.0.0.1:0")
        .await
        .unwrap();
    wait_state(&lb, "w1", "healthy").await;
    let r = http().get(format!("{}/slow", lb.base_url())).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 524);
    let body: Value = r.json().await.unwrap();
    assert!(body["error"].as_str().unwrap().contains("did not answer within 0.5 s"), "{body}");
}

#[tokio::test]
async fn api_key_body_limit_unreachable_workers_and_affinity() {
    let a = test_worker("a", 200).await;
    let b = test_worker("b", 200).await;
    // w3 listens nowhere: its health fails, and so would a request.
    let gone = "http://127.0.0.1:9";
    let lb = builder()
        .worker(&a.url)
        .worker(&b.url)
        .worker(gone)
        .api_key("sekrit")
        .max_body_bytes(1000)
        .bind("127.0.0.1:0")
        .await
        .unwrap();
    wait_state(&lb, "w1", "healthy").await;
    wait_state(&lb, "w2", "healthy").await;
    wait_state(&lb, "w3", "unhealthy").await;
    let url = format!("{}/echo", lb.base_url());

    let r = http().post(&url).body("x").send().await.unwrap();
    assert_eq!(r.status(), 401);
    let r = http().post(&url).bearer_auth("wrong").body("x").send().await.unwrap();
    assert_eq!(r.status(), 401);
    let r = http().post(&url).bearer_auth("sekrit").body("x").send().await.unwrap();
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["auth_seen"], false, "the endpoint's key is not passed on: {body}");

    let r = http().post(&url).bearer_auth("sekrit").body("y".repeat(1001)).send().await.unwrap();
    assert_eq!(r.status(), 413);

    // Soft affinity: the named worker serves every request.
    for _ in 0..3 {
        let r = http()
            .post(&url)
            .bearer_auth("sekrit")
            .header("X-Runpod-Worker-Id", "w2")
            .body("x")
            .send()
            .await
            .unwrap();
        assert_eq!(r.headers()["x-runpod-worker-id"], "w2");
    }
    // Strict affinity to an unknown worker: 404.
    let r = http()
        .post(&url)
        .bearer_auth("sekrit")
        .header("X-Runpod-Worker-Id", "strict w9")
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"], "affinity_worker_gone");
    assert!(lb.workers().iter().all(|w| !w.1.contains("sekrit")));
}

#[tokio::test]
async fn a_worker_that_vanishes_gets_502_then_leaves_the_rotation() {
    let a = test_worker("a", 200).await;
    let b = test_worker("b", 200).await;
    let lb = builder()
        .probe_interval(Duration::from_secs(3600))
        .worker(&a.url)
        .worker(&b.url)
        .bind("127.0.0.1:0")
        .await
        .unwrap();
    wait_state(&lb, "w1", "healthy").await;
    wait_state(&lb, "w2", "healthy").await;
    b._task.abort();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut statuses = Vec::new();
    for _ in 0..4 {
        let (status, id, _) = echo(&lb, "x").await;
        statuses.push((status.as_u16(), id));
    }
    // At most one request hits the dead worker (502); after it, only w1 serves.
    let failed = statuses.iter().filter(|(s, _)| *s == 502).count();
    assert!(failed <= 1, "{statuses:?}");
    assert!(
        statuses.iter().filter(|(s, _)| *s == 200).all(|(_, id)| id.as_deref() == Some("w1")),
        "{statuses:?}"
    );
    assert_eq!(lb.workers()[1].2, "unhealthy");
}

#[tokio::test]
async fn the_load_balance_command_serves_its_workers() {
    let a = test_worker("a", 200).await;
    let b = test_worker("b", 200).await;
    let workers = format!("{},{}", a.url, b.url);
    let (_server, lines) = common::spawn_local(
        &["load-balance", "--worker", &workers, "--port", "0", "--api-key", "k", "--probe-interval-ms", "50"],
        3,
    )
    .await;
    let base = lines[0].strip_prefix("runpod-local load balancer listening on ").expect(&lines[0]).to_owned();
    assert_eq!(lines[1], format!("worker w1: {}", a.url));
    assert_eq!(lines[2], format!("worker w2: {}", b.url));
    let until = Instant::now() + Duration::from_secs(20);
    let mut workers_seen = std::collections::BTreeSet::new();
    while workers_seen.len() < 2 {
        assert!(Instant::now() < until, "both workers never served: {workers_seen:?}");
        let r = http().post(format!("{base}/echo")).bearer_auth("k").body("hi").send().await.unwrap();
        if r.status() == 200 {
            let body: Value = r.json().await.unwrap();
            workers_seen.insert(body["worker"].as_str().unwrap().to_owned());
        }
    }
    assert_eq!(http().post(format!("{base}/echo")).body("hi").send().await.unwrap().status(), 401);
}

/// An answer still streaming at the request timeout reaches the client as an error (the
/// connection closes before its end), with a `Content-Length` and chunked alike; before, the
/// balancer dropped the length and wrote a clean end, so a cut answer looked whole.
#[tokio::test]
async fn an_answer_cut_at_the_request_timeout_looks_cut() {
    let a = test_worker("a", 200).await;
    let lb = builder()
        .worker(&a.url)
        .request_timeout(Duration::from_millis(800))
        .bind("127.0.0.1:0")
        .await
        .unwrap();
    wait_state(&lb, "w1", "healthy").await;
    for path in ["/drip-sized", "/drip"] {
        let r = http().get(format!("{}{path}", lb.base_url())).send().await.unwrap();
        assert_eq!(r.status(), 200, "{path}: the head came in time");
        if path == "/drip-sized" {
            assert_eq!(r.content_length(), Some(1000), "the worker's Content-Length is kept");
        }
        let started = Instant::now();
        let body = r.bytes().await;
        assert!(body.is_err(), "{path}: a cut answer must not read as complete: {body:?}");
        assert!(started.elapsed() < Duration::from_secs(4), "{path}: cut at the timeout, not at the end");
    }
    // A whole answer still arrives whole.
    let (status, _, body) = echo(&lb, "whole").await;
    assert_eq!((status.as_u16(), body["body"].clone()), (200, json!("whole")));
}

/// Hop-by-hop headers, and those `Connection` names, are not passed on either way.
#[tokio::test]
async fn hop_by_hop_headers_are_not_forwarded() {
    let a = test_worker("a", 200).await;
    let lb = builder().worker(&a.url).bind("127.0.0.1:0").await.unwrap();
    wait_state(&lb, "w1", "healthy").await;
    let r = http()
        .post(format!("{}/echo", lb.base_url()))
        .header("connection", "keep-alive, x-private")
        .header("x-private", "for the balancer only")
        .header("keep-alive", "timeout=5")
        .header("x-public", "for the worker")
        .body("b")
        .send()
        .await
        .unwrap();
    let body: Value = r.json().await.unwrap();
    let seen: Vec<&str> = body["headers"].as_array().unwrap().iter().map(|h| h.as_str().unwrap()).collect();
    assert!(seen.contains(&"x-public"), "{seen:?}");
    for hop in ["x-private", "keep-alive"] {
        assert!(!seen.contains(&hop), "{hop} reached the worker: {seen:?}");
    }
    // The worker really sends `Connection: x-internal` and `X-Internal` ...
    let direct = http().get(format!("{}/hop", a.url)).send().await.unwrap();
    assert_eq!(direct.headers()["x-internal"], "secret");
    // ... and the balancer passes neither on.
    let r = http().get(format!("{}/hop", lb.base_url())).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-kept"], "yes");
    assert!(r.headers().get("x-internal").is_none(), "{:?}", r.headers());
}

/// A worker whose app port drops one connection: that request gets 502, but the worker's health
/// (asked at once) is good, so it stays in the rotation and the next request is served at once
/// (before, it was unhealthy until the next poll: an hour here).
#[tokio::test]
async fn one_failed_request_does_not_take_the_only_worker_out() {
    let health = test_worker("h", 200).await;
    let app = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let app_url = format!("http://{}", app.local_addr().unwrap());
    tokio::spawn(async move {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut first = true;
        loop {
            let (mut s, _) = app.accept().await.unwrap();
            if std::mem::take(&mut first) {
                drop(s);
                continue;
            }
            let mut buf = [0u8; 4096];
            let _ = s.read(&mut buf).await;
            let _ = s.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok").await;
        }
    });
    let lb = builder()
        .probe_interval(Duration::from_secs(3600))
        .worker(format!("{app_url}={}/ping", health.url))
        .bind("127.0.0.1:0")
        .await
        .unwrap();
    wait_state(&lb, "w1", "healthy").await;
    let r = http().get(format!("{}/x", lb.base_url())).send().await.unwrap();
    assert_eq!(r.status(), 502);
    assert_eq!(lb.workers()[0].2, "healthy", "its health answered 200 right after");
    let started = Instant::now();
    let r = http().get(format!("{}/x", lb.base_url())).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.text().await.unwrap(), "ok");
    assert!(started.elapsed() < Duration::from_secs(5), "served at once: {:?}", started.elapsed());
}

/// A connection that sends no request, or half a head, is closed at the header timeout.
#[tokio::test]
async fn silent_connections_are_closed_at_the_header_timeout() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let a = test_worker("a", 200).await;
    let lb = builder()
        .worker(&a.url)
        .header_timeout(Duration::from_millis(500))
        .bind("127.0.0.1:0")
        .await
        .unwrap();
    wait_state(&lb, "w1", "healthy").await;
    let silent = tokio::net::TcpStream::connect(lb.local_addr()).await.unwrap();
    let mut half = tokio::net::TcpStream::connect(lb.local_addr()).await.unwrap();
    half.write_all(b"GET /echo HTTP/1.1\r\nHost: 127.0.0.1\r\n").await.unwrap();
    for mut s in [silent, half] {
        let mut buf = Vec::new();
        let read = tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut buf)).await;
        assert!(read.is_ok(), "still open 10 s after a 0.5 s header timeout");
    }
    let (status, _, _) = echo(&lb, "after").await;
    assert_eq!(status, 200);
}

/// Under `ulimit -n 300`, 400 idle connections do not stop `runpod-local load-balance`: at the
/// connection cap (300 less 128) new ones close the oldest idle ones, and a request is served.
#[tokio::test]
async fn idle_connections_under_a_low_open_files_limit_do_not_stop_it() {
    use std::io::{BufRead, BufReader};
    let a = test_worker("a", 200).await;
    let mut child = std::process::Command::new("sh")
        .arg("-c")
        .arg("ulimit -n 300 && exec \"$0\" \"$@\"")
        .arg(common::BIN)
        .args(["load-balance", "--worker", &a.url, "--port", "0", "--probe-interval-ms", "50"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let _child = KillOnDrop(child);
    let mut out = BufReader::new(stdout).lines();
    let first = out.next().unwrap().unwrap();
    std::thread::spawn(move || out.for_each(drop));
    let base = first.strip_prefix("runpod-local load balancer listening on ").expect(&first).to_owned();
    let addr = base.trim_start_matches("http://").to_owned();
    let mut idle = Vec::new();
    for _ in 0..400 {
        idle.push(tokio::net::TcpStream::connect(&addr).await.unwrap());
    }
    let until = Instant::now() + Duration::from_secs(20);
    let status = loop {
        let r = http().post(format!("{base}/echo")).body("hi").send().await;
        match r {
            Ok(r) if r.status() == 200 => break 200,
            _ if Instant::now() < until => tokio::time::sleep(Duration::from_millis(100)).await,
            other => panic!("no answer under 400 idle connections: {other:?}"),
        }
    };
    assert_eq!(status, 200);
    drop(idle);
}

/// A child process, killed when the test ends (a failed assertion included).
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

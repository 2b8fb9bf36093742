//! Helpers for the end-to-end tests: a real `runpod-local` endpoint over HTTP on 127.0.0.1 (the
//! worker runs through `runpod_worker::testing`), calls to its client API, and a TCP proxy.
#![allow(dead_code, reason = "each test file uses a part of the helpers")]

pub(crate) use runpod_worker::testing::API_KEY as KEY;
use runpod_worker::testing::{LocalEndpoint, LocalEndpointBuilder, RunningWorker};
use runpod_worker::{Config, Handler, Worker};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

/// An endpoint with the test key, a fast ping interval and the given tweaks.
pub(crate) async fn endpoint(
    tweak: impl FnOnce(LocalEndpointBuilder) -> LocalEndpointBuilder,
) -> LocalEndpoint {
    let b = LocalEndpoint::builder().api_key(KEY).ping_interval_ms(200).take_wait(Duration::from_secs(5));
    tweak(b).bind("127.0.0.1:0").await.expect("bind the local endpoint")
}

/// `worker` taking jobs from `ep` as worker `w1`, in the background.
pub(crate) fn spawn<H: Handler>(ep: &LocalEndpoint, worker: Worker<H>) -> RunningWorker {
    RunningWorker::spawn(ep, worker).expect("worker_env is a valid configuration")
}

/// One client for all test calls (fresh connections per call would dominate timings).
pub(crate) fn client() -> reqwest::Client {
    static CLIENT: std::sync::OnceLock<reqwest::Client> = std::sync::OnceLock::new();
    CLIENT.get_or_init(reqwest::Client::new).clone()
}

pub(crate) async fn post(ep: &LocalEndpoint, path: &str, body: Value) -> Value {
    let r = client()
        .post(format!("{}/{path}", ep.endpoint_url()))
        .bearer_auth(KEY)
        .json(&body)
        .send()
        .await
        .expect("endpoint answers");
    let status = r.status();
    let v: Value = r.json().await.unwrap_or(Value::Null);
    assert!(status.is_success(), "{path}: {status} {v}");
    v
}

pub(crate) async fn get(ep: &LocalEndpoint, path: &str) -> Value {
    let r = client().get(format!("{}/{path}", ep.endpoint_url())).bearer_auth(KEY).send().await.unwrap();
    assert!(r.status().is_success(), "{path}: {}", r.status());
    r.json().await.unwrap()
}

/// Queues a job with `/run`; returns its id.
pub(crate) async fn run(ep: &LocalEndpoint, body: Value) -> String {
    post(ep, "run", body).await["id"].as_str().expect("an id").to_owned()
}

pub(crate) async fn status(ep: &LocalEndpoint, id: &str) -> Value {
    get(ep, &format!("status/{id}")).await
}

/// Polls `/status` until the job is final, or panics after `secs`.
pub(crate) async fn wait_final(ep: &LocalEndpoint, id: &str, secs: u64) -> Value {
    wait_status(ep, id, secs, |s| !matches!(s["status"].as_str(), Some("IN_QUEUE" | "IN_PROGRESS"))).await
}

pub(crate) async fn wait_status(
    ep: &LocalEndpoint,
    id: &str,
    secs: u64,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let until = Instant::now() + Duration::from_secs(secs);
    loop {
        let s = status(ep, id).await;
        if done(&s) {
            return s;
        }
        assert!(Instant::now() < until, "job {id} did not reach the expected state in {secs} s: {s}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The job's error report (the JSON text in `error`), parsed.
pub(crate) fn report(status: &Value) -> Value {
    let text = status["error"].as_str().unwrap_or_else(|| panic!("no error in {status}"));
    serde_json::from_str(text).unwrap_or_else(|_| json!({"error_message": text}))
}

/// A TCP proxy in front of the endpoint that a test can break (every connection dropped,
/// new ones refused) and heal, or make answer `429` to some requests, and that records the
/// request lines passing through it (and body lines that carry `"stopPod"`).
pub(crate) struct Proxy {
    pub(crate) addr: std::net::SocketAddr,
    broken: tokio::sync::watch::Sender<bool>,
    throttle: Arc<Mutex<Option<(String, u16)>>>,
    lines: Arc<Mutex<Vec<(Instant, String)>>>,
}

use std::sync::{Arc, Mutex};

impl Proxy {
    pub(crate) async fn start(target: std::net::SocketAddr) -> Proxy {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (broken, watch) = tokio::sync::watch::channel(false);
        let lines = Arc::new(Mutex::new(Vec::new()));
        let throttle: Arc<Mutex<Option<(String, u16)>>> = Arc::default();
        let rec = lines.clone();
        let throttled = throttle.clone();
        tokio::spawn(async move {
            loop {
                let Ok((inbound, _)) = listener.accept().await else { return };
                let needle = throttled.lock().unwrap().clone();
                if let Some((needle, status)) = needle {
                    tokio::spawn(throttle_or_pass(inbound, target, needle, status, rec.clone()));
                    continue;
                }
                if *watch.borrow() {
                    // Broken: read the request, note it, and hang up without an answer.
                    let rec = rec.clone();
                    tokio::spawn(async move {
                        use tokio::io::AsyncReadExt;
                        let mut inbound = inbound;
                        let mut buf = vec![0u8; 4096];
                        if let Ok(n) = inbound.read(&mut buf).await {
                            let text = String::from_utf8_lossy(&buf[..n]);
                            if let Some(line) = text.lines().next() {
                                rec.lock().unwrap().push((Instant::now(), format!("REFUSED {line}")));
                            }
                        }
                    });
                    continue;
                }
                let mut watch = watch.clone();
                let rec = rec.clone();
                tokio::spawn(async move {
                    let Ok(outbound) = tokio::net::TcpStream::connect(target).await else { return };
                    let (mut ri, mut wi) = inbound.into_split();
                    let (mut ro, mut wo) = outbound.into_split();
                    let up = async {
                        use tokio::io::{AsyncReadExt, AsyncWriteExt};
                        let mut buf = vec![0u8; 64 * 1024];
                        loop {
                            let n = ri.read(&mut buf).await?;
                            if n == 0 {
                                return Ok::<_, std::io::Error>(());
                            }
                            let text = String::from_utf8_lossy(&buf[..n]);
                            for line in text.lines().filter(|l| {
                                l.starts_with("GET ") || l.starts_with("POST ") || l.contains("\"stopPod\"")
                            }) {
                                rec.lock().unwrap().push((Instant::now(), line.to_owned()));
                            }
                            wo.write_all(&buf[..n]).await?;
                        }
                    };
                    let down = tokio::io::copy(&mut ro, &mut wi);
                    tokio::select! {
                        _ = async { tokio::join!(up, down) } => {}
                        _ = watch.wait_for(|b| *b) => {}
                    }
                });
            }
        });
        Proxy { addr, broken, throttle, lines }
    }

    /// From now on, new connections whose first request line contains `needle` get `429 Too
    /// Many Requests` (noted as `ANSWERED 429 <line>`) and are closed, and other new connections
    /// carry one request only; `None` stops that.
    pub(crate) fn set_throttled(&self, needle: Option<&str>) {
        self.set_answer(needle, 429);
    }

    /// Like [`Proxy::set_throttled`] with another status: matching requests get `status`
    /// (noted as `ANSWERED <status> <line>`).
    pub(crate) fn set_answer(&self, needle: Option<&str>, status: u16) {
        *self.throttle.lock().unwrap() = needle.map(|n| (n.to_owned(), status));
    }

    /// The endpoint's worker environment, routed through this proxy.
    pub(crate) fn config(&self, ep: &LocalEndpoint, worker: &str) -> Config {
        let real = ep.local_addr().to_string();
        let env =
            ep.worker_env(worker).into_iter().map(|(k, v)| (k, v.replace(&real, &self.addr.to_string())));
        Config::from_vars(env).unwrap()
    }

    pub(crate) fn set_broken(&self, broken: bool) {
        self.broken.send_replace(broken);
    }

    /// Request lines seen so far whose text contains `needle`.
    pub(crate) fn requests(&self, needle: &str) -> Vec<(Instant, String)> {
        self.lines.lock().unwrap().iter().filter(|(_, l)| l.contains(needle)).cloned().collect()
    }
}

/// One connection in throttle mode: `status` for a request matching `needle`, else passed on.
async fn throttle_or_pass(
    mut inbound: tokio::net::TcpStream,
    target: std::net::SocketAddr,
    needle: String,
    status: u16,
    rec: Arc<Mutex<Vec<(Instant, String)>>>,
) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut buf = vec![0u8; 64 * 1024];
    let Ok(n) = inbound.read(&mut buf).await else { return };
    let line = String::from_utf8_lossy(&buf[..n]).lines().next().unwrap_or_default().to_owned();
    if line.contains(&needle) {
        rec.lock().unwrap().push((Instant::now(), format!("ANSWERED {status} {line}")));
        let answer = format!("HTTP/1.1 {status} Refused\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
        let _ = inbound.write_all(answer.as_bytes()).await;
        return;
    }
    rec.lock().unwrap().push((Instant::now(), line));
    let Ok(mut outbound) = tokio::net::TcpStream::connect(target).await else { return };
    // One request per connection: `connection: close` makes the endpoint hang up after its
    // answer, so the client cannot send a later (job-take) request down this unthrottled path.
    let mut request = buf[..n].to_vec();
    if let Some(eol) = request.windows(2).position(|w| w == b"\r\n") {
        request.splice(eol + 2..eol + 2, b"connection: close\r\n".iter().copied());
    }
    if outbound.write_all(&request).await.is_ok() {
        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
    }
}

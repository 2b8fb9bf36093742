//! Shared by the integration tests: a local endpoint, a worker taking scripted jobs from it over
//! HTTP (runpod-worker's test bed), scripted HTTP servers, and a webhook receiver.
#![allow(dead_code, reason = "each test file uses a part of the helpers")]

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{any, post};
use axum::{Json, Router};
use runpod_client::Endpoint;
use runpod_local::LocalEndpoint;
use runpod_worker::testing::RunningWorker;
use runpod_worker::{handler_fn, Job, JobContext, StreamError, Worker};
use serde_json::{json, Value};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::TcpListener;

pub(crate) const KEY: &str = "test-key-0123456789";

/// A local endpoint with key [`KEY`] and short long-polls.
pub(crate) async fn local() -> LocalEndpoint {
    local_with(|b| b).await
}

/// A local endpoint with key [`KEY`], short long-polls, and more settings from `f`.
pub(crate) async fn local_with(
    f: impl FnOnce(runpod_local::LocalEndpointBuilder) -> runpod_local::LocalEndpointBuilder,
) -> LocalEndpoint {
    let b = LocalEndpoint::builder()
        .api_key(KEY)
        .take_wait(Duration::from_millis(500))
        .stream_wait(Duration::from_millis(500))
        .webhook_retry_delay(Duration::from_millis(200));
    f(b).bind("127.0.0.1:0").await.expect("bind local endpoint")
}

/// A client for `ep`, polling fast.
pub(crate) fn client(ep: &LocalEndpoint) -> Endpoint {
    Endpoint::new(ep.endpoint_id(), Some(KEY))
        .unwrap()
        .with_base_url(ep.base_url())
        .unwrap()
        .with_poll_interval(Duration::from_millis(20), Duration::from_millis(200))
}

/// Starts a worker (runpod-worker's test bed, worker id `w1`) that takes jobs from `ep` over
/// the worker API, up to 16 at once. Dropping it stops the worker.
///
/// What it does is driven by the input:
/// - `{"sleep_ms": n, "progress": [..]?}`: posts each progress value, sleeps n ms, returns `{"slept": n}`
/// - `{"stream": n, "fail"?: msg}`: streams chunks `0..n`, then returns `[]` (or fails with `msg`)
/// - `{"fail": msg}`: fails with `msg`
/// - anything else: returns `{"echo": input}`
///
/// A failure is returned as `{"error": msg}`, so the job's `error` is `msg` itself (the Python
/// SDK's rule), not a JSON error report.
pub(crate) fn spawn_worker(ep: &LocalEndpoint) -> RunningWorker {
    let worker = Worker::new(handler_fn(scripted_job)).concurrency(16);
    RunningWorker::spawn(ep, worker).expect("worker_env is a valid configuration")
}

async fn scripted_job(job: Job<Value>, ctx: JobContext) -> Result<Value, StreamError> {
    let input = job.input;
    if let Some(n) = input.get("stream").and_then(Value::as_u64) {
        for i in 0..n {
            ctx.stream(i).await?;
        }
        return Ok(match input.get("fail") {
            Some(msg) => json!({"error": msg}),
            None => json!([]),
        });
    }
    if let Some(ms) = input.get("sleep_ms").and_then(Value::as_u64) {
        for p in input.get("progress").and_then(Value::as_array).cloned().unwrap_or_default() {
            ctx.progress(p);
        }
        tokio::time::sleep(Duration::from_millis(ms)).await;
        return Ok(json!({"slept": ms}));
    }
    Ok(match input.get("fail") {
        Some(msg) => json!({"error": msg}),
        None => json!({"echo": input}),
    })
}

/// Method, path with query, and arrival time of each request a [`ScriptServer`] got.
pub(crate) type RequestLog = Arc<Mutex<Vec<(String, String, tokio::time::Instant)>>>;

/// One scripted answer: status, extra headers, JSON body.
#[derive(Clone)]
pub(crate) struct Scripted {
    pub(crate) status: u16,
    pub(crate) headers: Vec<(&'static str, String)>,
    pub(crate) body: Value,
    pub(crate) delay: Duration,
}

impl Scripted {
    pub(crate) fn new(status: u16, body: Value) -> Self {
        Scripted { status, headers: vec![], body, delay: Duration::ZERO }
    }

    pub(crate) fn header(mut self, k: &'static str, v: impl Into<String>) -> Self {
        self.headers.push((k, v.into()));
        self
    }

    pub(crate) fn delay(mut self, d: Duration) -> Self {
        self.delay = d;
        self
    }
}

/// A real HTTP server that answers each request with the next scripted answer (the last one
/// repeats), recording the method, path and time of every request.
pub(crate) struct ScriptServer {
    pub(crate) url: String,
    pub(crate) log: RequestLog,
}

#[derive(Clone)]
struct ScriptState {
    answers: Arc<Mutex<Vec<Scripted>>>,
    log: RequestLog,
}

impl ScriptServer {
    pub(crate) async fn start(answers: Vec<Scripted>) -> ScriptServer {
        assert!(!answers.is_empty());
        let st = ScriptState { answers: Arc::new(Mutex::new(answers)), log: Arc::new(Mutex::new(vec![])) };
        let log = st.log.clone();
        let app = Router::new().fallback(any(scripted)).with_state(st);
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        ScriptServer { url, log }
    }

    pub(crate) fn requests(&self) -> Vec<(String, String, tokio::time::Instant)> {
        self.log.lock().unwrap().clone()
    }
}

async fn scripted(State(st): State<ScriptState>, req: axum::extract::Request) -> impl IntoResponse {
    st.log.lock().unwrap().push((
        req.method().to_string(),
        req.uri().to_string(),
        tokio::time::Instant::now(),
    ));
    let answer = {
        let mut a = st.answers.lock().unwrap();
        if a.len() > 1 {
            a.remove(0)
        } else {
            a[0].clone()
        }
    };
    tokio::time::sleep(answer.delay).await;
    let mut headers = HeaderMap::new();
    for (k, v) in &answer.headers {
        headers.insert(*k, v.parse().unwrap());
    }
    (StatusCode::from_u16(answer.status).unwrap(), headers, Json(answer.body))
}

type ReceiverState = (Arc<Mutex<Vec<Value>>>, Arc<Mutex<Vec<u16>>>);

/// A webhook receiver: records each POSTed JSON body; answers with `statuses` in turn (then 200).
pub(crate) struct Receiver {
    pub(crate) url: String,
    pub(crate) got: Arc<Mutex<Vec<Value>>>,
}

impl Receiver {
    pub(crate) async fn start(statuses: Vec<u16>) -> Receiver {
        let got = Arc::new(Mutex::new(vec![]));
        let st = (got.clone(), Arc::new(Mutex::new(statuses)));
        let app = Router::new()
            .route(
                "/hook",
                post(|State((got, statuses)): State<ReceiverState>, Json(v): Json<Value>| async move {
                    got.lock().unwrap().push(v);
                    let mut s = statuses.lock().unwrap();
                    let code = if s.is_empty() { 200 } else { s.remove(0) };
                    StatusCode::from_u16(code).unwrap()
                }),
            )
            .with_state(st);
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Receiver { url, got }
    }

    /// Waits (up to 20 s) until `n` bodies arrived and returns them.
    pub(crate) async fn wait_for(&self, n: usize) -> Vec<Value> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            let got = self.got.lock().unwrap().clone();
            if got.len() >= n {
                return got;
            }
            assert!(tokio::time::Instant::now() < deadline, "webhook: {} of {n} calls after 20 s", got.len());
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// A port on 127.0.0.1 with nothing listening (bound, then released).
pub(crate) async fn closed_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    l.local_addr().unwrap().port()
}

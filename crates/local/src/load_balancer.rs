//! A local load-balancing endpoint: [`LoadBalancer`] forwards every request, whatever its
//! path, to one of several load-balancing workers, the way the platform's balancer in front of
//! `https://{endpoint_id}.api.runpod.ai/{path}` does (docs/load-balancing.md):
//!
//! - it polls each worker's health path (default `/ping`, every second) and reads `200` as
//!   healthy, `204` as initializing and anything else, or no answer, as unhealthy; it logs
//!   each change and a worker's cold start (first `204` to first `200`);
//! - requests go round robin to the healthy workers; with none healthy a request waits up to
//!   the no-worker timeout (2 min on the platform) for one, then gets `400`
//!   `{"error": "no workers available"}`;
//! - a worker that does not answer within the request timeout (5.5 min) gets the request cut
//!   with `524`, and an answer still streaming then is cut short (the connection closes before
//!   its end, so the client sees it truncated); one that cannot be reached gets `502` and its
//!   health path is polled at once: only a failed poll marks it unhealthy;
//! - hop-by-hop headers (`Connection`, those it names, `Keep-Alive`, `Transfer-Encoding`, ...)
//!   are not passed on, either way;
//! - requests from web pages are guarded as the endpoint's are (`Host` allow-list, no
//!   cross-origin requests: `request_guard`); connections are served as the endpoint's are
//!   (header timeout, connection cap, back-off when out of file descriptors);
//! - with an API key, requests need `Authorization: Bearer <key>` (`401` otherwise); the key
//!   is not passed on to the worker;
//! - bodies over 30 MB get `413`; each answer says which worker served it in
//!   `X-Runpod-Worker-Id`, and a request carrying that header prefers that worker
//!   (`strict <id>` insists on it: `404` when no such worker exists).
//!
//! ```no_run
//! # async fn run() -> std::io::Result<()> {
//! let lb = runpod_local::LoadBalancer::builder()
//!     .worker("http://127.0.0.1:8001")
//!     .worker("http://127.0.0.1:8002=http://127.0.0.1:9002/ping") // health on another port
//!     .api_key("secret")
//!     .bind("127.0.0.1:0")
//!     .await?;
//! println!("send requests to {}", lb.base_url());
//! # Ok(()) }
//! ```

use crate::auth::key_matches;
use crate::connections::{self, Limits};
use crate::request_guard::{self, RequestGuard};
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use futures::StreamExt;
use runpod_protocol::limits::{
    LOAD_BALANCER_DEFAULT_HEALTH_PATH, LOAD_BALANCER_NO_WORKER_TIMEOUT_MS,
    LOAD_BALANCER_PROCESSING_TIMEOUT_MS, MAX_LOAD_BALANCER_PAYLOAD_BYTES,
};
use serde_json::json;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// The header naming the worker that served a request (and asking for one).
pub const WORKER_ID_HEADER: &str = "x-runpod-worker-id";

/// On shutdown, how long requests in flight may take to finish.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// Settings of a [`LoadBalancer`]; the platform's values by default.
#[derive(Debug, Clone)]
#[must_use]
pub struct LoadBalancerBuilder {
    workers: Vec<String>,
    api_key: Option<String>,
    health_path: String,
    probe_interval: Duration,
    probe_timeout: Duration,
    no_worker_timeout: Duration,
    request_timeout: Duration,
    max_body_bytes: usize,
    max_connections: Option<usize>,
    header_timeout: Duration,
    allowed_hosts: Vec<String>,
}

impl Default for LoadBalancerBuilder {
    fn default() -> Self {
        LoadBalancerBuilder {
            workers: Vec::new(),
            api_key: None,
            health_path: LOAD_BALANCER_DEFAULT_HEALTH_PATH.into(),
            probe_interval: Duration::from_secs(1),
            probe_timeout: Duration::from_secs(2),
            no_worker_timeout: Duration::from_millis(LOAD_BALANCER_NO_WORKER_TIMEOUT_MS),
            request_timeout: Duration::from_millis(LOAD_BALANCER_PROCESSING_TIMEOUT_MS),
            max_body_bytes: MAX_LOAD_BALANCER_PAYLOAD_BYTES,
            max_connections: None,
            header_timeout: Duration::from_secs(30),
            allowed_hosts: Vec::new(),
        }
    }
}

impl LoadBalancerBuilder {
    /// Adds a worker: its base URL (`http://127.0.0.1:8001`), optionally followed by `=` and
    /// the full URL of its health path when that is on another port
    /// (`http://127.0.0.1:8001=http://127.0.0.1:9001/ping`).
    pub fn worker(mut self, spec: impl Into<String>) -> Self {
        self.workers.push(spec.into());
        self
    }

    /// The API key requests must carry; without one any request passes.
    pub fn api_key(mut self, key: impl Into<String>) -> Self {
        self.api_key = Some(key.into());
        self
    }

    /// The health path polled on workers given without a health URL (default `/ping`).
    pub fn health_path(mut self, path: impl Into<String>) -> Self {
        self.health_path = path.into();
        self
    }

    /// How often each worker's health is polled (default 1 s).
    pub fn probe_interval(mut self, every: Duration) -> Self {
        self.probe_interval = every;
        self
    }

    /// How long a request waits for a healthy worker before `400` (default 2 min).
    pub fn no_worker_timeout(mut self, d: Duration) -> Self {
        self.no_worker_timeout = d;
        self
    }

    /// How long a worker may take to answer before the request is cut with `524`
    /// (default 5.5 min).
    pub fn request_timeout(mut self, d: Duration) -> Self {
        self.request_timeout = d;
        self
    }

    /// The largest request body (default 30 MB); larger ones get `413`.
    pub fn max_body_bytes(mut self, n: usize) -> Self {
        self.max_body_bytes = n;
        self
    }

    /// Connections served at once (default: the open-files limit less 128); at the cap a new
    /// connection closes the oldest idle one, or gets `503` when none is idle.
    pub fn max_connections(mut self, n: usize) -> Self {
        self.max_connections = Some(n.max(1));
        self
    }

    /// How long a connection may take to send a request's headers, or stay idle between
    /// requests, before it is closed (default 30 s).
    pub fn header_timeout(mut self, d: Duration) -> Self {
        self.header_timeout = d;
        self
    }

    /// Also serves requests whose `Host` is `name`, as [`crate::LocalEndpointBuilder::allowed_host`]
    /// does for an endpoint (IP addresses and `localhost` always are).
    pub fn allowed_host(mut self, name: impl Into<String>) -> Self {
        self.allowed_hosts.push(name.into());
        self
    }

    /// Starts the balancer on `addr` (port 0 picks a free one) and its health polling.
    /// Fails with `InvalidInput` when a worker URL is not an `http(s)` URL.
    pub async fn bind(self, addr: impl tokio::net::ToSocketAddrs) -> std::io::Result<LoadBalancer> {
        let invalid = |m: String| std::io::Error::new(std::io::ErrorKind::InvalidInput, m);
        let mut backends = Vec::new();
        for (i, spec) in self.workers.iter().enumerate() {
            let (app, health) = match spec.split_once('=') {
                Some((a, h)) => (a.trim().trim_end_matches('/').to_owned(), h.trim().to_owned()),
                None => {
                    let a = spec.trim().trim_end_matches('/').to_owned();
                    let h = format!("{a}{}", self.health_path);
                    (a, h)
                }
            };
            for u in [&app, &health] {
                match url::Url::parse(u) {
                    Ok(p) if matches!(p.scheme(), "http" | "https") && p.host().is_some() => {}
                    _ => return Err(invalid(format!("worker {spec:?}: {u:?} is not an http(s) URL"))),
                }
            }
            backends.push(Backend {
                id: format!("w{}", i + 1),
                app,
                health,
                state: Mutex::new(BackendState { probe: Probe::Unknown, first_initializing: None }),
            });
        }
        if backends.is_empty() {
            return Err(invalid("a load balancer needs at least one worker".into()));
        }
        let http = reqwest::Client::builder()
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| std::io::Error::other(format!("cannot build the HTTP client: {e}")))?;
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let local = listener.local_addr()?;
        if self.api_key.is_none() {
            tracing::warn!("load balancer without an API key: accepting requests with any key or none");
        }
        let shared = Arc::new(Lb {
            cfg: self,
            backends,
            next: AtomicUsize::new(0),
            changed: Notify::new(),
            http,
            shutdown: CancellationToken::new(),
            served: AtomicU64::new(0),
        });
        tokio::spawn(probe_loop(shared.clone()));
        let guard = RequestGuard::new(&shared.cfg.allowed_hosts, "runpod-local load-balance");
        let app = Router::new()
            .fallback(forward)
            .with_state(shared.clone())
            .layer(axum::middleware::from_fn_with_state(guard, request_guard::guard));
        let limits = Limits {
            max_connections: shared.cfg.max_connections,
            header_timeout: shared.cfg.header_timeout,
            shutdown_grace: SHUTDOWN_GRACE,
            shutdown: shared.shutdown.clone(),
        };
        let server = tokio::spawn(connections::serve_with(listener, app, limits));
        Ok(LoadBalancer { addr: local, shared, server: Some(server) })
    }
}

/// A running local load-balancing endpoint. Dropping it or [`LoadBalancer::shutdown`] stops it.
pub struct LoadBalancer {
    addr: SocketAddr,
    shared: Arc<Lb>,
    server: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for LoadBalancer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoadBalancer").field("addr", &self.addr).finish_non_exhaustive()
    }
}

impl LoadBalancer {
    /// A builder with the platform's values.
    pub fn builder() -> LoadBalancerBuilder {
        LoadBalancerBuilder::default()
    }

    /// `http://HOST:PORT`: requests to `{base_url}/{path}` go to a worker's `/{path}`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Each worker's id (`w1`, `w2`, ...), base URL and health as last polled: `"healthy"`,
    /// `"initializing"`, `"unhealthy"` or `"unknown"` (not polled yet).
    pub fn workers(&self) -> Vec<(String, String, &'static str)> {
        self.shared.backends.iter().map(|b| (b.id.clone(), b.app.clone(), b.probe().name())).collect()
    }

    /// Requests answered by a worker so far.
    pub fn served(&self) -> u64 {
        self.shared.served.load(Ordering::Relaxed)
    }

    /// Stops accepting requests and returns once the server has stopped (requests in flight
    /// get at most 5 s to finish).
    pub async fn shutdown(mut self) {
        self.shared.shutdown.cancel();
        if let Some(s) = self.server.take() {
            let _ = tokio::time::timeout(SHUTDOWN_GRACE + Duration::from_secs(1), s).await;
        }
    }
}

impl Drop for LoadBalancer {
    fn drop(&mut self) {
        self.shared.shutdown.cancel();
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Probe {
    Unknown,
    Initializing,
    Healthy,
    Unhealthy,
}

impl Probe {
    fn name(self) -> &'static str {
        match self {
            Probe::Unknown => "unknown",
            Probe::Initializing => "initializing",
            Probe::Healthy => "healthy",
            Probe::Unhealthy => "unhealthy",
        }
    }
}

struct BackendState {
    probe: Probe,
    /// When the worker first answered `204`, until its first `200` (its cold start).
    first_initializing: Option<Instant>,
}

struct Backend {
    id: String,
    app: String,
    health: String,
    state: Mutex<BackendState>,
}

impl Backend {
    fn probe(&self) -> Probe {
        self.state.lock().unwrap_or_else(|p| p.into_inner()).probe
    }

    /// Records a health answer; true when the state changed.
    fn record(&self, probe: Probe, why: &str) -> bool {
        let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if st.probe == probe {
            return false;
        }
        st.probe = probe;
        match probe {
            Probe::Initializing => {
                st.first_initializing.get_or_insert_with(Instant::now);
                tracing::info!(worker = %self.id, url = %self.app, "worker initializing (204)");
            }
            Probe::Healthy => match st.first_initializing.take() {
                Some(t) => tracing::info!(
                    worker = %self.id, url = %self.app, cold_start_ms = t.elapsed().as_millis() as u64,
                    "worker healthy (cold start: first 204 to first 200)"
                ),
                None => tracing::info!(worker = %self.id, url = %self.app, "worker healthy"),
            },
            Probe::Unhealthy => tracing::warn!(worker = %self.id, url = %self.app, "worker unhealthy: {why}"),
            Probe::Unknown => {}
        }
        true
    }
}

struct Lb {
    cfg: LoadBalancerBuilder,
    backends: Vec<Backend>,
    next: AtomicUsize,
    /// Woken when a worker's health changes.
    changed: Notify,
    http: reqwest::Client,
    shutdown: CancellationToken,
    served: AtomicU64,
}

/// Polls every worker's health path each `probe_interval` until shutdown.
async fn probe_loop(lb: Arc<Lb>) {
    let mut tick = tokio::time::interval(lb.cfg.probe_interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = lb.shutdown.cancelled() => return,
        }
        let probes = lb.backends.iter().map(|b| probe(&lb, b));
        if futures::future::join_all(probes).await.into_iter().any(|changed| changed) {
            lb.changed.notify_waiters();
        }
    }
}

/// Polls one worker's health path and records the answer; true when its state changed.
async fn probe(lb: &Lb, b: &Backend) -> bool {
    let answer = lb.http.get(&b.health).timeout(lb.cfg.probe_timeout).send().await;
    let (probe, why) = match answer {
        Ok(r) if r.status() == StatusCode::OK => (Probe::Healthy, String::new()),
        Ok(r) if r.status() == StatusCode::NO_CONTENT => (Probe::Initializing, String::new()),
        Ok(r) => (Probe::Unhealthy, format!("health answered {}", r.status())),
        Err(e) => (Probe::Unhealthy, format!("no health answer ({})", e.without_url())),
    };
    b.record(probe, &why)
}

fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, Json(json!({"error": message.into()}))).into_response()
}

/// What a request asked for in `X-Runpod-Worker-Id`.
enum Affinity<'a> {
    None,
    Prefer(&'a str),
    Strict(&'a str),
}

fn affinity(headers: &HeaderMap) -> Affinity<'_> {
    let Some(v) = headers.get(WORKER_ID_HEADER).and_then(|v| v.to_str().ok()).map(str::trim) else {
        return Affinity::None;
    };
    if let Some(id) = v.strip_prefix("strict-resume ").or_else(|| v.strip_prefix("strict ")) {
        Affinity::Strict(id.trim())
    } else if v.is_empty() {
        Affinity::None
    } else {
        Affinity::Prefer(v)
    }
}

/// The worker for the next request, waiting up to the no-worker timeout for a healthy one.
async fn pick<'a>(lb: &'a Lb, wanted: &Affinity<'_>) -> Result<&'a Backend, Response> {
    let deadline = Instant::now() + lb.cfg.no_worker_timeout;
    if let Affinity::Strict(id) = wanted {
        if !lb.backends.iter().any(|b| b.id == *id) {
            return Err(error(StatusCode::NOT_FOUND, "affinity_worker_gone"));
        }
    }
    loop {
        let notified = lb.changed.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        let healthy = |b: &&Backend| b.probe() == Probe::Healthy;
        let chosen = match wanted {
            Affinity::Strict(id) => lb.backends.iter().filter(|b| b.id == *id).find(healthy),
            Affinity::Prefer(id) => {
                lb.backends.iter().filter(|b| b.id == *id).find(healthy).or_else(|| round_robin(lb))
            }
            Affinity::None => round_robin(lb),
        };
        if let Some(b) = chosen {
            return Ok(b);
        }
        tokio::select! {
            _ = &mut notified => {}
            _ = tokio::time::sleep_until(deadline) => {
                let message = match wanted {
                    Affinity::Strict(_) => "worker_timeout",
                    _ => "no workers available",
                };
                return Err(error(StatusCode::BAD_REQUEST, message));
            }
            _ = lb.shutdown.cancelled() => return Err(error(StatusCode::SERVICE_UNAVAILABLE, "the load balancer is shutting down")),
        }
    }
}

/// The next of the healthy workers, in turn.
fn round_robin(lb: &Lb) -> Option<&Backend> {
    let healthy: Vec<&Backend> = lb.backends.iter().filter(|b| b.probe() == Probe::Healthy).collect();
    if healthy.is_empty() {
        return None;
    }
    Some(healthy[lb.next.fetch_add(1, Ordering::Relaxed) % healthy.len()])
}

/// Headers that belong to one connection, never forwarded (RFC 9110 7.6.1), with `host`
/// (the worker's is its own).
fn hop_by_hop(name: &HeaderName) -> bool {
    matches!(
        name.as_str(),
        "connection"
            | "proxy-connection"
            | "keep-alive"
            | "proxy-authenticate"
            | "proxy-authorization"
            | "te"
            | "trailer"
            | "transfer-encoding"
            | "upgrade"
            | "host"
    )
}

/// The headers to pass on: all but the hop-by-hop ones, those the `Connection` header names
/// included, and the `skip` ones.
fn end_to_end<'a>(
    headers: &'a HeaderMap,
    skip: &'a [HeaderName],
) -> impl Iterator<Item = (&'a HeaderName, &'a HeaderValue)> + 'a {
    let named: Vec<String> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|n| n.trim().to_ascii_lowercase())
        .filter(|n| !n.is_empty())
        .collect();
    headers.iter().filter(move |(name, _)| {
        !hop_by_hop(name) && !skip.contains(name) && !named.iter().any(|n| n == name.as_str())
    })
}

/// Every request: checked, then forwarded to a healthy worker and its answer streamed back.
async fn forward(State(lb): State<Arc<Lb>>, req: Request) -> Response {
    if let Some(key) = &lb.cfg.api_key {
        match req.headers().get(header::AUTHORIZATION).map(|v| v.to_str().unwrap_or_default()) {
            None => {
                return error(
                    StatusCode::UNAUTHORIZED,
                    "missing Authorization header: send 'Authorization: Bearer <API key>'",
                )
            }
            Some(v) if !key_matches(v, key) => {
                return error(StatusCode::UNAUTHORIZED, "wrong API key in the Authorization header")
            }
            Some(_) => {}
        }
    }
    let limit = lb.cfg.max_body_bytes;
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return error(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("the request body is over the {limit}-byte limit"),
        );
    }
    let backend = match pick(&lb, &affinity(req.headers())).await {
        Ok(b) => b,
        Err(refusal) => return refusal,
    };

    let (parts, body) = req.into_parts();
    let path = parts.uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
    let url = format!("{}{path}", backend.app);
    let mut headers = HeaderMap::new();
    let skip = [header::AUTHORIZATION, HeaderName::from_static(WORKER_ID_HEADER)];
    for (name, value) in end_to_end(&parts.headers, &skip) {
        headers.append(name.clone(), value.clone());
    }
    // The body is streamed to the worker, counted on the way: past the limit the upload
    // stops and the request gets 413.
    let over = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let counted = {
        let over = over.clone();
        let mut seen = 0usize;
        body.into_data_stream().map(move |chunk| {
            let chunk = chunk.map_err(std::io::Error::other)?;
            seen += chunk.len();
            if seen > limit {
                over.store(true, Ordering::SeqCst);
                return Err(std::io::Error::other("request body over the limit"));
            }
            Ok(chunk)
        })
    };
    let deadline = Instant::now() + lb.cfg.request_timeout;
    let send = lb
        .http
        .request(parts.method.clone(), &url)
        .headers(headers)
        .body(reqwest::Body::wrap_stream(counted))
        .send();
    let answer = tokio::select! {
        r = send => r,
        _ = tokio::time::sleep_until(deadline) => {
            tracing::warn!(worker = %backend.id, "{} {path}: no answer within {} s: 524", parts.method, lb.cfg.request_timeout.as_secs());
            return error(
                StatusCode::from_u16(524).expect("524 is a valid status"),
                format!("the worker did not answer within {} s", lb.cfg.request_timeout.as_secs_f64()),
            );
        }
    };
    let answer = match answer {
        Ok(a) => a,
        Err(_) if over.load(Ordering::SeqCst) => {
            return error(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("the request body is over the {limit}-byte limit"),
            )
        }
        Err(e) => {
            // One failed request does not take a worker out: its health path, asked at once,
            // decides (docs/load-balancing.md).
            tracing::warn!(worker = %backend.id, "{} {path}: request failed ({}); probing its health now", parts.method, e.without_url());
            if probe(&lb, backend).await {
                lb.changed.notify_waiters();
            }
            return error(StatusCode::BAD_GATEWAY, format!("worker {} could not be reached", backend.id));
        }
    };
    lb.served.fetch_add(1, Ordering::Relaxed);
    tracing::debug!(worker = %backend.id, status = answer.status().as_u16(), "{} {path}", parts.method);
    let mut response = Response::builder().status(answer.status().as_u16());
    // `Content-Length` stays: an answer cut short then ends before it, which a client sees.
    for (name, value) in end_to_end(answer.headers(), &[]) {
        response = response.header(name, value);
    }
    response = response.header(WORKER_ID_HEADER, HeaderValue::from_str(&backend.id).expect("ids are ASCII"));
    let id = backend.id.clone();
    let body = cut_at(answer.bytes_stream(), deadline, move || {
        tracing::warn!(worker = %id, "answer still streaming at the request timeout: connection cut");
    });
    response.body(Body::from_stream(body)).unwrap_or_else(|e| error(StatusCode::BAD_GATEWAY, e.to_string()))
}

/// The worker's answer streamed back, ended by an error at `deadline` (calling `on_cut`): the
/// connection is then closed without the answer's end (the last chunk of a chunked answer, or
/// the rest of a `Content-Length`), so the client sees a truncated answer, not a short one.
fn cut_at(
    body: impl futures::Stream<Item = reqwest::Result<bytes::Bytes>> + Send + Unpin + 'static,
    deadline: Instant,
    on_cut: impl FnOnce() + Send + 'static,
) -> impl futures::Stream<Item = std::io::Result<bytes::Bytes>> + Send + 'static {
    let timer = Box::pin(tokio::time::sleep_until(deadline));
    futures::stream::unfold((body, timer, Some(on_cut)), |(mut body, mut timer, on_cut)| async move {
        let on_cut = on_cut?;
        tokio::select! {
            item = body.next() => {
                let item = item?.map_err(std::io::Error::other);
                Some((item, (body, timer, Some(on_cut))))
            }
            _ = &mut timer => {
                on_cut();
                let cut = std::io::Error::new(std::io::ErrorKind::TimedOut, "the request timeout passed");
                Some((Err(cut), (body, timer, None)))
            }
        }
    })
}

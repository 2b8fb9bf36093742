//! Load-balancing mode: the worker is an HTTP server that the platform's load balancer sends
//! requests to directly (`https://{endpoint_id}.api.runpod.ai/{path}`), with no queue.
//!
//! The platform's contract (docs/load-balancing.md): the application listens on `PORT`
//! (default 80), the balancer polls `HEALTH_CHECK_PATH` (default `/ping`) on `PORT_HEALTH`
//! (default `PORT`) and reads `200` as healthy, `204` as initializing and anything else as
//! unhealthy. [`LoadBalancingWorker`] keeps that contract around your axum [`Router`] (or a
//! typed [`Handler`] on a route of your choice, [`handler_router`]):
//!
//! - the ports are bound first, and the health path answers `204` while the fitness checks
//!   and your start-up future (the model load) run, then `200`;
//! - a failed fitness check or start-up answers `503` with the reason for a short while
//!   (default 5 s) and the worker exits non-zero;
//! - on SIGTERM/SIGINT the health path answers `503`, no connection is accepted any more,
//!   requests in flight finish within the grace period (default 30 s), then it returns `Ok`.
//!
//! ```no_run
//! use runpod_worker::load_balancing::{handler_router, LoadBalancingWorker};
//! use runpod_worker::{handler_fn, Job, JobContext};
//!
//! async fn double(job: Job<u64>, _ctx: JobContext) -> Result<u64, String> {
//!     Ok(job.input * 2)
//! }
//!
//! # async fn run() -> Result<(), runpod_worker::WorkerError> {
//! LoadBalancingWorker::from_env()?
//!     .serve(async {
//!         // Load the model here: /ping answers 204 meanwhile.
//!         Ok::<_, std::convert::Infallible>(handler_router("/double", handler_fn(double)))
//!     })
//!     .await
//! # }
//! ```
//!
//! `curl -XPOST localhost:80/double -d 21` then answers `42`.

use crate::context::{JobContext, Outbox};
use crate::fitness::{self, FitnessCheck};
use crate::sender::Post;
use crate::{decode_input, ConfigError, Failure, Handler, Job, StreamError, WorkerError};
use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use futures::future::BoxFuture;
use futures::FutureExt;
use runpod_protocol::limits::{
    LOAD_BALANCER_DEFAULT_HEALTH_PATH, LOAD_BALANCER_DEFAULT_PORT, MAX_LOAD_BALANCER_PAYLOAD_BYTES,
};
use serde_json::{json, Value};
use std::fmt::Display;
use std::future::Future;
use std::net::SocketAddr;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio::task::{JoinHandle, JoinSet};
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;
use tracing::Instrument;

/// A load-balancing worker's settings; [`LoadBalancingWorker::serve`] runs it.
#[must_use]
pub struct LoadBalancingWorker {
    host: String,
    port: u16,
    /// `None`: the health path is served on the application port.
    health_port: Option<u16>,
    health_path: String,
    fitness: Vec<FitnessCheck>,
    system_checks: bool,
    shutdown_grace: Duration,
    unfit_linger: Duration,
    shutdown: Option<BoxFuture<'static, ()>>,
}

impl std::fmt::Debug for LoadBalancingWorker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoadBalancingWorker")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("health_port", &self.health_port)
            .field("health_path", &self.health_path)
            .finish_non_exhaustive()
    }
}

impl Default for LoadBalancingWorker {
    fn default() -> Self {
        LoadBalancingWorker {
            host: "0.0.0.0".into(),
            port: LOAD_BALANCER_DEFAULT_PORT,
            health_port: None,
            health_path: LOAD_BALANCER_DEFAULT_HEALTH_PATH.into(),
            fitness: Vec::new(),
            system_checks: true,
            shutdown_grace: Duration::from_secs(30),
            unfit_linger: Duration::from_secs(5),
            shutdown: None,
        }
    }
}

impl LoadBalancingWorker {
    /// The platform's settings: `PORT` (default 80), `PORT_HEALTH` (default `PORT`),
    /// `HEALTH_CHECK_PATH` (default `/ping`), on all interfaces unless `LISTEN_HOST` names one
    /// (`127.0.0.1` for a local test; the platform's balancer needs `0.0.0.0`, the default).
    pub fn from_env() -> Result<LoadBalancingWorker, ConfigError> {
        Self::from_vars(|k| std::env::var(k).ok())
    }

    fn from_vars(var: impl Fn(&str) -> Option<String>) -> Result<LoadBalancingWorker, ConfigError> {
        let port = |name: &'static str| -> Result<Option<u16>, ConfigError> {
            match var(name).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty()) {
                None => Ok(None),
                Some(v) => v.parse::<u16>().map(Some).map_err(|_| ConfigError::Invalid {
                    var: name,
                    reason: format!("expected a port number, got {v:?}"),
                }),
            }
        };
        let mut w = LoadBalancingWorker::default();
        if let Some(host) = var("LISTEN_HOST").map(|h| h.trim().to_owned()).filter(|h| !h.is_empty()) {
            w.host = host;
        }
        if let Some(p) = port("PORT")? {
            w.port = p;
        }
        w.health_port = port("PORT_HEALTH")?.filter(|p| *p != w.port);
        if let Some(path) = var("HEALTH_CHECK_PATH").filter(|p| !p.trim().is_empty()) {
            if !path.starts_with('/') {
                return Err(ConfigError::Invalid {
                    var: "HEALTH_CHECK_PATH",
                    reason: format!("expected a path starting with '/', got {path:?}"),
                });
            }
            w.health_path = path;
        }
        Ok(w)
    }

    /// The address to listen on (default `0.0.0.0`; the platform's balancer connects from
    /// outside the container).
    pub fn host(mut self, host: impl Into<String>) -> Self {
        self.host = host.into();
        self
    }

    /// The application port (`PORT`); 0 picks a free one.
    pub fn port(mut self, port: u16) -> Self {
        self.port = port;
        self
    }

    /// A separate port for the health path (`PORT_HEALTH`); 0 picks a free one.
    pub fn health_port(mut self, port: u16) -> Self {
        self.health_port = Some(port);
        self
    }

    /// The health path (`HEALTH_CHECK_PATH`, default `/ping`).
    pub fn health_path(mut self, path: impl Into<String>) -> Self {
        self.health_path = path.into();
        self
    }

    /// Adds a fitness check, run before the start-up future (see [`crate::fitness`]).
    pub fn fitness_check<F, Fut, E>(mut self, name: impl Into<String>, check: F) -> Self
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = Result<(), E>> + Send + 'static,
        E: Display,
    {
        self.fitness.push(FitnessCheck::new(name, check));
        self
    }

    /// Adds a ready-made fitness check.
    pub fn fitness(mut self, check: FitnessCheck) -> Self {
        self.fitness.push(check);
        self
    }

    /// Runs the system checks after the program's own (default `true`).
    pub fn system_checks(mut self, on: bool) -> Self {
        self.system_checks = on;
        self
    }

    /// How long requests in flight may run on after SIGTERM/SIGINT (default 30 s).
    pub fn shutdown_grace(mut self, grace: Duration) -> Self {
        self.shutdown_grace = grace;
        self
    }

    /// How long the health path answers `503` after a failed fitness check or start-up,
    /// before the worker exits (default 5 s).
    pub fn unfit_linger(mut self, linger: Duration) -> Self {
        self.unfit_linger = linger;
        self
    }

    /// Shuts down gracefully when `signal` completes, instead of on SIGTERM/SIGINT.
    pub fn shutdown_on(mut self, signal: impl Future<Output = ()> + Send + 'static) -> Self {
        self.shutdown = Some(Box::pin(signal));
        self
    }

    /// Binds the ports (so that a port 0 can be read back before serving).
    pub async fn bind(self) -> Result<BoundWorker, WorkerError> {
        let io = |what| move |source| WorkerError::Io { what, source };
        let app =
            TcpListener::bind((self.host.as_str(), self.port)).await.map_err(io("cannot listen on PORT"))?;
        let health = match self.health_port {
            Some(p) => Some(
                TcpListener::bind((self.host.as_str(), p))
                    .await
                    .map_err(io("cannot listen on PORT_HEALTH"))?,
            ),
            None => None,
        };
        Ok(BoundWorker { settings: self, app, health })
    }

    /// Binds, then serves: see [`BoundWorker::serve`].
    pub async fn serve<F, E>(self, startup: F) -> Result<(), WorkerError>
    where
        F: Future<Output = Result<Router, E>> + Send,
        E: Display,
    {
        self.bind().await?.serve(startup).await
    }
}

/// A [`LoadBalancingWorker`] with its ports bound.
#[derive(Debug)]
pub struct BoundWorker {
    settings: LoadBalancingWorker,
    app: TcpListener,
    health: Option<TcpListener>,
}

impl BoundWorker {
    /// The application's address.
    pub fn app_addr(&self) -> SocketAddr {
        self.app.local_addr().expect("a bound listener has an address")
    }

    /// The address the health path is served on (the application's, unless separate).
    pub fn health_addr(&self) -> SocketAddr {
        self.health.as_ref().unwrap_or(&self.app).local_addr().expect("a bound listener has an address")
    }

    /// Serves until SIGTERM/SIGINT (or the `shutdown_on` signal): the health path answers `204`
    /// while the fitness checks and `startup` run, then every other request goes to the
    /// router `startup` returned and the health path answers `200`.
    ///
    /// Returns `Ok(())` after a graceful shutdown, [`WorkerError::Unfit`] after a failed
    /// fitness check and [`WorkerError::Startup`] when `startup` failed.
    pub async fn serve<F, E>(self, startup: F) -> Result<(), WorkerError>
    where
        F: Future<Output = Result<Router, E>> + Send,
        E: Display,
    {
        let BoundWorker { mut settings, app, health } = self;
        let began = Instant::now();
        let state = Arc::new(Lb {
            health: Mutex::new(Health::Initializing),
            app: OnceLock::new(),
            in_flight: AtomicUsize::new(0),
        });
        let path = settings.health_path.clone();
        let (app_addr, health_addr) = (
            app.local_addr().ok(),
            health.as_ref().and_then(|h| h.local_addr().ok()).or(app.local_addr().ok()),
        );
        let stop = CancellationToken::new();
        let mut servers = JoinSet::new();
        let app_router = match &health {
            None => Router::new().route(&path, get(ping)),
            Some(_) => Router::new(),
        }
        .fallback(forward)
        .with_state(state.clone());
        servers.spawn(serve_listener(app, app_router, stop.clone()));
        if let Some(h) = health {
            let router = Router::new().route(&path, get(ping)).with_state(state.clone());
            servers.spawn(serve_listener(h, router, stop.clone()));
        }
        tracing::info!(
            "load-balancing worker: application on {}, health on {}{path} (204 until ready)",
            shown(app_addr),
            shown(health_addr)
        );

        let mut signal = settings.shutdown.take().unwrap_or_else(|| Box::pin(crate::shutdown::signal()));
        let mut checks = std::mem::take(&mut settings.fitness);
        if settings.system_checks {
            checks.extend(fitness::system_checks());
        }
        let start = async {
            fitness::run_checks(checks).await?;
            startup.await.map_err(|e| WorkerError::Startup(e.to_string()))
        };
        let started = tokio::select! {
            r = start => r,
            _ = &mut signal => {
                tracing::info!("stopped during start-up");
                stop.cancel();
                while servers.join_next().await.is_some() {}
                return Ok(());
            }
        };
        match started {
            Ok(router) => {
                let _ = state.app.set(router);
                state.set(Health::Ready);
                tracing::info!("ready after {} ms: {path} answers 200", began.elapsed().as_millis());
            }
            Err(e) => {
                tracing::error!(
                    "{e}; {path} answers 503 for {} ms, then the worker exits",
                    settings.unfit_linger.as_millis()
                );
                state.set(Health::Unhealthy(e.to_string()));
                tokio::select! {
                    _ = tokio::time::sleep(settings.unfit_linger) => {}
                    _ = &mut signal => {}
                }
                stop.cancel();
                servers.abort_all();
                return Err(e);
            }
        }

        signal.await;
        state.set(Health::Draining);
        stop.cancel();
        let n = state.in_flight.load(Ordering::SeqCst);
        tracing::info!("shutting down: no new connections, {n} request(s) in flight");
        let drained = tokio::time::timeout(settings.shutdown_grace, async {
            while servers.join_next().await.is_some() {}
        })
        .await
        .is_ok();
        if !drained {
            tracing::warn!(
                "grace period over: {} request(s) cut short",
                state.in_flight.load(Ordering::SeqCst)
            );
            servers.abort_all();
        }
        tracing::info!("worker stopped");
        Ok(())
    }
}

fn shown(addr: Option<SocketAddr>) -> String {
    addr.map(|a| format!("http://{a}")).unwrap_or_else(|| "?".into())
}

async fn serve_listener(listener: TcpListener, router: Router, stop: CancellationToken) {
    let serve = axum::serve(listener, router).with_graceful_shutdown(stop.cancelled_owned());
    if let Err(e) = serve.await {
        tracing::error!("the HTTP server stopped: {e}");
    }
}

/// What the health path says.
#[derive(Debug, Clone)]
enum Health {
    Initializing,
    Ready,
    Unhealthy(String),
    Draining,
}

struct Lb {
    health: Mutex<Health>,
    /// The program's router, once its start-up has finished.
    app: OnceLock<Router>,
    in_flight: AtomicUsize,
}

impl Lb {
    fn set(&self, h: Health) {
        *self.health.lock().unwrap_or_else(|p| p.into_inner()) = h;
    }
}

/// The health path: 204 initializing, 200 ready, 503 unhealthy or shutting down.
async fn ping(State(st): State<Arc<Lb>>) -> Response {
    let h = st.health.lock().unwrap_or_else(|p| p.into_inner()).clone();
    match h {
        Health::Initializing => StatusCode::NO_CONTENT.into_response(),
        Health::Ready => Json(json!({"status": "healthy"})).into_response(),
        Health::Unhealthy(reason) => {
            (StatusCode::SERVICE_UNAVAILABLE, Json(json!({"status": "unhealthy", "reason": reason})))
                .into_response()
        }
        Health::Draining => {
            (StatusCode::SERVICE_UNAVAILABLE, Json(json!({"status": "shutting down"}))).into_response()
        }
    }
}

/// Every other request: to the program's router once it is ready, else `503`.
async fn forward(State(st): State<Arc<Lb>>, req: Request) -> Response {
    let Some(router) = st.app.get().cloned() else {
        return error(StatusCode::SERVICE_UNAVAILABLE, "the worker is starting up".into());
    };
    let _counted = InFlight::new(&st.in_flight);
    router.oneshot(req).await.unwrap_or_else(|never| match never {})
}

/// Counts a request in flight until dropped (also when its client goes away).
struct InFlight<'a>(&'a AtomicUsize);

impl<'a> InFlight<'a> {
    fn new(n: &'a AtomicUsize) -> Self {
        n.fetch_add(1, Ordering::SeqCst);
        InFlight(n)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

fn error(status: StatusCode, message: String) -> Response {
    (status, Json(json!({"error": message}))).into_response()
}

/// A router with one route, `POST path`, that runs `handler` on each request: the body is
/// the handler's `Input` as JSON, the answer its `Output` as JSON (`200`).
///
/// - A body that is not JSON or does not fit `Input` gets `400` naming the field
///   (`{"error": "..."}`); an `Err` or a panic of the handler gets `500` with the
///   [`Failure`]'s `{"error": message, "error_type": type}`.
/// - Chunks the handler streams (`ctx.stream`) turn the answer into
///   `application/x-ndjson`: one line per chunk as it comes, then a line with the output
///   unless it is `null` or `[]` (what a [`stream_fn`](crate::stream_fn) returns), or
///   `{"error": ...}` when the handler fails after streaming.
/// - A client that goes away cancels the job (`ctx.cancellation_token()` fires).
/// - The request id is the `X-Request-Id` header when sent, else a random one; log lines of
///   the request carry it. Progress updates are logged at DEBUG.
/// - Bodies up to 30 MB, the platform's limit for load-balancing endpoints.
pub fn handler_router<H: Handler>(path: &str, handler: H) -> Router {
    let handler = Arc::new(handler);
    Router::new()
        .route(
            path,
            post(move |headers: HeaderMap, body: Bytes| {
                let handler = handler.clone();
                async move { run_request(handler, &headers, body).await }
            }),
        )
        .layer(DefaultBodyLimit::max(MAX_LOAD_BALANCER_PAYLOAD_BYTES))
}

/// Aborts the handler task when the request is dropped (the client went away).
struct AbortOnDrop<T>(JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// What the handler task ended with: its result, or why it did not return (a panic).
type Outcome<O, E> = Result<Result<O, E>, String>;

async fn run_request<H: Handler>(handler: Arc<H>, headers: &HeaderMap, body: Bytes) -> Response {
    let id = headers
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|s| !s.is_empty() && s.len() <= 200)
        .map(str::to_owned)
        .unwrap_or_else(|| format!("lb-{:016x}", rand::random::<u64>()));
    let span = tracing::info_span!("job", job_id = %id);
    let value: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => return error(StatusCode::BAD_REQUEST, format!("the request body is not JSON: {e}")),
    };
    let input = match decode_input::<H::Input>(value) {
        Ok(i) => i,
        Err(e) => {
            tracing::warn!(parent: &span, "{e}");
            return error(StatusCode::BAD_REQUEST, e.to_string());
        }
    };
    let (tx, mut rx) = mpsc::unbounded_channel();
    let token = CancellationToken::new();
    let worker_id = std::env::var("RUNPOD_POD_ID").unwrap_or_else(|_| "local".into());
    let ctx = JobContext::new(
        id.clone(),
        worker_id,
        Outbox::Sender(tx),
        token.clone(),
        MAX_LOAD_BALANCER_PAYLOAD_BYTES,
        None,
        span.clone(),
    );
    let job = Job::new(id, input);
    let started = Instant::now();
    let run = async move {
        match AssertUnwindSafe(handler.handle(job, ctx)).catch_unwind().await {
            Ok(r) => Ok(r),
            Err(p) => Err(format!("the handler panicked: {}", crate::executor::panic_message(&*p))),
        }
    };
    let mut task = AbortOnDrop(tokio::spawn(run.instrument(span.clone())));
    let cancel_on_drop = token.drop_guard();
    let mut open = true;
    loop {
        tokio::select! {
            post = rx.recv(), if open => match post {
                Some(Post::Progress(v)) => tracing::debug!(parent: &span, "progress: {v}"),
                Some(Post::Chunk(v, ack)) => {
                    return streamed(v, ack, rx, task, cancel_on_drop, span, started);
                }
                Some(_) => {}
                None => open = false,
            },
            r = &mut task.0 => {
                let outcome: Outcome<H::Output, H::Error> = r.unwrap_or_else(|e| Err(format!("the handler task failed: {e}")));
                cancel_on_drop.disarm();
                return final_answer(outcome, &span, started);
            }
        }
    }
}

/// The answer when the handler returned before streaming anything.
fn final_answer<O: serde::Serialize, E: Into<Failure>>(
    outcome: Outcome<O, E>,
    span: &tracing::Span,
    started: Instant,
) -> Response {
    let elapsed_ms = started.elapsed().as_millis() as u64;
    let failed = |f: Failure| {
        tracing::error!(parent: span, elapsed_ms, kind = %f.error_type, "request failed: {}", f.error_message);
        failure(StatusCode::INTERNAL_SERVER_ERROR, &f)
    };
    match outcome {
        Ok(Ok(out)) => match serde_json::to_vec(&out) {
            Ok(body) => {
                tracing::info!(parent: span, elapsed_ms, "request completed");
                ([(header::CONTENT_TYPE, HeaderValue::from_static("application/json"))], body).into_response()
            }
            Err(e) => failed(Failure::new(
                "SerializeError",
                format!("the handler's output does not serialize to JSON: {e}"),
            )),
        },
        Ok(Err(e)) => failed(e.into()),
        Err(message) => failed(Failure::new("Panic", message)),
    }
}

/// `{"error": message, "error_type": type}` with `status`.
fn failure(status: StatusCode, f: &Failure) -> Response {
    (status, Json(json!({"error": f.error_message, "error_type": f.error_type}))).into_response()
}

/// Switches to an NDJSON answer at the first chunk and pumps the rest into it.
fn streamed<O: serde::Serialize + Send + 'static, E: Into<Failure> + Send + 'static>(
    first: Value,
    ack: tokio::sync::oneshot::Sender<Result<(), StreamError>>,
    mut rx: mpsc::UnboundedReceiver<Post>,
    mut task: AbortOnDrop<Outcome<O, E>>,
    cancel_on_drop: tokio_util::sync::DropGuard,
    span: tracing::Span,
    started: Instant,
) -> Response {
    let (out, mut lines) = mpsc::channel::<Bytes>(16);
    let line = |v: &Value| Bytes::from(format!("{v}\n"));
    let pump = async move {
        // Dropped when the pump ends early (the client went away): the job is cancelled.
        let cancel_on_drop = cancel_on_drop;
        let delivered = out.send(line(&first)).await.is_ok();
        let _ = ack.send(if delivered { Ok(()) } else { Err(StreamError::Closed) });
        if !delivered {
            return;
        }
        let mut open = true;
        loop {
            tokio::select! {
                post = rx.recv(), if open => match post {
                    Some(Post::Chunk(v, ack)) => {
                        let ok = out.send(line(&v)).await.is_ok();
                        let _ = ack.send(if ok { Ok(()) } else { Err(StreamError::Closed) });
                        if !ok {
                            return;
                        }
                    }
                    Some(Post::Progress(v)) => tracing::debug!("progress: {v}"),
                    Some(_) => {}
                    None => open = false,
                },
                r = &mut task.0 => {
                    let elapsed_ms = started.elapsed().as_millis() as u64;
                    let last = match r.unwrap_or_else(|e| Err(format!("the handler task failed: {e}"))) {
                        Ok(Ok(output)) => match serde_json::to_value(output) {
                            Ok(Value::Null) => None,
                            Ok(Value::Array(a)) if a.is_empty() => None,
                            Ok(v) => Some(v),
                            Err(e) => Some(json!({"error": format!("the handler's output does not serialize to JSON: {e}")})),
                        },
                        Ok(Err(e)) => {
                            let f: Failure = e.into();
                            Some(json!({"error": f.error_message, "error_type": f.error_type}))
                        }
                        Err(message) => Some(json!({"error": message})),
                    };
                    match last.as_ref().and_then(|v| v.get("error")) {
                        Some(e) => tracing::error!(elapsed_ms, "streamed request failed: {e}"),
                        None => tracing::info!(elapsed_ms, "streamed request completed"),
                    }
                    if let Some(v) = last {
                        let _ = out.send(line(&v)).await;
                    }
                    cancel_on_drop.disarm();
                    return;
                }
                _ = out.closed() => return,
            }
        }
    };
    tokio::spawn(pump.instrument(span));
    let body = Body::from_stream(futures::stream::poll_fn(move |cx| {
        lines.poll_recv(cx).map(|b| b.map(Ok::<_, std::convert::Infallible>))
    }));
    ([(header::CONTENT_TYPE, HeaderValue::from_static("application/x-ndjson"))], body).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn from(pairs: &[(&str, &str)]) -> Result<LoadBalancingWorker, ConfigError> {
        let m: HashMap<String, String> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        LoadBalancingWorker::from_vars(|k| m.get(k).cloned())
    }

    #[test]
    fn reads_the_platform_variables() {
        let w = from(&[]).unwrap();
        assert_eq!((w.port, w.health_port, w.health_path.as_str()), (80, None, "/ping"));
        let w = from(&[("PORT", "5000"), ("PORT_HEALTH", "5000")]).unwrap();
        assert_eq!((w.port, w.health_port), (5000, None));
        let w = from(&[("PORT", "5000"), ("PORT_HEALTH", "5001"), ("HEALTH_CHECK_PATH", "/health")]).unwrap();
        assert_eq!((w.port, w.health_port, w.health_path.as_str()), (5000, Some(5001), "/health"));
        assert!(matches!(from(&[("PORT", "http")]), Err(ConfigError::Invalid { var: "PORT", .. })));
        assert!(matches!(
            from(&[("PORT_HEALTH", "70000")]),
            Err(ConfigError::Invalid { var: "PORT_HEALTH", .. })
        ));
        assert!(matches!(
            from(&[("HEALTH_CHECK_PATH", "ping")]),
            Err(ConfigError::Invalid { var: "HEALTH_CHECK_PATH", .. })
        ));
    }
}

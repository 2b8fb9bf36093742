//! The running server: shared state, the router, the sweeper task and waiting helpers.

use crate::config::Config;
use crate::disk::Writer;
use crate::error::ApiError;
use crate::store::{Ended, Store};
use crate::webhook::{self, Webhooks};
use crate::{auth, client_api, console, memory, openai, ratelimit, request_guard, worker_api};
use axum::extract::{Request, State};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use tokio::sync::Notify;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// State shared by every handler and background task.
pub(crate) struct Shared {
    pub cfg: Config,
    store: Mutex<Store>,
    /// Woken whenever a job enters a queue.
    pub queue_changed: Notify,
    /// Cancelled on shutdown: long polls answer at once, background tasks end.
    pub shutdown: CancellationToken,
    pub webhooks: Webhooks,
    pub limiter: ratelimit::Limiter,
    /// The data directory's writer, with `--data-dir`.
    pub writer: OnceLock<Writer>,
    /// Jobs' log lines for the console (from a worker in the same process).
    pub logs: console::LogBook,
}

impl Shared {
    pub(crate) fn new(cfg: Config) -> Self {
        let limiter = ratelimit::Limiter::new(cfg.rate_limits.clone());
        Shared {
            store: Mutex::new(Store::new(cfg.max_retained_bytes)),
            webhooks: Webhooks::new(cfg.webhook_concurrency),
            cfg,
            queue_changed: Notify::new(),
            shutdown: CancellationToken::new(),
            limiter,
            writer: OnceLock::new(),
            logs: console::LogBook::default(),
        }
    }

    /// The store, locked. Never hold the guard across an `.await`.
    pub(crate) fn lock(&self) -> MutexGuard<'_, Store> {
        // A panic while locked cannot leave the store half-updated in a way that matters more
        // than losing the endpoint, so keep serving.
        self.store.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Sends the webhooks of jobs that just ended.
    pub(crate) fn ended(self: &Arc<Self>, ended: impl IntoIterator<Item = Ended>) {
        for e in ended {
            webhook::dispatch(self, e);
        }
    }

    /// Returns once change `seq` of the store (`Store::journal`) is in the data directory;
    /// at once without one. `503` when the data directory cannot be written.
    pub(crate) async fn saved(&self, seq: u64) -> Result<(), ApiError> {
        match self.writer.get() {
            Some(w) if !w.wait(seq).await => Err(ApiError::Unavailable(
                "the change could not be saved in the data directory (see the endpoint's log); retry later"
                    .into(),
            )),
            _ => Ok(()),
        }
    }

    /// Tells the data directory's writer that something changed (no wait).
    pub(crate) fn kick_writer(&self) {
        if let Some(w) = self.writer.get() {
            w.kick();
        }
    }

    /// Waits until `ready` holds for job `id`, `deadline` passes or the server shuts down.
    /// Woken by the job's own notify, so no polling.
    pub(crate) async fn wait_job(
        &self,
        id: &str,
        deadline: Instant,
        ready: impl Fn(&Store) -> bool,
    ) -> Result<(), ApiError> {
        loop {
            let notify = {
                let store = self.lock();
                if ready(&store) {
                    return Ok(());
                }
                store.get(id)?.changed()
            };
            let notified = notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if ready(&self.lock()) {
                return Ok(());
            }
            tokio::select! {
                _ = &mut notified => {}
                _ = tokio::time::sleep_until(deadline) => return Ok(()),
                _ = self.shutdown.cancelled() => return Ok(()),
            }
        }
    }
}

/// All routes of both APIs, behind the API-key check, the endpoint-id check and rate limits,
/// and the console page (whose own API is behind the same checks).
pub(crate) fn router(shared: Arc<Shared>) -> Router {
    let api = Router::new()
        .route("/v2/{ep}/run", post(client_api::run))
        .route("/v2/{ep}/runsync", post(client_api::runsync))
        .route("/v2/{ep}/status/{id}", get(client_api::status).post(client_api::status))
        .route("/v2/{ep}/stream/{id}", get(client_api::stream).post(client_api::stream))
        .route("/v2/{ep}/cancel/{id}", post(client_api::cancel))
        .route("/v2/{ep}/retry/{id}", post(client_api::retry))
        .route("/v2/{ep}/purge-queue", post(client_api::purge))
        .route("/v2/{ep}/health", get(client_api::health))
        .route("/v2/{ep}/job-take/{worker}", get(worker_api::take))
        .route("/v2/{ep}/job-take-batch/{worker}", get(worker_api::take_batch))
        .route("/v2/{ep}/job-stop/{worker}", get(worker_api::stop))
        .route("/v2/{ep}/job-done/{worker}/{job}", post(worker_api::done))
        .route("/v2/{ep}/job-stream/{worker}/{job}", post(worker_api::stream))
        .route("/v2/{ep}/ping/{worker}", get(worker_api::ping))
        .route("/v2/{ep}/openai/v1/chat/completions", post(openai::chat_completions))
        .route("/v2/{ep}/openai/v1/completions", post(openai::completions))
        .route("/v2/{ep}/openai/v1/models", get(openai::models))
        .route("/v2/{ep}/openai/{*rest}", axum::routing::any(openai::unknown))
        .merge(console::api_routes())
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed);
    let api = api.layer(middleware::from_fn_with_state(shared.clone(), gate)).with_state(shared.clone());
    let guard = request_guard::RequestGuard::new(&shared.cfg.allowed_hosts, "runpod-local");
    api.merge(console::public_routes(shared))
        .layer(middleware::from_fn_with_state(guard, request_guard::guard))
}

/// Rewrites the Python SDK's local routes at the root (`/run`, `/runsync`, `/status/{id}`,
/// `/stream/{id}`) to this endpoint's (`{prefix}/run`, ...); other requests pass unchanged.
pub(crate) fn python_sdk_route(mut req: Request, prefix: &str) -> Request {
    let path = req.uri().path();
    let sdk = matches!(path, "/run" | "/runsync")
        || ["/status/", "/stream/"]
            .iter()
            .any(|p| path.strip_prefix(p).is_some_and(|id| !id.is_empty() && !id.contains('/')));
    if sdk {
        let pq = req.uri().path_and_query().map(|p| p.as_str()).unwrap_or(path);
        if let Ok(uri) = format!("{prefix}{pq}").parse() {
            *req.uri_mut() = uri;
        }
    }
    req
}

/// The checks every request passes, in order: API key, endpoint id, rate limit. One layer
/// rather than three: each layer cost a boxed future and a service clone per request.
async fn gate(State(sh): State<Arc<Shared>>, req: Request, next: Next) -> Response {
    let checked = auth::check_key(&sh, &req)
        .and_then(|()| check_endpoint(&sh, req.uri().path()))
        .and_then(|()| ratelimit::check(&sh, req.uri().path()));
    match checked {
        Ok(()) => next.run(req).await,
        Err(e) if openai::is_openai_path(req.uri().path()) => openai::api_error(e),
        Err(e) => e.into_response(),
    }
}

async fn not_found(req: Request) -> ApiError {
    ApiError::NotFound(format!("no route for {} {}", req.method(), req.uri().path()))
}

async fn method_not_allowed(req: Request) -> Response {
    if openai::is_openai_path(req.uri().path()) {
        return openai::wrong_method(&req);
    }
    let msg = format!("method {} is not allowed on {}", req.method(), req.uri().path());
    (axum::http::StatusCode::METHOD_NOT_ALLOWED, axum::Json(runpod_protocol::ErrorBody { error: msg }))
        .into_response()
}

/// `404` for `/v2/{other}/...` where `other` is not this endpoint's id.
fn check_endpoint(sh: &Shared, path: &str) -> Result<(), ApiError> {
    let mut parts = path.trim_start_matches('/').split('/');
    if parts.next() == Some("v2") {
        if let Some(ep) = parts.next() {
            if ep != sh.cfg.endpoint_id {
                return Err(ApiError::NotFound(format!(
                    "unknown endpoint '{ep}' (this server serves '{}')",
                    sh.cfg.endpoint_id
                )));
            }
        }
    }
    Ok(())
}

/// Applies the time-based rules every `sweep_interval` until shutdown, and gives the memory of
/// forgotten jobs back to the system.
pub(crate) async fn sweeper(sh: Arc<Shared>) {
    let mut tick = tokio::time::interval(sh.cfg.sweep_interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut trim = memory::Trim::default();
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = sh.shutdown.cancelled() => return,
        }
        let (swept, freed) = {
            let mut store = sh.lock();
            let swept = store.sweep(&sh.cfg, Instant::now());
            (swept, store.take_freed())
        };
        if swept.requeued {
            sh.queue_changed.notify_waiters();
        }
        if swept.requeued || swept.dropped > 0 || !swept.ended.is_empty() {
            sh.kick_writer();
        }
        sh.ended(swept.ended);
        trim.freed(freed);
    }
}

/// `now + d`, or a point far in the future when that overflows (a huge configured wait).
pub(crate) fn deadline(d: std::time::Duration) -> Instant {
    let now = Instant::now();
    now.checked_add(d).unwrap_or_else(|| now + std::time::Duration::from_secs(100 * 365 * 86_400))
}

/// Parses a query string into `(key, value)` pairs, percent-decoded.
pub(crate) fn query_pairs(query: Option<&str>) -> Vec<(String, String)> {
    url::form_urlencoded::parse(query.unwrap_or("").as_bytes()).into_owned().collect()
}

/// The value of `key` in a query as a `u64`, or `400` naming the parameter.
pub(crate) fn query_u64(pairs: &[(String, String)], key: &str) -> Result<Option<u64>, ApiError> {
    match pairs.iter().find(|(k, _)| k == key) {
        None => Ok(None),
        Some((_, v)) => v.parse().map(Some).map_err(|_| {
            ApiError::BadRequest(format!("query parameter '{key}' must be a whole number, got '{v}'"))
        }),
    }
}

//! The router: the only module that sees the whole state of an endpoint, it hands each
//! handler the part it needs (the job service, the log book) and runs the checks every request
//! passes.

use crate::config::Config;
use crate::error::ApiError;
use crate::jobs::Jobs;
use crate::ratelimit::Limiter;
use crate::{auth, client_api, openai, request_guard, worker_api};
use axum::extract::{FromRef, Request, State};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use std::sync::Arc;

/// Everything the routes need; each handler takes only its part (`State<Jobs>`, ...).
#[derive(Clone)]
pub(crate) struct AppState {
    pub cfg: Arc<Config>,
    pub jobs: Jobs,
    pub limiter: Arc<Limiter>,
    #[cfg(feature = "console")]
    pub logs: Arc<crate::console::LogBook>,
}

impl FromRef<AppState> for Arc<Config> {
    fn from_ref(s: &AppState) -> Arc<Config> {
        s.cfg.clone()
    }
}

impl FromRef<AppState> for Jobs {
    fn from_ref(s: &AppState) -> Jobs {
        s.jobs.clone()
    }
}

#[cfg(feature = "console")]
impl FromRef<AppState> for Arc<crate::console::LogBook> {
    fn from_ref(s: &AppState) -> Self {
        s.logs.clone()
    }
}

/// All routes of both APIs, behind the API-key check, the endpoint-id check and rate limits,
/// and the console page (whose own API is behind the same checks).
pub(crate) fn router(state: AppState) -> Router {
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
        .route("/v2/{ep}/openai/{*rest}", axum::routing::any(openai::unknown));
    #[cfg(feature = "console")]
    let api = api.merge(crate::console::api_routes());
    let api = api
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(middleware::from_fn_with_state(state.clone(), gate));
    #[cfg(feature = "console")]
    let api = api.merge(crate::console::public_routes());
    // The contract, not data: served without the key, as the console page is.
    let api = api.route("/openapi.json", get(crate::openapi::document));
    // Outermost: a request a web page forged never reaches the key check or a handler.
    let guard = request_guard::RequestGuard::new(&state.cfg.allowed_hosts, "runpod-local");
    api.with_state(state).layer(middleware::from_fn_with_state(guard, request_guard::guard))
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
async fn gate(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let checked = auth::check_key(state.cfg.api_key.as_deref(), &req)
        .and_then(|()| check_endpoint(&state.cfg, req.uri().path()))
        .and_then(|()| state.limiter.check(req.uri().path()));
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
fn check_endpoint(cfg: &Config, path: &str) -> Result<(), ApiError> {
    let mut parts = path.trim_start_matches('/').split('/');
    if parts.next() == Some("v2") {
        if let Some(ep) = parts.next() {
            if ep != cfg.endpoint_id {
                return Err(ApiError::NotFound(format!(
                    "unknown endpoint '{ep}' (this server serves '{}')",
                    cfg.endpoint_id
                )));
            }
        }
    }
    Ok(())
}

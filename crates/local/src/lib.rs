//! A local Runpod Serverless endpoint.
//!
//! [`LocalEndpoint`] serves, on one machine and with no account, both APIs of a Runpod
//! Serverless endpoint: the client API (`/run`, `/runsync`, `/status`, `/stream`, `/cancel`,
//! `/retry`, `/purge-queue`, `/health`; described at `/openapi.json`, with the worker's input
//! and output schemas when [`LocalEndpointBuilder::schema`] gives them) and the worker API
//! that workers pull jobs from (`job-take`, `job-take-batch`, `job-stop`, `job-done`, `job-stream`, `ping`), and the
//! OpenAI-compatible route (`/openai/v1/chat/completions`, `/completions`, `/models`: each call
//! a job for the worker, streamed answers relayed as Server-Sent Events). Tests embed it;
//! the `runpod-local` binary runs it on its own. Time-based rules (execution timeout, queue
//! expiry, lost workers, webhook retries, result retention) follow the platform's defaults and
//! can be shortened through [`LocalEndpointBuilder`]. At `/` it serves a console: a web page
//! to send requests and watch jobs run ([`LocalEndpoint::console_url`]).
//! Jobs live in memory unless
//! [`LocalEndpointBuilder::data_dir`] names a directory to keep them (and pending webhooks)
//! across restarts; [`shutdown_signal`] and [`LocalEndpoint::shutdown`] make a graceful stop on
//! SIGINT or SIGTERM.
//!
//! ```
//! use runpod_local::LocalEndpoint;
//! use serde_json::{json, Value};
//!
//! # #[tokio::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let ep = LocalEndpoint::builder().api_key("k").bind("127.0.0.1:0").await?;
//! let http = reqwest::Client::new();
//! let api = ep.endpoint_url();
//!
//! // A client queues a job.
//! let run: Value = http.post(format!("{api}/run")).bearer_auth("k")
//!     .json(&json!({"input": {"n": 2}})).send().await?.json().await?;
//! let id = run["id"].as_str().unwrap();
//!
//! // A worker takes it and posts the result.
//! let job: Value = http.get(format!("{api}/job-take/w1")).header("Authorization", "k")
//!     .send().await?.json().await?;
//! assert_eq!(job["input"]["n"], 2);
//! http.post(format!("{api}/job-done/w1/{id}")).header("Authorization", "k")
//!     .body(r#"{"output": 4}"#).send().await?.error_for_status()?;
//!
//! // The client reads it.
//! let status: Value = http.get(format!("{api}/status/{id}")).bearer_auth("k")
//!     .send().await?.json().await?;
//! assert_eq!(status["status"], "COMPLETED");
//! assert_eq!(status["output"], 4);
//! ep.shutdown().await;
//! # Ok(()) }
//! ```

// A build without the data directory or the console leaves parts of the store that only they
// read unread; the full build (the default) checks for dead code.
#![cfg_attr(
    not(all(feature = "persistence", feature = "console")),
    allow(dead_code, reason = "parts read only by the data directory or the console")
)]

mod auth;
mod client_api;
mod config;
mod connections;
#[cfg(feature = "console")]
mod console;
#[cfg(feature = "persistence")]
mod disk;
mod env;
mod error;
pub mod hub;
mod jobs;
#[cfg(feature = "load-balancer")]
mod load_balancer;
mod memory;
mod openai;
mod openapi;
mod ratelimit;
mod request;
mod request_guard;
mod server;
mod signal;
mod store;
mod webhook;
mod worker_api;

pub use config::{LocalEndpointBuilder, RateLimit, RateLimits};
#[cfg(feature = "console")]
pub use console::JobLogs;
pub use env::worker_env_vars;
pub use error::ApiError;
#[cfg(feature = "persistence")]
pub use error::DataDirError;
#[cfg(feature = "load-balancer")]
pub use load_balancer::{LoadBalancer, LoadBalancerBuilder, WORKER_ID_HEADER};
pub use signal::shutdown_signal;
pub use webhook::WebhookTargets;

use jobs::Jobs;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// A running local endpoint. Dropping it or calling [`LocalEndpoint::shutdown`] stops it.
pub struct LocalEndpoint {
    base_url: String,
    endpoint_id: String,
    addr: SocketAddr,
    api_key: Option<String>,
    ping_interval_ms: u64,
    shutdown_grace: Duration,
    shutdown: CancellationToken,
    server: Option<JoinHandle<()>>,
    jobs: Jobs,
    #[cfg(feature = "console")]
    logs: Arc<console::LogBook>,
}

impl std::fmt::Debug for LocalEndpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The API key is left out on purpose.
        f.debug_struct("LocalEndpoint")
            .field("base_url", &self.base_url)
            .field("endpoint_id", &self.endpoint_id)
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl LocalEndpointBuilder {
    /// Binds `addr` (port 0 picks a free port), starts serving, and returns the running endpoint.
    pub async fn bind(self, addr: impl tokio::net::ToSocketAddrs) -> std::io::Result<LocalEndpoint> {
        LocalEndpoint::start(self.into_config(), addr).await
    }
}

impl LocalEndpoint {
    /// A builder with the platform's defaults.
    pub fn builder() -> LocalEndpointBuilder {
        LocalEndpointBuilder::default()
    }

    pub(crate) async fn start(
        cfg: config::Config,
        addr: impl tokio::net::ToSocketAddrs,
    ) -> std::io::Result<LocalEndpoint> {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let local = listener.local_addr()?;
        let host = match local.ip() {
            IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
            ip => ip,
        };
        let base_url = format!("http://{}", SocketAddr::new(host, local.port()));
        if cfg.api_key.as_deref().is_some_and(str::is_empty) {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "the API key is empty: give a key, or none to accept any",
            ));
        }
        if cfg.api_key.is_none() {
            tracing::warn!("no API key set: accepting requests with any key or none");
        }
        let cfg = Arc::new(cfg);
        let shutdown = CancellationToken::new();
        let jobs = Jobs::new(cfg.clone(), shutdown.clone());
        #[cfg(feature = "persistence")]
        if let Some(dir) = &cfg.data_dir {
            open_data_dir(&jobs, dir)?;
        }
        #[cfg(feature = "console")]
        let logs = Arc::new(console::LogBook::default());
        tokio::spawn(jobs.clone().sweep_until_shutdown());
        let app = server::router(server::AppState {
            cfg: cfg.clone(),
            jobs: jobs.clone(),
            limiter: Arc::new(ratelimit::Limiter::new(cfg.rate_limits.clone())),
            #[cfg(feature = "console")]
            logs: logs.clone(),
        });
        let endpoint_id = cfg.endpoint_id.clone();
        // The Python SDK's root routes are rewritten before routing: an outer router whose
        // every request goes to the rewrite, then to the API's router.
        let app = match cfg.python_sdk_routes {
            true => {
                let prefix = format!("/v2/{endpoint_id}");
                axum::Router::new().fallback_service(tower::ServiceExt::map_request(app, move |req| {
                    server::python_sdk_route(req, &prefix)
                }))
            }
            false => app,
        };
        let server = tokio::spawn(connections::serve(listener, app, cfg.clone(), shutdown.clone()));
        Ok(LocalEndpoint {
            base_url,
            endpoint_id,
            addr: local,
            api_key: cfg.api_key.clone(),
            ping_interval_ms: cfg.ping_interval_ms,
            shutdown_grace: cfg.shutdown_grace,
            shutdown,
            server: Some(server),
            jobs,
            #[cfg(feature = "console")]
            logs,
        })
    }

    /// Queues `request` as `POST /run` would, but under the id `id` instead of a generated one:
    /// for tests of workers, which must deliver results for any id the platform may send
    /// (ids with `/`, `?`, `#`, `%`, spaces or non-ASCII characters included). `409` when a job
    /// with that id exists; otherwise the errors of `/run`.
    ///
    /// ```
    /// # #[tokio::main] async fn main() {
    /// use runpod_protocol::JobRequest;
    /// let ep = runpod_local::LocalEndpoint::builder().bind("127.0.0.1:0").await.unwrap();
    /// ep.queue_with_id("a/b c", JobRequest::new(serde_json::json!({"n": 1}))).unwrap();
    /// let again = ep.queue_with_id("a/b c", JobRequest::new(serde_json::json!(2)));
    /// assert_eq!(again.unwrap_err().status(), 409);
    /// # }
    /// ```
    pub fn queue_with_id(&self, id: &str, request: runpod_protocol::JobRequest) -> Result<(), ApiError> {
        self.jobs.submit_as_blocking(id, request, None)
    }

    /// [`LocalEndpoint::queue_with_id`] with other fields the worker gets with the job, next to
    /// `id` and `input`: e.g. `{"batchId": "batch_1"}`, as the platform's batch jobs carry
    /// (docs/python-sdk.md); for tests of workers.
    pub fn queue_with_fields(
        &self,
        id: &str,
        request: runpod_protocol::JobRequest,
        fields: serde_json::Map<String, serde_json::Value>,
    ) -> Result<(), ApiError> {
        self.jobs.submit_as_blocking(id, request, Some(fields))
    }

    /// `http://HOST:PORT`, no trailing slash (an unspecified bind address shows as loopback).
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// The endpoint id in `/v2/{endpoint_id}/...` (default `local`).
    pub fn endpoint_id(&self) -> &str {
        &self.endpoint_id
    }

    /// `base_url + "/v2/" + endpoint_id`: the root of both APIs.
    pub fn endpoint_url(&self) -> String {
        format!("{}/v2/{}", self.base_url, self.endpoint_id)
    }

    /// `base_url + "/"`: the console, a web page to send requests and watch jobs.
    #[cfg(feature = "console")]
    pub fn console_url(&self) -> String {
        format!("{}/", self.base_url)
    }

    /// Where a worker running in this process sends its jobs' log lines, for the console to
    /// show next to each job.
    #[cfg(feature = "console")]
    pub fn job_logs(&self) -> JobLogs {
        JobLogs::new(self.logs.clone())
    }

    /// Shows `text` at the top of the console page (plain text, kept as written) until it is
    /// set to `None`: `cargo runpod dev` shows its last build error there.
    #[cfg(feature = "console")]
    pub fn set_notice(&self, text: Option<String>) {
        self.logs.set_notice(text);
    }

    /// The address the server is bound to.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The `RUNPOD_*` variables that make a worker with id `worker_id` talk to this endpoint
    /// (see [`worker_env_vars`]).
    pub fn worker_env(&self, worker_id: &str) -> Vec<(String, String)> {
        worker_env_vars(
            &self.base_url,
            &self.endpoint_id,
            worker_id,
            self.api_key.as_deref(),
            self.ping_interval_ms,
        )
    }

    /// Stops gracefully: stops accepting connections, answers open long polls (a waiting
    /// `/runsync` gets the job's status as it stands), lets requests in flight finish, gives
    /// each pending webhook one more attempt at once, and with a data directory commits the
    /// last changes. Each stage waits at most the shutdown grace period (default 10 s).
    pub async fn shutdown(mut self) {
        let grace = self.shutdown_grace;
        self.shutdown.cancel();
        if let Some(server) = self.server.take() {
            let _ = tokio::time::timeout(grace + Duration::from_secs(1), server).await;
        }
        self.jobs.finish(grace).await;
    }
}

/// Opens the data directory (`--data-dir`); an error says which directory and why.
#[cfg(feature = "persistence")]
fn open_data_dir(jobs: &Jobs, dir: &std::path::Path) -> std::io::Result<()> {
    jobs.open_data_dir(dir).map_err(|why| std::io::Error::other(DataDirError::new(dir, why)))
}

impl Drop for LocalEndpoint {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// The README's examples, compiled and run by `cargo test --doc`.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

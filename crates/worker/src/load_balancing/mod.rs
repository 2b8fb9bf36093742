//! Load-balancing mode: the worker is an HTTP server that the platform's load balancer sends
//! requests to directly (`https://{endpoint_id}.api.runpod.ai/{path}`), with no queue.
//!
//! The platform's contract (docs/load-balancing.md): the application listens on `PORT`
//! (default 80), the balancer polls `HEALTH_CHECK_PATH` (default `/ping`) on `PORT_HEALTH`
//! (default `PORT`) and reads `200` as healthy, `204` as initializing and anything else as
//! unhealthy. [`Worker::run_load_balancing`](crate::Worker::run_load_balancing) keeps that contract around the worker's handler,
//! served as `POST` on its [route](crate::Worker::route) (default `/run`), beside the program's own
//! axum [routes](crate::Worker::routes):
//!
//! - the ports are bound first, and the health path answers `204` while the fitness checks
//!   and the start-up ([`Worker::loading`](crate::Worker::loading), the model load) run, then `200`;
//! - a failed fitness check or start-up answers `503` with the reason for a short while
//!   (default 5 s, [`Worker::unfit_linger`](crate::Worker::unfit_linger)) and the worker exits non-zero;
//! - on SIGTERM/SIGINT the health path answers `503`, no connection is accepted any more,
//!   requests in flight finish within the grace period (default 30 s), then it returns `Ok`.
//!
//! The same worker runs in queue mode too: [`Worker::start`](crate::Worker::start) picks the mode
//! (`--load-balancing`, `LOAD_BALANCING=1`, or the platform's variables).
//!
//! ```no_run
//! use runpod_worker::{handler_fn, Job, JobContext, Worker};
//!
//! async fn double(job: Job<u64>, _ctx: JobContext) -> Result<u64, String> {
//!     Ok(job.input * 2)
//! }
//!
//! # async fn run() -> Result<(), runpod_worker::WorkerError> {
//! Worker::loading(async {
//!     // Load the model here: /ping answers 204 meanwhile.
//!     Ok::<_, std::convert::Infallible>(handler_fn(double))
//! })
//! .route("/double")
//! .run_load_balancing() // PORT, PORT_HEALTH, HEALTH_CHECK_PATH from the environment
//! .await
//! # }
//! ```
//!
//! `curl -XPOST localhost:80/double -d 21` then answers `42`.

mod route;
mod server;

pub use route::handler_router;
pub use server::BoundWorker;
pub(crate) use server::Settings;

use crate::startup::Startup;
use crate::{ConfigError, Handler, WorkerError};
use axum::Router;
use runpod_protocol::limits::{LOAD_BALANCER_DEFAULT_HEALTH_PATH, LOAD_BALANCER_DEFAULT_PORT};
use std::time::Duration;

/// The route a handler is served on when none is set.
pub const DEFAULT_ROUTE: &str = "/run";

/// Where a load-balancing worker listens: the platform's `PORT`, `PORT_HEALTH` and
/// `HEALTH_CHECK_PATH`, and `LISTEN_HOST` (ours); and the worker's id (`RUNPOD_POD_ID`).
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
pub struct LbConfig {
    host: String,
    port: u16,
    /// `None`: the health path is served on the application port.
    health_port: Option<u16>,
    health_path: String,
    worker_id: String,
}

impl Default for LbConfig {
    /// `0.0.0.0:80`, the health path `/ping` on the same port.
    fn default() -> Self {
        LbConfig {
            host: "0.0.0.0".into(),
            port: LOAD_BALANCER_DEFAULT_PORT,
            health_port: None,
            health_path: LOAD_BALANCER_DEFAULT_HEALTH_PATH.into(),
            worker_id: "local".into(),
        }
    }
}

impl LbConfig {
    /// The platform's settings: `PORT` (default 80), `PORT_HEALTH` (default `PORT`),
    /// `HEALTH_CHECK_PATH` (default `/ping`), on all interfaces unless `LISTEN_HOST` names one
    /// (`127.0.0.1` for a local test; the platform's balancer needs `0.0.0.0`, the default);
    /// the worker id from `RUNPOD_POD_ID` (default `local`).
    pub fn from_env() -> Result<LbConfig, ConfigError> {
        Self::from_vars(|k| std::env::var(k).ok())
    }

    fn from_vars(var: impl Fn(&str) -> Option<String>) -> Result<LbConfig, ConfigError> {
        let port = |name: &'static str| -> Result<Option<u16>, ConfigError> {
            match var(name).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty()) {
                None => Ok(None),
                Some(v) => v.parse::<u16>().map(Some).map_err(|_| ConfigError::Invalid {
                    var: name,
                    reason: format!("expected a port number, got {v:?}"),
                }),
            }
        };
        let mut c = LbConfig::default();
        if let Some(host) = var("LISTEN_HOST").map(|h| h.trim().to_owned()).filter(|h| !h.is_empty()) {
            c.host = host;
        }
        if let Some(p) = port("PORT")? {
            c.port = p;
        }
        c.health_port = port("PORT_HEALTH")?.filter(|p| *p != c.port);
        if let Some(id) = var("RUNPOD_POD_ID").filter(|id| !id.trim().is_empty()) {
            c.worker_id = id;
        }
        if let Some(path) = var("HEALTH_CHECK_PATH").filter(|p| !p.trim().is_empty()) {
            if !path.starts_with('/') {
                return Err(ConfigError::Invalid {
                    var: "HEALTH_CHECK_PATH",
                    reason: format!("expected a path starting with '/', got {path:?}"),
                });
            }
            c.health_path = path;
        }
        Ok(c)
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

    /// The worker's id, as `JobContext::worker_id` gives it (`RUNPOD_POD_ID`, default `local`).
    pub fn worker_id(mut self, id: impl Into<String>) -> Self {
        self.worker_id = id.into();
        self
    }
}

/// The builder's load-balancing settings.
pub(crate) struct LbOptions {
    pub(crate) route: String,
    pub(crate) routes: Option<Router>,
    pub(crate) config: Option<LbConfig>,
    pub(crate) unfit_linger: Duration,
    /// The worker's schema: each request body is checked against it before the decode.
    pub(crate) schema: Option<std::sync::Arc<runpod_protocol::WorkerSchema>>,
}

impl Default for LbOptions {
    fn default() -> Self {
        LbOptions {
            route: DEFAULT_ROUTE.into(),
            routes: None,
            config: None,
            unfit_linger: Duration::from_secs(5),
            schema: None,
        }
    }
}

/// Binds `config`'s ports for the application: `handler` (once its start-up is done) on the
/// route `lb` names, beside the program's routes.
pub(crate) async fn bind<H: Handler>(
    handler: Startup<H>,
    lb: LbOptions,
    config: LbConfig,
    settings: Settings,
) -> Result<BoundWorker, WorkerError> {
    let LbOptions { route, routes, schema, .. } = lb;
    let worker_id = config.worker_id.clone();
    let app = async move {
        let handler = handler.handler().await?;
        let router = route::route(&route, handler, worker_id, schema);
        Ok(match routes {
            Some(r) => router.merge(r),
            None => router,
        })
    };
    BoundWorker::bind(config, settings, Box::pin(app)).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn from(pairs: &[(&str, &str)]) -> Result<LbConfig, ConfigError> {
        let m: HashMap<String, String> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        LbConfig::from_vars(|k| m.get(k).cloned())
    }

    #[test]
    fn reads_the_platform_variables() {
        let w = from(&[]).unwrap();
        assert_eq!((w.port, w.health_port, w.health_path.as_str()), (80, None, "/ping"));
        assert_eq!(w.worker_id, "local");
        let w = from(&[("PORT", "5000"), ("PORT_HEALTH", "5000"), ("RUNPOD_POD_ID", "pod-1")]).unwrap();
        assert_eq!((w.port, w.health_port, w.worker_id.as_str()), (5000, None, "pod-1"));
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

//! The load-balancing server: the ports bound first, the health path answering through the
//! start-up, every other request forwarded to the application's router once it is ready, and
//! the drain on shutdown.

use crate::fitness::{self, FitnessCheck};
use crate::load_balancing::LbConfig;
use crate::WorkerError;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use futures::future::BoxFuture;
use serde_json::json;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

/// The settings the server needs besides where to listen.
pub(crate) struct Settings {
    /// The program's checks, then the system checks.
    pub(crate) fitness: Vec<FitnessCheck>,
    pub(crate) shutdown_grace: Duration,
    pub(crate) unfit_linger: Duration,
    /// `None`: SIGTERM/SIGINT.
    pub(crate) shutdown: Option<BoxFuture<'static, ()>>,
}

/// The application's router, once its start-up is done.
type App = BoxFuture<'static, Result<Router, WorkerError>>;

/// A load-balancing worker with its ports bound ([`Worker::bind_load_balancing`](crate::Worker::bind_load_balancing)).
pub struct BoundWorker {
    settings: Settings,
    health_path: String,
    app: TcpListener,
    health: Option<TcpListener>,
    startup: App,
}

impl std::fmt::Debug for BoundWorker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BoundWorker")
            .field("app", &self.app.local_addr().ok())
            .field("health", &self.health.as_ref().and_then(|h| h.local_addr().ok()))
            .field("health_path", &self.health_path)
            .finish_non_exhaustive()
    }
}

impl BoundWorker {
    pub(crate) async fn bind(
        config: LbConfig,
        settings: Settings,
        startup: App,
    ) -> Result<BoundWorker, WorkerError> {
        let io = |what| move |source| WorkerError::Io { what, source };
        let app = TcpListener::bind((config.host.as_str(), config.port))
            .await
            .map_err(io("cannot listen on PORT"))?;
        let health = match config.health_port {
            Some(p) => Some(
                TcpListener::bind((config.host.as_str(), p))
                    .await
                    .map_err(io("cannot listen on PORT_HEALTH"))?,
            ),
            None => None,
        };
        Ok(BoundWorker { settings, health_path: config.health_path, app, health, startup })
    }

    /// The application's address.
    pub fn app_addr(&self) -> SocketAddr {
        self.app.local_addr().expect("a bound listener has an address")
    }

    /// The address the health path is served on (the application's, unless separate).
    pub fn health_addr(&self) -> SocketAddr {
        self.health.as_ref().unwrap_or(&self.app).local_addr().expect("a bound listener has an address")
    }

    /// Serves until SIGTERM/SIGINT (or the `shutdown_on` signal): the health path answers `204`
    /// while the fitness checks and the start-up run, then every other request goes to the
    /// application (the handler's route and the program's routes) and the health path answers
    /// `200`.
    ///
    /// Returns `Ok(())` after a graceful shutdown, [`WorkerError::Unfit`] after a failed
    /// fitness check and [`WorkerError::Startup`] when the start-up failed.
    pub async fn serve(self) -> Result<(), WorkerError> {
        let BoundWorker { mut settings, health_path, app, health, startup } = self;
        let began = Instant::now();
        let state = Arc::new(ServerState {
            health: Mutex::new(Health::Initializing),
            app: OnceLock::new(),
            in_flight: AtomicUsize::new(0),
        });
        let path = health_path;
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

        let mut signal = settings.shutdown.take().unwrap_or_else(|| Box::pin(crate::signal::signal()));
        let checks = std::mem::take(&mut settings.fitness);
        let start = async {
            fitness::run_checks(checks).await?;
            startup.await
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

struct ServerState {
    health: Mutex<Health>,
    /// The program's router, once its start-up has finished.
    app: OnceLock<Router>,
    in_flight: AtomicUsize,
}

impl ServerState {
    fn set(&self, h: Health) {
        *self.health.lock().unwrap_or_else(|p| p.into_inner()) = h;
    }
}

/// The health path: 204 initializing, 200 ready, 503 unhealthy or shutting down.
async fn ping(State(st): State<Arc<ServerState>>) -> Response {
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
async fn forward(State(st): State<Arc<ServerState>>, req: Request) -> Response {
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

pub(super) fn error(status: StatusCode, message: String) -> Response {
    (status, Json(json!({"error": message}))).into_response()
}

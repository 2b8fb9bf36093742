//! (feature `test-support`) A model example's handler served end to end for its tests: a real
//! local endpoint on 127.0.0.1, the worker runtime taking jobs from it over HTTP, and a client.

use std::time::Duration;

use runpod_client::Endpoint;
use runpod_local::LocalEndpoint;
use runpod_worker::{Config, Handler, Worker, WorkerError};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// The API key of the endpoint [`LocalWorker::start`] starts.
pub const API_KEY: &str = "k";

/// A local endpoint with one in-process worker (id `w1`) serving a handler, and a client for
/// the endpoint; [`LocalWorker::stop`] shuts both down and checks the worker ended cleanly.
pub struct LocalWorker {
    /// The endpoint the worker takes its jobs from.
    pub endpoint: LocalEndpoint,
    /// A client for the endpoint (key [`API_KEY`]).
    pub client: Endpoint,
    stop: oneshot::Sender<()>,
    running: JoinHandle<Result<(), WorkerError>>,
}

impl LocalWorker {
    /// Binds an endpoint on 127.0.0.1 (port 0) and starts a worker serving `handler` against it.
    /// Panics on failure: it is for tests.
    pub async fn start<H: Handler>(handler: H) -> LocalWorker {
        // A short long poll: a stopping worker waits for its open job-take to be answered.
        let endpoint = LocalEndpoint::builder()
            .api_key(API_KEY)
            .take_wait(Duration::from_secs(2))
            .bind("127.0.0.1:0")
            .await
            .unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let config = Config::from_vars(endpoint.worker_env("w1")).unwrap();
        let worker = Worker::new(handler).config(config).shutdown_on(async move {
            let _ = stopped.await;
        });
        let running = tokio::spawn(worker.run());
        let client = Endpoint::new(endpoint.endpoint_id(), Some(API_KEY))
            .unwrap()
            .with_base_url(endpoint.base_url())
            .unwrap();
        LocalWorker { endpoint, client, stop, running }
    }

    /// Asks the worker to stop, waits (up to 30 s) for it to end without an error, then shuts
    /// the endpoint down.
    pub async fn stop(self) {
        self.stop.send(()).unwrap();
        tokio::time::timeout(Duration::from_secs(30), self.running).await.unwrap().unwrap().unwrap();
        self.endpoint.shutdown().await;
    }
}

//! The `--serve-api` mode: the local endpoint (runpod-local) in-process, this worker taking
//! jobs from it. Besides the platform's routes under `/v2/local/`, it answers the Python SDK's
//! local routes at the root (`POST /run`, `/runsync`, `/status/{id}`, `/stream/{id}`), so the
//! SDK docs' `curl` lines work unchanged.

#[cfg(feature = "serve-api")]
use crate::Config;
use crate::{Handler, Worker, WorkerError};

/// `--serve-api`: the local endpoint on `host:port`, this worker taking jobs from it, until
/// SIGTERM/SIGINT (or the worker's own shutdown signal).
#[cfg(feature = "serve-api")]
pub(crate) async fn serve_api<H: Handler>(
    worker: Worker<H>,
    host: &str,
    port: u16,
) -> Result<(), WorkerError> {
    let ep = runpod_local::LocalEndpoint::builder()
        .python_sdk_routes(true)
        .bind((host, port))
        .await
        .map_err(|source| WorkerError::Io { what: "cannot bind the local endpoint", source })?;
    let config = Config::from_vars(ep.worker_env("local-worker"))?;
    let url = ep.endpoint_url();
    tracing::info!("local endpoint ready at {url}");
    eprintln!("serving the local endpoint at {url}");
    eprintln!("  console: {} (open it in a browser)", ep.console_url());
    eprintln!("  try: curl -s {url}/runsync -H 'Content-Type: application/json' -d '{{\"input\": {{...}}}}'");
    eprintln!(
        "  (the Python SDK's routes answer too: POST {}/runsync, /run, /status/ID, /stream/ID)",
        ep.base_url()
    );
    // The console shows each job's log lines next to it.
    let logs = ep.job_logs();
    crate::logging::send_job_logs(Some(std::sync::Arc::new(move |job, level, line| {
        logs.push(job, level, line)
    })));
    let result = worker.config(config).run().await;
    crate::logging::send_job_logs(None);
    ep.shutdown().await;
    result
}

/// `--serve-api` needs the `serve-api` feature (on by default).
#[cfg(not(feature = "serve-api"))]
pub(crate) async fn serve_api<H: Handler>(_w: Worker<H>, _host: &str, _port: u16) -> Result<(), WorkerError> {
    Err(WorkerError::Args(
        "--serve-api: this binary was built without the `serve-api` feature of runpod-worker".into(),
    ))
}

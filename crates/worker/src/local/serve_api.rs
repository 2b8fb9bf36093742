//! The `--serve-api` mode: the local endpoint (runpod-local) in-process, this worker taking
//! jobs from it. Besides the platform's routes under `/v2/local/`, it answers the Python SDK's
//! local routes at the root (`POST /run`, `/runsync`, `/status/{id}`, `/stream/{id}`), so the
//! SDK docs' `curl` lines work unchanged.

use crate::{Config, WorkerError};
use runpod_protocol::WorkerSchema;
use std::sync::Arc;

/// The local endpoint, bound, and the configuration of a worker taking jobs from it.
pub(crate) struct LocalApi {
    #[cfg(feature = "serve-api")]
    endpoint: runpod_local::LocalEndpoint,
    config: Config,
}

#[cfg(feature = "serve-api")]
impl LocalApi {
    /// Binds the local endpoint on `host:port` (with the Python SDK's routes and the worker's
    /// schema, if any), says where on stderr, and shows each job's log lines in its console.
    pub(crate) async fn bind(
        host: &str,
        port: u16,
        schema: Option<Arc<WorkerSchema>>,
    ) -> Result<LocalApi, WorkerError> {
        let mut builder = runpod_local::LocalEndpoint::builder().python_sdk_routes(true);
        if let Some(schema) = schema {
            builder = builder.schema((*schema).clone());
        }
        let ep = builder
            .bind((host, port))
            .await
            .map_err(|source| WorkerError::Io { what: "cannot bind the local endpoint", source })?;
        let config = Config::from_vars(ep.worker_env("local-worker"))?;
        let url = ep.endpoint_url();
        tracing::info!("local endpoint ready at {url}");
        eprintln!("serving the local endpoint at {url}");
        eprintln!("  console: {} (open it in a browser)", ep.console_url());
        eprintln!("  OpenAPI: {}/openapi.json", ep.base_url());
        eprintln!(
            "  try: curl -s {url}/runsync -H 'Content-Type: application/json' -d '{{\"input\": {{...}}}}'"
        );
        eprintln!(
            "  (the Python SDK's routes answer too: POST {}/runsync, /run, /status/ID, /stream/ID)",
            ep.base_url()
        );
        // The console shows each job's log lines next to it.
        let logs = ep.job_logs();
        let tapped = crate::logging::send_job_logs(Some(std::sync::Arc::new(move |job, level, line| {
            logs.push(job, level, line)
        })));
        if !tapped {
            tracing::debug!("the program installed its own log subscriber: the console shows no job logs");
        }
        Ok(LocalApi { endpoint: ep, config })
    }

    /// The configuration of a worker taking jobs from the endpoint.
    pub(crate) fn config(&self) -> Config {
        self.config.clone()
    }

    /// Stops handing on job logs, then the endpoint.
    pub(crate) async fn shutdown(self) {
        crate::logging::send_job_logs(None);
        self.endpoint.shutdown().await;
    }
}

/// `--serve-api` needs the `serve-api` feature (on by default).
#[cfg(not(feature = "serve-api"))]
impl LocalApi {
    pub(crate) async fn bind(
        _host: &str,
        _port: u16,
        _schema: Option<Arc<WorkerSchema>>,
    ) -> Result<LocalApi, WorkerError> {
        Err(WorkerError::Args(
            "--serve-api: this binary was built without the `serve-api` feature of runpod-worker".into(),
        ))
    }

    pub(crate) fn config(&self) -> Config {
        self.config.clone()
    }

    pub(crate) async fn shutdown(self) {}
}

//! [`Options`]: the builder's settings, read by every mode (the shared ones: fitness checks,
//! shutdown grace, debugger) and by queue mode (concurrency, retries, the handler runtime).

use crate::config::Config;
use crate::fitness::FitnessCheck;
use crate::WorkerError;
use std::time::Duration;

pub(crate) type ConcurrencyFn = Box<dyn FnMut(usize) -> usize + Send>;

/// The builder's settings.
pub(crate) struct Options {
    pub(crate) concurrency: usize,
    pub(crate) concurrency_fn: Option<ConcurrencyFn>,
    pub(crate) refresh_after_job: bool,
    pub(crate) ping_interval: Option<Duration>,
    pub(crate) shutdown_grace: Duration,
    /// How long a final result is retried (queue mode).
    pub(crate) result_retry_for: Duration,
    pub(crate) handler_threads: Option<usize>,
    pub(crate) max_result_bytes: Option<usize>,
    pub(crate) config: Option<Config>,
    /// Checks run before the first job-take, then the system checks unless turned off.
    pub(crate) fitness: Vec<FitnessCheck>,
    pub(crate) system_checks: bool,
    pub(crate) debugger: bool,
    /// The worker's schema (`--schema` prints it; each job's input is checked against it).
    pub(crate) schema: Option<std::sync::Arc<runpod_protocol::WorkerSchema>>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            concurrency: 1,
            concurrency_fn: None,
            refresh_after_job: false,
            ping_interval: None,
            shutdown_grace: Duration::from_secs(30),
            result_retry_for: Duration::from_secs(600),
            handler_threads: None,
            max_result_bytes: None,
            config: None,
            fitness: Vec::new(),
            system_checks: true,
            debugger: false,
            schema: None,
        }
    }
}

impl Options {
    /// The program's checks, then the system checks when on.
    pub(crate) fn take_fitness_checks(&mut self) -> Vec<FitnessCheck> {
        let mut checks = std::mem::take(&mut self.fitness);
        if self.system_checks {
            checks.extend(crate::fitness::system_checks());
        }
        checks
    }

    pub(crate) fn handler_runtime(&self) -> Result<tokio::runtime::Runtime, WorkerError> {
        let threads = self
            .handler_threads
            .unwrap_or_else(|| std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2).max(2));
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .thread_name("runpod-handler")
            .enable_all()
            .build()
            .map_err(|source| WorkerError::Io { what: "cannot start the handler runtime", source })
    }
}

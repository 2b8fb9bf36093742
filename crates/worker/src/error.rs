//! [`WorkerError`]: why a worker could not start or run.

use crate::ConfigError;

/// Why [`Worker::run`](crate::Worker::run) or a local mode ended with an error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WorkerError {
    /// The `RUNPOD_*` environment is missing or malformed.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A command-line flag is unknown or has a bad value.
    #[error("bad command line: {0}")]
    Args(String),
    /// `--schema` on a worker that was given no schema (exit status 2 from
    /// [`Worker::start`](crate::Worker::start)).
    #[error("this worker has no schema: its Input and Output types derive no schemars::JsonSchema, or main does not call Worker::schema_from_types (feature `schema` of runpod-worker)")]
    NoSchema,
    /// The `--test-input` job could not be read.
    #[error("bad test input: {0}")]
    TestInput(String),
    /// The output of a [`Worker::run_test_job`](crate::Worker::run_test_job) job does not
    /// decode into the type asked for.
    #[error("bad test output: {0}")]
    TestOutput(String),
    /// The `--test-input` job failed (its result was printed).
    #[error("job {id} failed: {error}")]
    JobFailed {
        /// The job id.
        id: String,
        /// The job's error.
        error: String,
    },
    /// A fitness check failed at start-up (reported to the platform as unhealthy).
    #[error(transparent)]
    Unfit(#[from] crate::fitness::FitnessFailure),
    /// The program's start-up (a load-balancing worker's model load) failed.
    #[error("start-up failed: {0}")]
    Startup(String),
    /// An OS resource (thread, runtime, socket) could not be set up.
    #[error("{what}: {source}")]
    Io {
        /// What was being set up.
        what: &'static str,
        /// The OS error.
        source: std::io::Error,
    },
}

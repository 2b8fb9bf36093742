//! The Runpod Serverless worker runtime.
//!
//! Write a [`Handler`] over your own input and output types (or wrap an async function with
//! [`handler_fn`], or a stream of chunks with [`stream_fn`]) and hand it to [`start`], or to
//! the one builder, [`Worker`] (settings shared by every mode: fitness checks, shutdown grace
//! and signal, a start-up that loads the model with [`Worker::loading`]), and call
//! [`Worker::start`]; the same binary then runs unchanged on Runpod Serverless and on your
//! machine, in the mode it is started in:
//!
//! - on a queue endpoint it reads the `RUNPOD_*` environment, long-polls for jobs, runs up to
//!   the configured number at once, posts progress, stream chunks and results (in order,
//!   results retried for minutes), pings the heartbeat from its own thread, honours
//!   cancellation and `executionTimeout`, and on SIGTERM finishes in-flight jobs and exits 0;
//! - on a load-balancing endpoint (`--load-balancing`, `LOAD_BALANCING=1`, or the endpoint's
//!   environment) it serves the handler over HTTP on `PORT`, its health path answering `204`
//!   during the start-up and `200` after (the `load_balancing` module);
//! - `--test-input '{"input": ...}'` runs one job and prints its result;
//! - `--serve-api --port 8000` starts the local endpoint in-process, so
//!   `curl localhost:8000/v2/local/runsync -d '{"input": ...}'` just works.
//!
//! A failed job reports a [`Failure`] (`error_type`, `error_message`, traceback): the
//! handler's `Error` converts into one, so an error type can name each of its kinds.
//!
//! The [`openai`] module serves the platform's OpenAI-compatible route
//! (`/v2/{endpoint}/openai/v1/...`) from the same handler as your own input.
//!
//! Where things are: [`Worker`] (the builder) and its modes, `queue` (the job loop and the
//! worker API), `load_balancing`, `local` (`--test-input`, `--serve-api`); the one handler
//! call (`invoke`) and the [`JobContext`] with its sink (where progress and chunks go, one per
//! mode); [`openai`] (wire types apart from the responder and errors).
//!
//! ```
//! use runpod_worker::{handler_fn, Failure, Job, JobContext, JobStatus, TestOutcome, Worker};
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(Deserialize)]
//! struct Input { name: String }
//! #[derive(Serialize, Deserialize)]
//! struct Output { greeting: String }
//!
//! async fn greet(job: Job<Input>, ctx: JobContext) -> Result<Output, Failure> {
//!     ctx.progress("thinking");
//!     if job.input.name.is_empty() {
//!         return Err(Failure::new("EmptyName", "name must not be empty"));
//!     }
//!     Ok(Output { greeting: format!("hello, {}", job.input.name) })
//! }
//!
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! // In `main() -> ExitCode`: `runpod_worker::start(handler_fn(greet)).await`. Here, test jobs:
//! let done: TestOutcome<Output> = Worker::new(handler_fn(greet))
//!     .run_test_job(serde_json::json!({"input": {"name": "Ada"}}))
//!     .await?;
//! assert_eq!(done.output.unwrap().greeting, "hello, Ada");
//! assert_eq!(done.progress, ["thinking"]);
//!
//! let failed: TestOutcome = Worker::new(handler_fn(greet))
//!     .run_test_job(serde_json::json!({"input": {"name": ""}}))
//!     .await?;
//! assert_eq!(failed.status, JobStatus::Failed);
//! assert_eq!(failed.error.unwrap().error_type, "EmptyName");
//! # Ok::<(), runpod_worker::WorkerError>(())
//! # }).unwrap();
//! ```
//!
//! To call a handler in a unit test, `testing::TestContext` (feature `testing`) gives a
//! [`JobContext`] that records progress and chunks; `testing::LocalWorker` runs a worker
//! against a real local endpoint in the test's process.
//!
//! Every mode makes the same handler call: the input decoded (a mismatch names the field), the
//! handler run with its panics caught, the output serialized, the error made a [`Failure`]
//! (a backtrace in its message moves to the traceback; build-machine paths are cut).
//!
//! Features: `serve-api` (default: `--serve-api`, the local endpoint in the binary), `s3`
//! (default: `JobContext::s3`, uploads, downloads, the `runpod_s3` re-export), `anyhow`
//! (`From<anyhow::Error> for Failure`), `testing` (the `testing` module), `load-balancing`
//! (default: load-balancing mode, `Worker::route`, `Worker::routes` and the
//! `load_balancing` module, serving axum, which `serve-api` brings in anyway), `schema`
//! (`Worker::schema_from_types`: the worker's JSON Schemas from types that derive
//! `schemars::JsonSchema`; `--schema` prints them, and each input is checked against them).

#![forbid(unsafe_code)]

mod cli;
mod config;
mod context;
mod debugger;
mod error;
mod failure;
pub mod fitness;
mod handler;
mod invoke;
mod job;
#[cfg(feature = "load-balancing")]
pub mod load_balancing;
mod local;
mod logging;
pub mod model_cache;
pub mod openai;
mod options;
mod panic;
mod queue;
#[cfg(feature = "schema")]
mod schema;
mod scope;
mod signal;
mod sink;
mod startup;
#[cfg(feature = "s3")]
mod storage;
mod stream;
#[cfg(feature = "testing")]
pub mod testing;
mod version;
mod worker;

pub use async_trait::async_trait;
pub use cli::RUNTIME_FLAGS;
pub use config::{Config, ConfigError};
pub use context::{CancelReason, JobContext};
pub use error::WorkerError;
pub use failure::Failure;
pub use handler::{handler_fn, Handler, HandlerFn};
pub use job::{decode_input, InputError, Job};
pub use local::test_input::TestOutcome;
pub use logging::init_logging;
pub use runpod_protocol::{JobStatus, WorkerSchema};
pub use sink::StreamError;
pub use stream::{stream_fn, StreamFn, StreamFnError};
pub use worker::{start, Worker};

/// S3-compatible storage (uploads, presigned URLs, downloads); see `JobContext::s3`.
#[cfg(feature = "s3")]
pub use runpod_s3;
/// Re-exported so handlers can name the cancellation token's type.
pub use tokio_util::sync::CancellationToken;

/// The README's examples, compiled and run by `cargo test --doc`.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

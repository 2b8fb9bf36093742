//! The Runpod Serverless worker runtime.
//!
//! Write a [`Handler`] over your own input and output types (or wrap an async function with
//! [`handler_fn`], or a stream of chunks with [`stream_fn`]) and hand it to [`start`]; the
//! same binary then runs unchanged on Runpod Serverless and on your machine:
//!
//! - on the platform it reads the `RUNPOD_*` environment, long-polls for jobs, runs up to
//!   the configured number at once, posts progress, stream chunks and results (in order,
//!   results retried for minutes), pings the heartbeat from its own thread, honours
//!   cancellation and `executionTimeout`, and on SIGTERM finishes in-flight jobs and exits 0;
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
//! Features: `serve-api` (default: `--serve-api`, the local endpoint in the binary), `s3`
//! (default: `JobContext::s3`, uploads, downloads, the `runpod_s3` re-export), `anyhow`
//! (`From<anyhow::Error> for Failure`), `testing` (the `testing` module), `load-balancing`
//! (default: the `load_balancing` module, serving axum, which `serve-api` brings in anyway).

#![forbid(unsafe_code)]

mod cli;
mod config;
mod context;
mod debugger;
mod error;
mod failure;
pub mod fitness;
mod handler;
mod job;
#[cfg(feature = "load-balancing")]
pub mod load_balancing;
mod local;
mod logging;
pub mod model_cache;
pub mod openai;
mod queue;
mod signal;
#[cfg(feature = "s3")]
mod storage;
mod stream;
#[cfg(feature = "testing")]
pub mod testing;
mod worker;

pub use async_trait::async_trait;
pub use cli::RUNTIME_FLAGS;
pub use config::{Config, ConfigError};
pub use context::{CancelReason, JobContext, StreamError};
pub use error::WorkerError;
pub use failure::Failure;
pub use handler::{handler_fn, Handler, HandlerFn};
pub use job::{decode_input, InputError, Job};
pub use local::test_input::TestOutcome;
pub use logging::init_logging;
pub use runpod_protocol::JobStatus;
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

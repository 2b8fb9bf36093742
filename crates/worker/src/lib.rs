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
//! ```
//! use runpod_worker::{handler_fn, Job, JobContext};
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(Deserialize)]
//! struct Input { name: String }
//! #[derive(Serialize)]
//! struct Output { greeting: String }
//!
//! async fn greet(job: Job<Input>, ctx: JobContext) -> Result<Output, String> {
//!     ctx.progress("thinking");
//!     if job.input.name.is_empty() {
//!         return Err("name must not be empty".into());
//!     }
//!     Ok(Output { greeting: format!("hello, {}", job.input.name) })
//! }
//!
//! # let rt = tokio::runtime::Runtime::new().unwrap();
//! # rt.block_on(async {
//! // In `main() -> ExitCode`: `runpod_worker::start(handler_fn(greet)).await`. Here, one test job:
//! let result = runpod_worker::Worker::new(handler_fn(greet))
//!     .run_test_job(serde_json::json!({"input": {"name": "Ada"}}))
//!     .await
//!     .unwrap();
//! assert_eq!(result["output"]["greeting"], "hello, Ada");
//! # });
//! ```

mod backoff;
mod cli;
mod config;
mod context;
mod debugger;
mod error;
mod executor;
pub mod fitness;
mod handler;
mod heartbeat;
mod held_jobs;
mod http;
mod job;
mod job_loop;
mod lifecycle;
#[cfg(feature = "load-balancing")]
pub mod load_balancing;
mod logging;
pub mod model_cache;
mod outcome;
mod sender;
mod serve_api;
mod shutdown;
mod stop;
#[cfg(feature = "s3")]
mod storage;
mod stream;
mod test_input;
mod worker;
mod worker_api;

pub use async_trait::async_trait;
pub use config::{Config, ConfigError};
pub use context::{CancelReason, JobContext, StreamError};
pub use error::WorkerError;
pub use handler::{handler_fn, Handler, HandlerFn};
pub use job::{decode_input, InputError, Job};
pub use logging::init_logging;
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

//! Typed async client for Runpod Serverless endpoints, and the `runpod` CLI.
//!
//! An [`Endpoint`] sends the requests of the platform's request guide: [`run`](Endpoint::run)
//! (queue a job, get a [`JobHandle`]), [`run_sync`](Endpoint::run_sync) (queue and wait, polling
//! `/status` when the server answers before the job is done), [`status`](Endpoint::status),
//! [`stream`](Endpoint::stream) (an async `Stream` of chunks), [`cancel`](Endpoint::cancel),
//! [`retry`](Endpoint::retry), [`purge_queue`](Endpoint::purge_queue) and
//! [`health`](Endpoint::health). Inputs are any `Serialize` type and outputs are decoded into
//! the caller's type; failures are one [`Error`] enum; `429`s and transient failures are
//! retried as [`RetryPolicy`] says, never in a way that could queue a job twice.
//!
//! ```
//! use runpod_client::{Endpoint, Error, JobStatus, PolicyBuilder, Request};
//! use std::time::Duration;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // runpod-local stands in for the platform here; without with_base_url the client talks
//! // to https://api.runpod.ai/v2/{endpoint_id}.
//! let local = runpod_local::LocalEndpoint::builder().api_key("my-key").bind("127.0.0.1:0").await?;
//! let ep = Endpoint::new(local.endpoint_id(), Some("my-key"))?.with_base_url(local.base_url())?;
//!
//! let request = Request::new(serde_json::json!({"prompt": "hello"}))
//!     .policy(PolicyBuilder::new().ttl(Duration::from_secs(60)).build()?);
//! let job = ep.run(&request).await?;
//! let state = job.status::<String>().await?;
//! println!("{} is {}", job.id(), state.status);
//!
//! // No worker runs here, so the job is still queued: cancel it.
//! assert_eq!(ep.cancel(job.id()).await?.status, JobStatus::Cancelled);
//! // Unknown jobs are a typed error.
//! assert!(matches!(ep.status::<String>("no-such-job").await, Err(Error::NotFound { .. })));
//! # Ok(()) }
//! ```
//!
//! Secrets stay secret: the API key (given, or read from `RUNPOD_API_KEY`) and `s3Config`
//! keys are redacted in `Debug` and never appear in errors.

#![forbid(unsafe_code)]

mod endpoint;
mod error;
mod request;
mod retry;
mod state;

pub use endpoint::JobHandle;
pub use endpoint::{Endpoint, API_KEY_ENV, DEFAULT_MAX_ANSWER_BYTES, PLATFORM_BASE_URL};
pub use error::Error;
pub use request::{PolicyBuilder, Request, S3ConfigBuilder};
pub use retry::RetryPolicy;
pub use runpod_protocol::{
    Health, JobCounts, JobStatus, Policy, PurgeResponse, S3Config, Secret, StreamResponse, WorkerCounts,
};
pub use state::JobState;

/// The README's examples, compiled and run by `cargo test --doc`.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

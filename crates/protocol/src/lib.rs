//! Wire types of the Runpod Serverless protocol.
//!
//! Every crate of this workspace speaks the same JSON: the client API that applications call
//! (`/run`, `/runsync`, `/status/{id}`, ...) and the worker API that a worker pulls jobs from
//! (`job-take`, `job-done`, `job-stream`, `ping`, ...). The types here are that JSON, with the
//! platform's field names (`camelCase`, `SCREAMING_SNAKE_CASE` statuses) and its documented limits.
//!
//! Secrets (`s3Config` keys) are wrapped in [`Secret`], whose `Debug` and `Display` print a
//! placeholder, so that a job or a request can be logged without leaking them.
//!
//! ```
//! use runpod_protocol::{JobRequest, JobStatus, StatusResponse};
//!
//! let req: JobRequest = serde_json::from_str(
//!     r#"{"input": {"prompt": "hi"}, "policy": {"executionTimeout": 60000},
//!         "s3Config": {"accessId": "AK", "accessSecret": "SK", "bucketName": "b", "endpointUrl": "http://127.0.0.1:9000"}}"#,
//! ).unwrap();
//! req.validate().unwrap();
//! assert!(!format!("{req:?}").contains("SK"));
//!
//! let status: StatusResponse = serde_json::from_str(
//!     r#"{"delayTime": 824, "executionTime": 3391, "id": "sync-1", "output": 42, "status": "COMPLETED"}"#,
//! ).unwrap();
//! assert_eq!(status.status, JobStatus::Completed);
//! ```

#![forbid(unsafe_code)]

mod health;
mod job;
pub mod limits;
mod object;
mod request;
mod response;
mod schema;
mod secret;
mod status;
mod worker;

pub use health::{Health, JobCounts, WorkerCounts};
pub use job::Job;
pub use request::{JobRequest, Policy, PolicyError, S3Config};
pub use response::{ErrorBody, PurgeResponse, RunResponse, StatusResponse, StreamChunk, StreamResponse};
pub use schema::{SchemaDocumentError, SchemaViolation, WorkerSchema};
pub use secret::Secret;
pub use status::JobStatus;
pub use worker::{ErrorReport, JobDone, JobsToStop, StreamPost};

/// The README's examples, compiled and run by `cargo test --doc`.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

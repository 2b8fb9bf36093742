//! S3-compatible storage for Runpod Serverless workers.
//!
//! Jobs that handle large files carry an `s3Config` (or the endpoint sets `BUCKET_ENDPOINT_URL`,
//! `BUCKET_ACCESS_KEY_ID`, `BUCKET_SECRET_ACCESS_KEY`). This crate turns that into:
//!
//! - [`StorageConfig`]: the bucket, endpoint, keys and signing region (taken from AWS,
//!   Backblaze, DigitalOcean and R2 URL shapes, else `us-east-1`);
//! - [`Storage`]: an `aws_sdk_s3::Client` built once per distinct configuration and cached,
//!   with path-style addressing and checksums only when required (many S3-compatible servers
//!   reject the newer default checksum headers), and helpers that upload bytes, files (multipart,
//!   streamed from disk, parts in parallel) and streams to `{bucket}/{job_id}/{name}`, answering
//!   with a presigned GET URL (7 days unless set);
//! - [`Uploader`]: the same uploads, or the data inline as a base64 `data:` URL (logged) when no
//!   storage is configured, as the Python SDK falls back to local files;
//! - [`Downloader`]: a job's input URLs (`http`, `https`, `s3://`) into a temporary directory
//!   removed when dropped, in parallel, with retries, a size cap (`RUNPOD_MAX_DOWNLOAD_BYTES`,
//!   default 1 GiB; `.zip` archives extracted under the same byte cap and at most
//!   `RUNPOD_MAX_ARCHIVE_ENTRIES`, default 10,000, entries) and a server-side request forgery
//!   guard (only publicly routable addresses, the checked address is the one connected to,
//!   redirects checked again; `RUNPOD_ALLOW_PRIVATE_DOWNLOAD_URLS=true` lifts it).
//!
//! Addresses are classified by `runpod_net`, the one network policy of runpod-rs (runpod-local's
//! webhooks use it too); each user decides over the classes.
//!
//! The S3 client connects only to endpoint addresses its [`EndpointPolicy`] allows: by default
//! publicly routable ones, since a job's `s3Config.endpointUrl` is chosen by whoever sends the
//! job and could otherwise point the worker at cloud metadata (`169.254.169.254`), its own
//! loopback or its private network. `RUNPOD_ALLOW_PRIVATE_S3_ENDPOINTS=private` adds private
//! networks (RFC 1918, CGNAT, IPv6 unique-local: a MinIO on the LAN), `=true` any address (local
//! development; the test suite's SeaweedFS on 127.0.0.1). The check is made on the addresses
//! connected to (IP-literal hosts when the client is built, names in the client's resolver),
//! the SDK follows no redirects, and a guarded client uses no proxy. A refused endpoint is
//! [`StorageError::BlockedEndpoint`], before anything is sent. The same rule covers the
//! `BUCKET_*` configuration.
//!
//! Errors name the operation, bucket, key and endpoint and never contain the keys; the SDK's own
//! DEBUG and TRACE output, which prints the access key id, is kept out of the logs ([`quiet_sdk`]).
//!
//! ```
//! use runpod_s3::{region_from_endpoint, StorageConfig, Uploader};
//!
//! // The configuration a job's s3Config gives; the region comes from the URL.
//! let config = StorageConfig::new("https://s3.eu-west-3.amazonaws.com", "AKID", "SECRET", "results");
//! assert_eq!(config.effective_region(), "eu-west-3");
//! assert_eq!(region_from_endpoint("https://nyc3.digitaloceanspaces.com").as_deref(), Some("nyc3"));
//! assert!(!format!("{config:?}").contains("SECRET"));
//!
//! // Without storage, uploads come back inline.
//! let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
//! let out = rt.block_on(Uploader::new(None).upload_bytes("hi.txt", &b"hi"[..], "text/plain")).unwrap();
//! assert_eq!(out.url, "data:text/plain;base64,aGk=");
//! ```
//!
//! With a configured bucket (`storage` built by `Storage::new(&config)?.for_job(job_id)?`):
//!
//! ```no_run
//! # async fn demo(storage: runpod_s3::Storage) -> Result<(), runpod_s3::StorageError> {
//! let uploaded = storage.upload_file("video.mp4", "/tmp/out.mp4", None).await?;
//! println!("{}", uploaded.url); // presigned GET URL, valid 7 days
//! # Ok(()) }
//! ```

#![forbid(unsafe_code)]

mod client;
mod config;
mod content_type;
mod download;
mod endpoint_policy;
mod error;
mod sdk_logs;
mod storage;
mod upload;
mod uploaded;

#[cfg(feature = "test-support")]
pub mod test_support;

pub use aws_sdk_s3;
/// The byte buffer type uploads take (re-exported so callers need no `bytes` dependency).
pub use bytes::Bytes;
pub use client::{cached_client_count, client_for};
pub use config::{
    region_from_endpoint, StorageConfig, DEFAULT_REGION, ENV_ACCESS_KEY_ID, ENV_BUCKET_NAME,
    ENV_ENDPOINT_URL, ENV_SECRET_ACCESS_KEY,
};
pub use content_type::content_type_for;
pub use download::{
    extract_zip, DownloadOptions, Downloader, Downloads, DEFAULT_MAX_ARCHIVE_ENTRIES,
    DEFAULT_MAX_DOWNLOAD_BYTES, ENV_ALLOW_PRIVATE_DOWNLOAD_URLS, ENV_MAX_ARCHIVE_ENTRIES,
    ENV_MAX_DOWNLOAD_BYTES,
};
pub use endpoint_policy::{EndpointPolicy, ENV_ALLOW_PRIVATE_S3_ENDPOINTS};
pub use error::{redact_url, DownloadError, StorageError};
pub use sdk_logs::quiet_sdk;
pub use storage::{Storage, TransferOptions, DEFAULT_PRESIGN_EXPIRY, MIN_PART_SIZE};
pub use upload::{Uploader, DEFAULT_INLINE_LIMIT};
pub use uploaded::Uploaded;

/// The README's examples, compiled and run by `cargo test --doc`.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

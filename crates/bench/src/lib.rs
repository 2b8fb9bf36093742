//! Benchmarks of runpod-rs workers against the official Python SDK worker.
//!
//! The `runpod-bench` binary starts a `runpod-local` endpoint, a worker built on `runpod-worker`
//! (the `runpod-bench-worker` binary of this crate) and one built on the Python SDK
//! (`runpod==1.12.0`), pushes jobs through `/runsync` and measures throughput, latency, memory and
//! start-up time; the crate's README says how to read its figures. This library holds the parts
//! that do not need a running system: latency [`stats`], the [`report`] (text table, JSON), the
//! [`svg`] chart and [`procfs`] memory readings. The crate's integration tests are the fault tests.
//!
//! ```
//! use runpod_bench::report::{Report, Row, RUST};
//! use runpod_bench::stats::Summary;
//! use std::time::Duration;
//!
//! let latencies = [700, 800, 900].map(Duration::from_micros);
//! let row = Row {
//!     worker: RUST.into(), scenario: "noop".into(), handler_ms: 0, concurrency: 1,
//!     jobs: 3, errors: 0, seconds: 0.0024, jobs_per_s: 1250.0,
//!     latency: Summary::of(&latencies), idle_rss_kib: Some(4096), peak_rss_kib: Some(5000),
//!     worker_cpu_ms_per_job: Some(0.08),
//! };
//! let report = Report { machine: "2 cores".into(), rows: vec![row], ..Default::default() };
//! assert!(report.table().contains("1250"));
//! assert!(runpod_bench::svg::chart(&report).starts_with("<svg"));
//! ```

pub mod procfs;
pub mod report;
pub mod stats;
pub mod svg;

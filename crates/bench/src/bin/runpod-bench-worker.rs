//! The benchmark's worker, built on `runpod-worker`: the same handler as the Python one.
//!
//! Input `{"sleep_ms"?: n, "value"?: any, "fail"?: "message"}`: sleeps `sleep_ms` (default 0),
//! then fails with `fail` if given, else returns `{"value": value}` (or `{"ok": true}`).
//! `BENCH_CONCURRENCY` (default 1) sets how many jobs run at once, `BENCH_MAX_SLEEP_MS` (default
//! none) caps `sleep_ms` (random inputs can ask for years: serde reads `[n]` as `{"sleep_ms": n}`);
//! everything else comes from
//! the `RUNPOD_*` environment and the runtime's flags, as for any worker started with
//! `runpod_worker::start`.

#![forbid(unsafe_code)]

use runpod_worker::{handler_fn, Job, JobContext, Worker};
use serde::Deserialize;
use serde_json::{json, Value};
use std::process::ExitCode;
use std::time::Duration;

#[derive(Deserialize)]
struct Input {
    #[serde(default)]
    sleep_ms: u64,
    #[serde(default)]
    value: Option<Value>,
    #[serde(default)]
    fail: Option<String>,
}

#[tokio::main]
async fn main() -> ExitCode {
    let concurrency = std::env::var("BENCH_CONCURRENCY").ok().and_then(|v| v.parse().ok()).unwrap_or(1);
    let max_sleep_ms: u64 =
        std::env::var("BENCH_MAX_SLEEP_MS").ok().and_then(|v| v.parse().ok()).unwrap_or(u64::MAX);
    let handler = handler_fn(move |job: Job<Input>, _ctx: JobContext| async move {
        let input = job.input;
        let sleep_ms = input.sleep_ms.min(max_sleep_ms);
        if sleep_ms > 0 {
            tokio::time::sleep(Duration::from_millis(sleep_ms)).await;
        }
        match (input.fail, input.value) {
            (Some(message), _) => Err(message),
            (None, Some(value)) => Ok(json!({ "value": value })),
            (None, None) => Ok(json!({ "ok": true })),
        }
    });
    Worker::new(handler).concurrency(concurrency).start().await
}

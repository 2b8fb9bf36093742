//! The load generator: `/runsync` jobs, and the loopback floor, at a fixed concurrency.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The API key of every endpoint the benchmark starts, and what its load sends.
pub(crate) const API_KEY: &str = "bench-client-key";

/// What one load run measured.
#[derive(Debug, Default)]
pub(crate) struct LoadResult {
    /// Latency of every successful job.
    pub latencies: Vec<Duration>,
    /// Requests that failed, or jobs that did not complete.
    pub errors: usize,
    /// The first error, for the log.
    pub first_error: Option<String>,
    /// Time from the first request to the last answer.
    pub elapsed: Duration,
}

impl LoadResult {
    /// Completed jobs per second.
    pub(crate) fn rate(&self) -> f64 {
        self.latencies.len() as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// Where the load goes.
#[derive(Clone)]
pub(crate) struct Target {
    /// HTTP client shared by all tasks (its pool keeps connections alive).
    pub client: reqwest::Client,
    /// `{base}/v2/{endpoint_id}`.
    pub endpoint_url: String,
    /// Client API key.
    pub api_key: String,
}

/// Either a `/runsync` job per iteration, or the floor's `/run` + `/status` pair.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// `POST /runsync` with this input's sleep (ms); the answer must be `COMPLETED`.
    RunSync { sleep_ms: u64 },
    /// `POST /run` then `GET /status/{id}`: two HTTP round trips, no worker.
    Floor,
}

/// Runs up to `jobs` iterations with `concurrency` in flight, starting none after `max`.
pub(crate) async fn run(
    target: &Target,
    mode: Mode,
    jobs: usize,
    concurrency: usize,
    max: Duration,
) -> LoadResult {
    let next = Arc::new(AtomicUsize::new(0));
    let out = Arc::new(Mutex::new(LoadResult::default()));
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let (next, out, target) = (next.clone(), out.clone(), target.clone());
        tasks.push(tokio::spawn(async move {
            let mut local = Vec::with_capacity(jobs / concurrency + 1);
            loop {
                if next.fetch_add(1, Ordering::Relaxed) >= jobs || start.elapsed() >= max {
                    break;
                }
                let t = Instant::now();
                match one(&target, mode).await {
                    Ok(()) => local.push(t.elapsed()),
                    Err(e) => {
                        let mut o = out.lock().unwrap();
                        o.errors += 1;
                        o.first_error.get_or_insert(e);
                    }
                }
            }
            out.lock().unwrap().latencies.extend(local);
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
    let mut result = std::mem::take(&mut *out.lock().unwrap());
    result.elapsed = start.elapsed();
    result
}

async fn one(t: &Target, mode: Mode) -> Result<(), String> {
    let auth = format!("Bearer {}", t.api_key);
    match mode {
        Mode::RunSync { sleep_ms } => {
            let body = if sleep_ms == 0 {
                r#"{"input":{}}"#.to_string()
            } else {
                format!(r#"{{"input":{{"sleep_ms":{sleep_ms}}}}}"#)
            };
            let v = post_json(t, &format!("{}/runsync", t.endpoint_url), &auth, body).await?;
            match v.get("status").and_then(|s| s.as_str()) {
                Some("COMPLETED") => Ok(()),
                other => Err(format!("runsync answered status {other:?}: {v}")),
            }
        }
        Mode::Floor => {
            let v = post_json(t, &format!("{}/run", t.endpoint_url), &auth, r#"{"input":{}}"#.into()).await?;
            let id = v.get("id").and_then(|s| s.as_str()).ok_or_else(|| format!("no id in {v}"))?;
            let resp = t
                .client
                .get(format!("{}/status/{id}", t.endpoint_url))
                .header("authorization", &auth)
                .send()
                .await
                .map_err(|e| e.to_string())?;
            let status = resp.status();
            let bytes = resp.bytes().await.map_err(|e| e.to_string())?;
            if !status.is_success() {
                return Err(format!("status answered {status}: {}", String::from_utf8_lossy(&bytes)));
            }
            Ok(())
        }
    }
}

async fn post_json(t: &Target, url: &str, auth: &str, body: String) -> Result<serde_json::Value, String> {
    let resp = t
        .client
        .post(url)
        .header("authorization", auth)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let status = resp.status();
    let bytes = resp.bytes().await.map_err(|e| e.to_string())?;
    if !status.is_success() {
        return Err(format!("{url} answered {status}: {}", String::from_utf8_lossy(&bytes)));
    }
    serde_json::from_slice(&bytes).map_err(|e| format!("{url}: bad JSON ({e})"))
}

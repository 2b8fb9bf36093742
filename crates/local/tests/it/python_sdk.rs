//! Compatibility with the official Python worker SDK (`runpod==1.12.0`): a real Python worker,
//! configured only through `worker_env()`, runs a plain, a generator and a progress handler
//! against runpod-local; the results are checked over the client API.
//!
//! The virtualenv comes from `scripts/test.d/20-python.sh` (`RUNPOD_TEST_PYTHON`). Without it
//! the tests print `SKIPPED` (and fail when `CI` is set).
//!
//! The SDK forks a heartbeat process that outlives a killed worker, so each worker runs in a
//! process group of its own, killed whole; each test then checks that no process carrying the
//! worker's tag (an environment variable) is left.

use crate::common;

use common::Api;
use runpod_local::{LocalEndpoint, RateLimits};
use serde_json::{json, Value};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Environment variable that tags a worker's processes (inherited by the ones it forks).
const TAG_VAR: &str = "RUNPOD_LOCAL_TEST_WORKER_TAG";

/// The venv's python, or `None` (after saying why) when the test must be skipped.
fn python() -> Option<PathBuf> {
    let path = match std::env::var_os("RUNPOD_TEST_PYTHON") {
        Some(p) => PathBuf::from(p),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../.cache/venv-runpod-1.12.0/bin/python"),
    };
    if path.exists() {
        return Some(path);
    }
    let why = format!("no Python with runpod==1.12.0 at {} (run ./scripts/test.sh)", path.display());
    if std::env::var_os("CI").is_some() {
        panic!("{why}");
    }
    eprintln!("SKIPPED: {why}");
    None
}

/// Pids of the live processes whose environment holds `TAG_VAR=tag`.
fn tagged(tag: &str) -> Vec<u32> {
    let needle = format!("{TAG_VAR}={tag}");
    let Ok(dir) = std::fs::read_dir("/proc") else { return vec![] };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/environ"))
                .is_ok_and(|env| env.split(|b| *b == 0).any(|kv| kv == needle.as_bytes()))
        })
        .collect()
}

/// A Python worker process, leader of its own process group; the group is killed on drop,
/// which fails the test if any tagged process is still there 10 s later. Its log is printed
/// when the test failed.
struct Worker {
    child: std::process::Child,
    log: PathBuf,
    tag: String,
}

impl Drop for Worker {
    #[allow(unsafe_code, reason = "libc::kill has no safe wrapper in std")]
    fn drop(&mut self) {
        // SAFETY: kill(2) of the group this child leads (process_group(0) at spawn).
        unsafe { libc::kill(-(self.child.id() as libc::pid_t), libc::SIGKILL) };
        let _ = self.child.wait();
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut left = tagged(&self.tag);
        while !left.is_empty() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
            left = tagged(&self.tag);
        }
        if !left.is_empty() && !std::thread::panicking() {
            panic!("processes of the Python worker outlived it: {left:?}");
        }
        if std::thread::panicking() {
            let log = std::fs::read_to_string(&self.log).unwrap_or_default();
            let tail: String = log.chars().rev().take(4000).collect::<Vec<_>>().into_iter().rev().collect();
            eprintln!("--- python worker log ({}) ---\n{tail}", self.log.display());
        } else {
            let _ = std::fs::remove_file(&self.log);
        }
    }
}

/// Starts an endpoint with a key and one Python worker running handler `mode`.
async fn start(mode: &str) -> Option<(LocalEndpoint, Api, Worker)> {
    let python = python()?;
    let ep = LocalEndpoint::builder()
        .api_key("py-key")
        .ping_interval_ms(1000)
        .take_wait(Duration::from_secs(20))
        .stream_wait(Duration::from_millis(500))
        .rate_limits(RateLimits::none())
        .bind("127.0.0.1:0")
        .await
        .unwrap();
    let log = std::env::temp_dir().join(format!("runpod-local-py-{mode}-{}.log", std::process::id()));
    let log_file = std::fs::File::create(&log).unwrap();
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/python/worker.py");
    let tag = format!("{}-{mode}", std::process::id());
    let child = Command::new(python)
        .arg(script)
        .envs(ep.worker_env(&format!("py-{mode}")))
        .env(TAG_VAR, &tag)
        .process_group(0)
        .env("WORKER_MODE", mode)
        .env("PYTHONUNBUFFERED", "1")
        .env("RUNPOD_LOG_LEVEL", "DEBUG")
        // Its start-up fitness check exits when the disk has under 10 % free (a full dev disk).
        .env("RUNPOD_MIN_DISK_PERCENT", std::env::var("RUNPOD_MIN_DISK_PERCENT").unwrap_or("1".into()))
        .stdin(Stdio::null())
        .stdout(log_file.try_clone().unwrap())
        .stderr(log_file)
        .spawn()
        .unwrap();
    let api = Api::new(&ep, Some("py-key"));
    Some((ep, api, Worker { child, log, tag }))
}

/// Polls until the job is final (60 s at most: the SDK takes seconds to start).
async fn finished(api: &Api, id: &str) -> Value {
    let t = Instant::now();
    loop {
        let (code, st) = api.status(id).await;
        assert_eq!(code, 200, "{st}");
        if !matches!(st["status"].as_str(), Some("IN_QUEUE" | "IN_PROGRESS")) {
            return st;
        }
        assert!(t.elapsed() < Duration::from_secs(60), "job {id} not finished: {st}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn plain_handler() {
    let Some((_ep, api, _worker)) = start("plain").await else { return };
    let s3 = json!({"accessId": "AK", "accessSecret": "SK", "bucketName": "bucket-1", "endpointUrl": "http://127.0.0.1:1"});
    let (_, run) = api.post("run", &json!({"input": {"n": 21}, "s3Config": s3})).await;
    let st = finished(&api, run["id"].as_str().unwrap()).await;
    assert_eq!(st["status"], "COMPLETED", "{st}");
    assert_eq!(st["output"], json!({"double": 42, "bucket": "bucket-1"}));
    assert_eq!(st["workerId"], "py-plain");

    let (_, sync) = api.post("runsync", &json!({"input": {"n": 2}})).await;
    assert_eq!(sync["status"], "COMPLETED", "{sync}");
    assert_eq!(sync["output"]["double"], 4);

    let id = api.run(json!({"raise": true})).await;
    let st = finished(&api, &id).await;
    assert_eq!(st["status"], "FAILED", "{st}");
    let report: Value = serde_json::from_str(st["error"].as_str().unwrap()).expect("error is JSON text");
    assert_eq!(report["error_message"], "asked to raise");
    assert_eq!(report["worker_id"], "py-plain");

    let id = api.run(json!({"return_error": true})).await;
    let st = finished(&api, &id).await;
    assert_eq!((&st["status"], &st["error"]), (&json!("FAILED"), &json!("returned an error")), "{st}");

    // Cancel a running job: the SDK hears it on job-stop and is free for the next job.
    let id = api.run(json!({"sleep": 60})).await;
    api.wait_status(&id, "IN_PROGRESS").await;
    let (_, c) = api.post(&format!("cancel/{id}"), &json!({})).await;
    assert_eq!(c["status"], "CANCELLED");
    let t = Instant::now();
    let next = api.run(json!({"n": 5})).await;
    let st = finished(&api, &next).await;
    assert_eq!(st["output"]["double"], 10, "{st}");
    eprintln!("job after a cancel finished {:?} after it was queued", t.elapsed());
    assert!(t.elapsed() < Duration::from_secs(30));
    assert_eq!(api.status(&id).await.1["status"], "CANCELLED");

    // The SDK pings (it has a key): the worker shows in /health.
    let (_, h) = api.get("health").await;
    assert_eq!(h["workers"]["idle"].as_u64().unwrap() + h["workers"]["running"].as_u64().unwrap(), 1, "{h}");
}

#[tokio::test]
async fn generator_handler_streams() {
    let Some((_ep, api, _worker)) = start("generator").await else { return };
    let id = api.run(json!({"count": 4})).await;
    let mut chunks = Vec::new();
    let t = Instant::now();
    let final_status = loop {
        let (code, s) = api.get(&format!("stream/{id}")).await;
        assert_eq!(code, 200, "{s}");
        chunks.extend(s["stream"].as_array().unwrap().iter().map(|c| c["output"].clone()));
        if !matches!(s["status"].as_str(), Some("IN_QUEUE" | "IN_PROGRESS")) {
            break s["status"].clone();
        }
        assert!(t.elapsed() < Duration::from_secs(60), "stream not finished");
    };
    assert_eq!(final_status, "COMPLETED");
    let expected: Vec<Value> = (0..4).map(|i| json!({"chunk": i})).collect();
    assert_eq!(chunks, expected, "each chunk once, in order");
    let st = finished(&api, &id).await;
    assert_eq!(st["output"], Value::Array(expected), "return_aggregate_stream output kept");
}

#[tokio::test]
async fn progress_updates_show_while_running() {
    let Some((_ep, api, _worker)) = start("progress").await else { return };
    let id = api.run(json!({})).await;
    let mut seen: Vec<Value> = Vec::new();
    let t = Instant::now();
    let st = loop {
        let (_, st) = api.status(&id).await;
        if st["status"] == "IN_PROGRESS" && st.get("output").is_some() && seen.last() != Some(&st["output"]) {
            seen.push(st["output"].clone());
        }
        if !matches!(st["status"].as_str(), Some("IN_QUEUE" | "IN_PROGRESS")) {
            break st;
        }
        assert!(t.elapsed() < Duration::from_secs(60), "job not finished: {st}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(st["status"], "COMPLETED", "{st}");
    assert_eq!(st["output"], "done");
    assert_eq!(seen, vec![json!("step 0"), json!("step 1"), json!("step 2")]);
}

#[tokio::test]
async fn concurrent_worker_takes_batches() {
    let Some((_ep, api, worker)) = start("batch").await else { return };
    // Wait until the worker is up, so that the jobs below are taken together.
    let first = api.run(json!({"n": 0})).await;
    finished(&api, &first).await;
    let t = Instant::now();
    let mut ids = Vec::new();
    for n in 1..=8 {
        ids.push(api.run(json!({"n": n, "sleep": 1})).await);
    }
    for (n, id) in (1..=8).zip(&ids) {
        let st = finished(&api, id).await;
        assert_eq!(st["output"]["double"], 2 * n, "{st}");
    }
    let took = t.elapsed();
    eprintln!("8 jobs of 1 s on a worker of concurrency 4: {took:?}");
    assert!(took < Duration::from_secs(8), "jobs did not run concurrently (8 s when serial): {took:?}");
    let log = std::fs::read_to_string(&worker.log).unwrap_or_default();
    assert!(log.contains("job-take-batch"), "the SDK used the batch route");
}

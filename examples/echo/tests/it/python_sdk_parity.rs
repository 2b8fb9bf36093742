//! The echo binary against the Python SDK's local-testing conventions: `--rp_serve_api`
//! answers the SDK's root routes (`POST /run`, `/runsync`, `/status/{id}`, `/stream/{id}`) so
//! the curl lines of the SDK docs work as written, and `--rp_debugger` adds per-job timings to
//! the output.

use serde_json::{json, Value};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_echo");

/// A child process killed on drop.
struct Worker(Child);

impl Drop for Worker {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `echo --rp_serve_api --rp_api_port 0 <extra>` and returns it with its base URL
/// (`http://127.0.0.1:PORT`).
fn serve(extra: &[&str]) -> (Worker, String) {
    let mut child = Command::new(BIN)
        .args(["--rp_serve_api", "--rp_api_port", "0"])
        .args(extra)
        .env_remove("RUNPOD_WEBHOOK_GET_JOB")
        .env_remove("RUNPOD_ENDPOINT_ID")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(url) = line.strip_prefix("serving the local endpoint at ") {
                let _ = tx.send(url.trim().to_owned());
            }
        }
    });
    let url = rx.recv_timeout(Duration::from_secs(60)).expect("the worker printed its address");
    let base = url.split("/v2/").next().unwrap().to_owned();
    (Worker(child), base)
}

/// `curl -s -X POST {url} -H "Content-Type: application/json" [-d body]`, the SDK docs' form,
/// with `localhost` as they write it.
fn curl(url: &str, body: Option<&str>) -> Value {
    let url = url.replace("127.0.0.1", "localhost");
    let mut c = Command::new("curl");
    c.args(["-s", "-X", "POST", &url, "-H", "Content-Type: application/json"]);
    if let Some(b) = body {
        c.args(["-d", b]);
    }
    let out = c.output().expect("curl runs");
    assert!(out.status.success(), "curl {url}: {out:?}");
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{url}: {e}: {}", String::from_utf8_lossy(&out.stdout)))
}

#[test]
fn the_python_sdk_docs_curl_lines_work_unchanged() {
    let (_worker, base) = serve(&[]);
    // As in the SDK's local-testing docs: POST /runsync with {"input": ...}.
    let v = curl(&format!("{base}/runsync"), Some(r#"{"input": {"message": "Hello, world!"}}"#));
    assert_eq!(v["status"], "COMPLETED", "{v}");
    assert_eq!(v["output"]["echo"], "Hello, world!");

    // POST /run, then POST /status/{id} (the SDK's method) until it is done.
    let v = curl(&format!("{base}/run"), Some(r#"{"input": {"message": "queued", "repeat": 2}}"#));
    let id = v["id"].as_str().expect("an id").to_owned();
    let until = Instant::now() + Duration::from_secs(30);
    let done = loop {
        let s = curl(&format!("{base}/status/{id}"), None);
        if s["status"] == "COMPLETED" {
            break s;
        }
        assert!(Instant::now() < until, "{s}");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(done["output"], json!({"echo": "queued queued", "repeat": 2}));

    // POST /stream/{id} of a streaming job.
    let v = curl(&format!("{base}/run"), Some(r#"{"input": {"message": "s", "repeat": 3, "stream": true}}"#));
    let id = v["id"].as_str().unwrap().to_owned();
    let until = Instant::now() + Duration::from_secs(30);
    let mut chunks = Vec::new();
    loop {
        let s = curl(&format!("{base}/stream/{id}"), None);
        chunks.extend(s["stream"].as_array().cloned().unwrap_or_default());
        if s["status"] == "COMPLETED" {
            break;
        }
        assert!(Instant::now() < until, "{s}");
    }
    assert_eq!(chunks.len(), 3, "{chunks:?}");
    // The platform's routes are still there.
    let v = curl(&format!("{base}/v2/local/runsync"), Some(r#"{"input": {"message": "v2"}}"#));
    assert_eq!(v["output"]["echo"], "v2");
}

#[test]
fn rp_debugger_adds_per_job_timings_to_the_output() {
    for flag in ["--rp_debugger", "--debugger"] {
        let out = Command::new(BIN)
            .args(["--test_input", r#"{"input": {"message": "timed"}}"#, flag])
            .env_remove("RUNPOD_WEBHOOK_GET_JOB")
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(v["output"]["echo"], "timed", "{v}");
        let d = &v["output"]["rp_debugger"];
        let names: Vec<&str> =
            d["timestamps"].as_array().unwrap().iter().map(|t| t["name"].as_str().unwrap()).collect();
        assert_eq!(names, ["decode_input", "handler"], "{d}");
        for t in d["timestamps"].as_array().unwrap() {
            assert!(t["duration_ms"].as_f64().unwrap() >= 0.0, "{t}");
            assert!(t["start_utc"].as_str().unwrap().ends_with('Z'), "{t}");
        }
        assert!(d["system_info"]["runpod_worker"].as_str().unwrap().starts_with("runpod-rs/"), "{d}");
        // Counted from the process's start in the kernel's clock ticks (10 ms): a quick start may be 0.
        assert!(d["ready_delay_ms"].as_f64().unwrap() >= 0.0, "{d}");
    }
    // Without the flag, no timings.
    let out =
        Command::new(BIN).args(["--test_input", r#"{"input": {"message": "plain"}}"#]).output().unwrap();
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(v["output"].get("rp_debugger").is_none(), "{v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn log_lines_of_a_batch_job_carry_its_batch_id() {
    let ep = runpod_local::LocalEndpoint::builder()
        .api_key("k")
        .ping_interval_ms(500)
        .bind("127.0.0.1:0")
        .await
        .unwrap();
    let mut child = Command::new(BIN)
        .envs(ep.worker_env("echo-batch"))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let _worker = Worker(child);
    let fields = json!({"batchId": "batch_01j9abc123"});
    let req = runpod_protocol::JobRequest::new(json!({"message": "in a batch"}));
    ep.queue_with_fields("b-job-1", req, fields.as_object().unwrap().clone()).unwrap();
    let until = Instant::now() + Duration::from_secs(60);
    let mut lines = Vec::new();
    let line = loop {
        assert!(Instant::now() < until, "no completion line: {lines:#?}");
        let Ok(l) = rx.recv_timeout(Duration::from_millis(200)) else { continue };
        let v: Value = serde_json::from_str(&l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}"));
        if v["requestId"] == "b-job-1" && v["message"].as_str().unwrap().contains("job completed") {
            break v;
        }
        lines.push(l);
    };
    // As the Python SDK 1.12 logger writes it: the message starts with [batchId=...].
    assert!(
        line["message"].as_str().unwrap().starts_with("[batchId=batch_01j9abc123] job completed"),
        "{line}"
    );
}

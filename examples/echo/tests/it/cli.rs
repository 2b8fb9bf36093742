//! The echo worker as a real process: `--test-input`, `--serve-api`, and the platform mode
//! against a real `runpod-local` endpoint, stopped with SIGTERM.

use runpod_client::{Endpoint, JobStatus, Request};
use serde_json::{json, Value};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_echo");

fn echo_cmd() -> Command {
    let mut c = Command::new(BIN);
    for (k, _) in std::env::vars() {
        if k.starts_with("RUNPOD_") || k.starts_with("BUCKET_") || k == "RUST_LOG" {
            c.env_remove(k);
        }
    }
    c
}

fn run(args: &[&str], dir: Option<&std::path::Path>) -> Output {
    let mut c = echo_cmd();
    c.args(args);
    if let Some(d) = dir {
        c.current_dir(d);
    }
    c.output().expect("echo runs")
}

fn stdout_json(o: &Output) -> Value {
    let text = String::from_utf8_lossy(&o.stdout);
    serde_json::from_str(text.trim()).unwrap_or_else(|e| panic!("stdout is not one JSON value ({e}): {text}"))
}

#[test]
fn test_input_runs_one_job_and_prints_its_result() {
    let o = run(&["--test-input", r#"{"input": {"message": "hi", "repeat": 3, "stream": true}}"#], None);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v = stdout_json(&o);
    assert_eq!(
        v,
        json!({"id": "local_test", "status": "COMPLETED", "output": {"echo": "hi hi hi", "repeat": 3}})
    );
    let log = String::from_utf8_lossy(&o.stderr);
    assert!(log.contains("progress: {\"done\":3,\"of\":3}") && log.contains("stream chunk: \"hi\""), "{log}");
}

#[test]
fn failing_test_input_exits_1_with_the_field_path() {
    let o = run(&["--test_input", r#"{"input": {"message": "hi", "repeat": "many"}}"#], None);
    assert_eq!(o.status.code(), Some(1));
    let v = stdout_json(&o);
    assert_eq!(v["status"], "FAILED");
    let report: Value = serde_json::from_str(v["error"].as_str().unwrap()).unwrap();
    assert_eq!(report["error_type"], "InputError");
    assert!(report["error_message"].as_str().unwrap().contains("input.repeat"), "{report}");

    let o = run(&["--test-input", r#"{"input": {"message": "hi", "repeat": 0}}"#], None);
    assert_eq!(o.status.code(), Some(1));
    assert!(stdout_json(&o)["error"].as_str().unwrap().contains("repeat must be between 1 and 100"));

    let o = run(&["--test-input", "{not json"], None);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("bad test input"));
}

#[test]
fn test_input_json_file_and_at_file() {
    let dir = std::env::temp_dir().join(format!("echo-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("test_input.json"), r#"{"input": {"message": "from file"}}"#).unwrap();
    let o = run(&[], Some(&dir));
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(stdout_json(&o)["output"]["echo"], "from file");
    std::fs::write(dir.join("other.json"), r#"{"id": "x1", "input": {"message": "at"}}"#).unwrap();
    let o = run(&["--test-input", "@other.json"], Some(&dir));
    assert_eq!(stdout_json(&o)["id"], "x1");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn without_platform_env_it_names_the_missing_variable() {
    let dir = std::env::temp_dir();
    let o = run(&[], Some(&dir));
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("RUNPOD_WEBHOOK_GET_JOB") && err.contains("--test-input"), "{err}");
}

/// Waits for a line of the child's stderr containing `needle`; keeps draining it afterwards.
fn wait_stderr(child: &mut Child, needle: &str) -> String {
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let needle = needle.to_owned();
    std::thread::spawn(move || {
        let mut sent = false;
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if !sent && line.contains(&needle) {
                let _ = tx.send(line.clone());
                sent = true;
            }
        }
    });
    rx.recv_timeout(Duration::from_secs(60)).expect("the worker printed its address")
}

fn sigterm(child: &Child) {
    let ok = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap().success();
    assert!(ok, "kill -TERM failed");
}

fn wait_exit(child: &mut Child, secs: u64) -> std::process::ExitStatus {
    let until = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            return s;
        }
        if Instant::now() > until {
            let _ = child.kill();
            panic!("the worker did not exit within {secs} s");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_api_answers_runsync_and_stops_on_sigterm() {
    let mut child = echo_cmd()
        .args(["--serve-api", "--port", "0"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let line = wait_stderr(&mut child, "serving the local endpoint at ");
    let url = line.rsplit(' ').next().unwrap().to_owned();
    let client = reqwest::Client::new();
    let v: Value = client
        .post(format!("{url}/runsync"))
        .json(&json!({"input": {"message": "over http", "repeat": 2, "stream": true}}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["status"], "COMPLETED", "{v}");
    assert_eq!(v["output"], json!({"echo": "over http over http", "repeat": 2}));
    sigterm(&child);
    assert!(wait_exit(&mut child, 30).success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn platform_mode_finishes_the_running_job_on_sigterm_and_logs_json() {
    let ep = runpod_local::LocalEndpoint::builder()
        .api_key("k")
        .ping_interval_ms(500)
        .bind("127.0.0.1:0")
        .await
        .unwrap();
    let mut child = echo_cmd()
        .envs(ep.worker_env("echo-1"))
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let lines =
        std::thread::spawn(move || BufReader::new(stdout).lines().map_while(Result::ok).collect::<Vec<_>>());

    let client = Endpoint::new(ep.endpoint_id(), Some("k")).unwrap().with_base_url(ep.base_url()).unwrap();
    let job =
        client.run(&Request::new(json!({"message": "slow", "repeat": 4, "delay_ms": 400}))).await.unwrap();
    let id = job.id().to_owned();
    let until = Instant::now() + Duration::from_secs(60);
    while job.status::<Value>().await.unwrap().status != JobStatus::InProgress {
        assert!(Instant::now() < until, "the job never started");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    sigterm(&child);
    let exit = tokio::task::spawn_blocking(move || wait_exit(&mut child, 30)).await.unwrap();
    assert!(exit.success(), "{exit:?}");
    let s = job.status::<Value>().await.unwrap();
    assert_eq!(
        s.status,
        JobStatus::Completed,
        "the in-flight job finished and its result was delivered: {s:?}"
    );
    assert_eq!(s.output.unwrap()["echo"], "slow slow slow slow");

    // On the platform (RUNPOD_ENDPOINT_ID set) every log line is one JSON object.
    let lines = lines.join().unwrap();
    assert!(!lines.is_empty());
    let parsed: Vec<Value> = lines
        .iter()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("log line is not JSON ({e}): {l}")))
        .collect();
    assert!(parsed
        .iter()
        .all(|v| v["message"].is_string() && v["level"].is_string() && v.get("requestId").is_some()));
    assert!(
        parsed
            .iter()
            .any(|v| v["requestId"] == json!(id)
                && v["message"].as_str().unwrap().starts_with("job completed")),
        "{lines:#?}"
    );
    assert!(parsed.iter().any(|v| v["requestId"].is_null()));
    assert!(!lines.iter().any(|l| l.contains("\"k\"") || l.contains("Bearer")), "no key in logs");
}

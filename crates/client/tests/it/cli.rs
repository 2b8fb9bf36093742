//! The `runpod` binary, spawned against a real runpod-local endpoint.

use crate::common;

use common::{closed_port, local, spawn_worker, KEY};
use runpod_local::LocalEndpoint;
use serde_json::{json, Value};
use std::process::Output;
use std::time::Duration;

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    /// stdout's lines, each parsed as JSON.
    fn json_lines(&self) -> Vec<Value> {
        self.stdout.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"))).collect()
    }

    fn json(&self) -> Value {
        let lines = self.json_lines();
        assert_eq!(lines.len(), 1, "stdout: {}", self.stdout);
        lines.into_iter().next().unwrap()
    }
}

async fn runpod_with(ep: &LocalEndpoint, key: Option<&str>, args: &[&str]) -> Run {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_runpod"));
    cmd.args(["--endpoint", ep.endpoint_id(), "--base-url", ep.base_url()]).args(args);
    cmd.env_remove("RUNPOD_API_KEY").env_remove("RUNPOD_ENDPOINT_ID").env_remove("RUNPOD_BASE_URL");
    if let Some(k) = key {
        cmd.env("RUNPOD_API_KEY", k);
    }
    let out: Output = tokio::time::timeout(Duration::from_secs(60), cmd.output())
        .await
        .expect("runpod finished within 60 s")
        .expect("spawn runpod");
    let run = Run {
        code: out.status.code().expect("exit code"),
        stdout: String::from_utf8(out.stdout).unwrap(),
        stderr: String::from_utf8(out.stderr).unwrap(),
    };
    assert!(!run.stdout.contains(KEY) && !run.stderr.contains(KEY), "key leaked");
    run
}

async fn runpod(ep: &LocalEndpoint, args: &[&str]) -> Run {
    runpod_with(ep, Some(KEY), args).await
}

#[tokio::test]
async fn run_status_runsync_and_health() {
    let ep = local().await;
    let r = runpod(&ep, &["run", "--input", r#"{"n": 1}"#]).await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    let queued = r.json();
    assert_eq!(queued["status"], "IN_QUEUE");
    let id = queued["id"].as_str().unwrap().to_owned();

    let r = runpod(&ep, &["status", &id]).await;
    assert_eq!((r.code, r.json()["status"].clone()), (0, json!("IN_QUEUE")));

    let _w = spawn_worker(&ep);
    let r = runpod(&ep, &["status", &id, "--wait", "--timeout-ms", "20000"]).await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.json()["output"], json!({"echo": {"n": 1}}));
    // Not a terminal: no progress line on stderr.
    assert_eq!(r.stderr, "");

    let r = runpod(&ep, &["runsync", "--input", r#"{"greet": "hi"}"#, "--ttl-ms", "60000"]).await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    let done = r.json();
    assert_eq!(
        (done["status"].clone(), done["output"].clone()),
        (json!("COMPLETED"), json!({"echo": {"greet": "hi"}}))
    );

    let r = runpod(&ep, &["health"]).await;
    assert_eq!(r.code, 0);
    assert_eq!(r.json()["jobs"]["completed"], 2);
}

#[tokio::test]
async fn input_from_a_file_and_run_wait() {
    let ep = local().await;
    let _w = spawn_worker(&ep);
    let dir = std::env::temp_dir().join(format!("runpod-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("input.json");
    std::fs::write(&file, r#"{"from": "file"}"#).unwrap();
    let arg = format!("@{}", file.display());
    let r = runpod(&ep, &["run", "--input", &arg, "--wait"]).await;
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.json()["output"], json!({"echo": {"from": "file"}}));
}

#[tokio::test]
async fn job_outcomes_have_their_exit_codes() {
    let ep = local().await;
    let _w = spawn_worker(&ep);
    let r = runpod(&ep, &["runsync", "--input", r#"{"fail": "nope"}"#]).await;
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert_eq!(r.json()["error"], "nope");

    // Gave up waiting: exit 5, the id still printed.
    let r = runpod(&ep, &["run", "--input", r#"{"sleep_ms": 5000}"#, "--wait", "--timeout-ms", "800"]).await;
    assert_eq!(r.code, 5, "{}", r.stderr);
    let id = r.json()["id"].as_str().unwrap().to_owned();
    assert!(r.stderr.contains("still"), "{}", r.stderr);

    let r = runpod(&ep, &["cancel", &id]).await;
    assert_eq!((r.code, r.json()["status"].clone()), (0, json!("CANCELLED")));
    let r = runpod(&ep, &["status", &id]).await;
    assert_eq!(r.code, 3);
}

#[tokio::test]
async fn stream_prints_chunks_in_order() {
    let ep = local().await;
    let _w = spawn_worker(&ep);
    let r = runpod(&ep, &["run", "--input", r#"{"stream": 25}"#]).await;
    let id = r.json()["id"].as_str().unwrap().to_owned();
    let r = runpod(&ep, &["stream", &id]).await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.json_lines(), (0..25).map(|i| json!(i)).collect::<Vec<_>>());

    let r = runpod(&ep, &["run", "--input", r#"{"stream": 2, "fail": "mid-stream"}"#]).await;
    let id = r.json()["id"].as_str().unwrap().to_owned();
    let r = runpod(&ep, &["stream", &id]).await;
    assert_eq!(r.code, 1);
    assert_eq!(r.json_lines(), vec![json!(0), json!(1)]);
    assert!(r.stderr.contains("mid-stream"), "{}", r.stderr);
}

/// Text from the server reaches stderr with its control characters escaped: a job's error (the
/// worker's words) and an error answer that quotes the request (a job id holding escapes).
#[tokio::test]
async fn server_text_on_stderr_has_no_terminal_escapes() {
    let ep = local().await;
    let _w = spawn_worker(&ep);
    // JSON escapes: the job's error holds ESC, BEL, CSI, CR and a right-to-left override.
    let hostile = r"boom\u001b]0;pwned\u0007\u001b[2J\u009b31m\r\u202eend";
    let input = format!(r#"{{"stream": 1, "fail": "{hostile}"}}"#);
    let r = runpod(&ep, &["run", "--input", &input]).await;
    let id = r.json()["id"].as_str().unwrap().to_owned();
    let streamed = runpod(&ep, &["stream", &id]).await;
    assert_eq!(streamed.code, 1, "{}", streamed.stderr);
    assert!(
        streamed.stderr.contains(r"boom\u{1b}]0;pwned\u{7}\u{1b}[2J\u{9b}31m\u{d}\u{202e}end"),
        "{:?}",
        streamed.stderr
    );
    let r = runpod(&ep, &["status", "job\u{1b}[31mred"]).await;
    assert_eq!(r.code, 8, "{}", r.stderr);
    assert!(r.stderr.contains(r"job\u{1b}[31mred"), "{:?}", r.stderr);
    for run in [&streamed, &r] {
        assert!(!run.stderr.chars().any(|c| c.is_control() && c != '\n'), "{:?}", run.stderr);
    }
}

#[tokio::test]
async fn failures_have_distinct_exit_codes() {
    let ep = local().await;
    let cases: Vec<(Option<&str>, Vec<&str>, i32, &str)> = vec![
        (Some(KEY), vec!["status", "missing-job"], 8, "not found"),
        (Some("wrong"), vec!["health"], 7, "unauthorized"),
        (None, vec!["health"], 7, "RUNPOD_API_KEY"),
        (Some(KEY), vec!["run", "--input", "{not json"], 2, "not valid JSON"),
        (Some(KEY), vec!["run", "--input", "1", "--ttl-ms", "5"], 2, "policy.ttl"),
        (Some(KEY), vec!["run", "--input", "1", "--webhook", "nope"], 2, "webhook"),
        (Some(KEY), vec!["run", "--input", "null"], 6, "input"),
        (Some(KEY), vec!["frobnicate"], 2, "unrecognized subcommand"),
    ];
    for (key, args, code, needle) in cases {
        let r = runpod_with(&ep, key, &args).await;
        assert_eq!(r.code, code, "{args:?}: {}", r.stderr);
        assert!(r.stderr.contains(needle), "{args:?}: stderr {:?} lacks {needle:?}", r.stderr);
        assert_eq!(r.stdout, "", "{args:?}");
    }

    let port = closed_port().await;
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_runpod"))
        .args(["--endpoint", "x", "--base-url", &format!("http://127.0.0.1:{port}"), "health"])
        .env("RUNPOD_API_KEY", KEY)
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(11), "{}", String::from_utf8_lossy(&out.stderr));
}

#[tokio::test]
async fn progress_line_is_drawn_on_a_terminal() {
    // `script` gives the command a pseudo-terminal; skip where util-linux's script is absent.
    if std::process::Command::new("script").arg("--version").output().is_err() {
        if std::env::var_os("CI").is_some() {
            panic!("`script` (util-linux) is needed for this test");
        }
        eprintln!("SKIPPED: progress_line_is_drawn_on_a_terminal: no `script` command");
        return;
    }
    let ep = local().await;
    let _w = spawn_worker(&ep);
    let line = format!(
        "RUNPOD_API_KEY={KEY} {} --endpoint {} --base-url {} run --wait --input '{{\"sleep_ms\": 1200, \"progress\": [\"half-way\"]}}'",
        env!("CARGO_BIN_EXE_runpod"),
        ep.endpoint_id(),
        ep.base_url()
    );
    let out = tokio::time::timeout(
        Duration::from_secs(60),
        tokio::process::Command::new("script").args(["-qec", &line, "/dev/null"]).output(),
    )
    .await
    .unwrap()
    .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(text.contains("IN_PROGRESS") && text.contains("half-way"), "no progress line in {text:?}");
    assert!(text.contains("\"COMPLETED\""), "{text}");
}

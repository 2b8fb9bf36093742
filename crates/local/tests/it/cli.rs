//! The `runpod-local` binary: `--port 0` prints the address it serves; `worker-env` prints
//! the worker's variables.

use crate::common;

use common::{spawn_local, BIN};
use std::process::Command;
use std::time::Duration;

#[tokio::test]
async fn port_zero_prints_the_address_and_serves() {
    let (_server, lines) = spawn_local(&["--port", "0", "--api-key", "k", "--endpoint-id", "ep1"], 3).await;
    let base = lines[0].strip_prefix("runpod-local listening on ").expect(&lines[0]).to_owned();
    assert!(base.starts_with("http://127.0.0.1:") && !base.ends_with(":0"), "{base}");
    assert_eq!(lines[1], format!("endpoint: {base}/v2/ep1"));
    assert_eq!(lines[2], format!("console: {base}/ (open it in a browser)"));

    let http = reqwest::Client::builder().timeout(Duration::from_secs(20)).build().unwrap();
    let r = http
        .post(format!("{base}/v2/ep1/run"))
        .bearer_auth("k")
        .body(r#"{"input": 1}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["status"], "IN_QUEUE");
    let r = http.post(format!("{base}/v2/ep1/run")).body(r#"{"input": 1}"#).send().await.unwrap();
    assert_eq!(r.status(), 401);
}

#[test]
fn worker_env_prints_the_variables() {
    let out = Command::new(BIN)
        .args(["worker-env", "--url", "http://127.0.0.1:8000/", "--worker-id", "w7", "--api-key", "KEY"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let vars: Vec<(&str, &str)> = text.lines().map(|l| l.split_once('=').expect(l)).collect();
    let get = |k: &str| vars.iter().find(|(key, _)| *key == k).map(|(_, v)| *v);
    assert_eq!(get("RUNPOD_WEBHOOK_GET_JOB"), Some("http://127.0.0.1:8000/v2/local/job-take/$ID?gpu=local"));
    assert_eq!(
        get("RUNPOD_WEBHOOK_POST_OUTPUT"),
        Some("http://127.0.0.1:8000/v2/local/job-done/$RUNPOD_POD_ID/$ID?gpu=local")
    );
    assert_eq!(get("RUNPOD_WEBHOOK_PING"), Some("http://127.0.0.1:8000/v2/local/ping/$RUNPOD_POD_ID"));
    assert_eq!(get("RUNPOD_POD_ID"), Some("w7"));
    assert_eq!(get("RUNPOD_AI_API_KEY"), Some("KEY"));
    assert_eq!(get("RUNPOD_PING_INTERVAL"), Some("10000"));

    let out = Command::new(BIN).args(["worker-env", "--worker-id", "w1"]).output().unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(!text.contains("RUNPOD_AI_API_KEY"), "no key, no variable: {text}");
}

#[test]
fn an_empty_api_key_is_refused() {
    let out = Command::new(BIN).args(["--port", "0", "--api-key", ""]).output().unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("--api-key"), "{out:?}");
    let out = Command::new(BIN).args(["--port", "0"]).env("RUNPOD_LOCAL_API_KEY", "").output().unwrap();
    assert_eq!(out.status.code(), Some(2), "an empty RUNPOD_LOCAL_API_KEY is refused too: {out:?}");
}

/// The status of `GET /status/{id}` and the job's status, against `base`.
async fn status_of(base: &str, id: &str) -> (u16, serde_json::Value) {
    let http = reqwest::Client::builder().timeout(Duration::from_secs(20)).build().unwrap();
    let r = http.get(format!("{base}/v2/local/status/{id}")).bearer_auth("k").send().await.unwrap();
    let code = r.status().as_u16();
    (code, r.json().await.unwrap_or_default())
}

/// SIGTERM stops the binary gracefully (exit 0); with `--data-dir` a queued job is still there
/// after SIGKILL and a restart, and without it it is gone.
#[tokio::test]
async fn sigterm_exits_zero_and_the_data_dir_survives_sigkill() {
    let dir = std::env::temp_dir().join(format!("runpod-local-cli-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let dir_arg = dir.to_str().unwrap();
    let (mut server, lines) = spawn_local(&["--port", "0", "--api-key", "k", "--data-dir", dir_arg], 3).await;
    let base = lines[0].strip_prefix("runpod-local listening on ").expect(&lines[0]).to_owned();
    let port = base.rsplit(':').next().unwrap().to_owned();
    let http = reqwest::Client::builder().timeout(Duration::from_secs(20)).build().unwrap();
    let run: serde_json::Value = http
        .post(format!("{base}/v2/local/run"))
        .bearer_auth("k")
        .body(r#"{"input": {"keep": "me"}}"#)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = run["id"].as_str().unwrap().to_owned();
    server.kill(); // SIGKILL
    let (mut server, _) = spawn_local(&["--port", &port, "--api-key", "k", "--data-dir", dir_arg], 3).await;
    assert_eq!(status_of(&base, &id).await.1["status"], "IN_QUEUE", "kept across SIGKILL");

    // SIGTERM: a graceful stop, exit 0.
    server.signal(libc::SIGTERM);
    let status = tokio::task::spawn_blocking(move || server.wait(Duration::from_secs(15))).await.unwrap();
    assert_eq!(status.and_then(|s| s.code()), Some(0), "{status:?}");

    // Without a data directory, a restart forgets the job.
    let (_server, _) = spawn_local(&["--port", &port, "--api-key", "k"], 3).await;
    assert_eq!(status_of(&base, &id).await.0, 404);
    let _ = std::fs::remove_dir_all(&dir);
}

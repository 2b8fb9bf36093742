//! The `runpod-local` binary: `--port 0` prints the address it serves; `worker-env` prints
//! the worker's variables.

mod common;

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

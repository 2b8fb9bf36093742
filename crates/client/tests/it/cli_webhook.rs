//! `runpod run --webhook URL --wait`: the job runs on a worker of a real runpod-local, and the
//! endpoint POSTs the final status to the test's receiver, the same the CLI printed.

use crate::common;

use common::{local, spawn_worker, Receiver, KEY};
use serde_json::{json, Value};
use std::time::Duration;

#[tokio::test]
async fn webhook_flag_gets_the_final_status_delivered() {
    let ep = local().await;
    let _w = spawn_worker(&ep);
    let rx = Receiver::start(vec![]).await;
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_runpod"));
    cmd.args(["--endpoint", ep.endpoint_id(), "--base-url", ep.base_url()])
        .args([
            "run",
            "--input",
            r#"{"via": "cli"}"#,
            "--webhook",
            &rx.url,
            "--wait",
            "--timeout-ms",
            "30000",
        ])
        .env_remove("RUNPOD_ENDPOINT_ID")
        .env_remove("RUNPOD_BASE_URL")
        .env("RUNPOD_API_KEY", KEY);
    let out = tokio::time::timeout(Duration::from_secs(60), cmd.output()).await.expect("finishes").unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert_eq!(out.status.code(), Some(0), "{stdout} {}", String::from_utf8_lossy(&out.stderr));
    let printed: Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(printed["status"], "COMPLETED", "{printed}");

    let calls = rx.wait_for(1).await;
    assert_eq!(calls.len(), 1, "one delivery for a 200 answer: {calls:?}");
    assert_eq!(calls[0]["id"], printed["id"]);
    assert_eq!(calls[0]["status"], "COMPLETED");
    assert_eq!(calls[0]["output"], printed["output"]);
    assert_eq!(calls[0]["output"], json!({"echo": {"via": "cli"}}));
}

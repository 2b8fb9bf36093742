//! `runpod retry` and `runpod purge-queue`, spawned against a real runpod-local endpoint.

use crate::common;

use common::{client, local, spawn_worker, KEY};
use runpod_local::LocalEndpoint;
use serde_json::Value;
use std::time::Duration;

async fn runpod(ep: &LocalEndpoint, args: &[&str]) -> (i32, Value, String) {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_runpod"));
    cmd.args(["--endpoint", ep.endpoint_id(), "--base-url", ep.base_url()]).args(args);
    cmd.env_remove("RUNPOD_ENDPOINT_ID").env_remove("RUNPOD_BASE_URL").env("RUNPOD_API_KEY", KEY);
    let out = tokio::time::timeout(Duration::from_secs(60), cmd.output()).await.unwrap().unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(!stdout.contains(KEY) && !stderr.contains(KEY), "key leaked");
    let json = serde_json::from_str(stdout.trim()).unwrap_or(Value::Null);
    (out.status.code().unwrap(), json, stderr)
}

#[tokio::test]
async fn purge_queue_drops_the_queued_jobs() {
    let ep = local().await;
    let mut ids = Vec::new();
    for n in 0..3 {
        let (code, v, err) = runpod(&ep, &["run", "--input", &format!(r#"{{"n": {n}}}"#)]).await;
        assert_eq!(code, 0, "{err}");
        ids.push(v["id"].as_str().unwrap().to_owned());
    }
    let (code, v, err) = runpod(&ep, &["purge-queue"]).await;
    assert_eq!(code, 0, "{err}");
    assert_eq!(v["removed"], 3, "{v}");
    assert_eq!(v["status"], "completed");
    let (code, _, err) = runpod(&ep, &["status", &ids[0]]).await;
    assert_ne!(code, 0, "a purged job is gone: {err}");
    let (_, v, _) = runpod(&ep, &["purge-queue"]).await;
    assert_eq!(v["removed"], 0);
}

#[tokio::test]
async fn retry_queues_a_failed_job_again() {
    let ep = local().await;
    let worker = spawn_worker(&ep);
    let (code, v, err) = runpod(&ep, &["run", "--wait", "--input", r#"{"fail": "boom"}"#]).await;
    assert_ne!(code, 0, "the job failed: {err}");
    assert_eq!(v["status"], "FAILED", "{v}");
    let id = v["id"].as_str().unwrap().to_owned();

    let (code, v, err) = runpod(&ep, &["retry", &id]).await;
    assert_eq!(code, 0, "{err}");
    assert_eq!(v["id"], id.as_str());
    // It runs again (and fails again, the input being the same).
    let s = client(&ep).wait::<Value>(&id, Duration::from_secs(30)).await.unwrap();
    assert_eq!(s.status.to_string(), "FAILED");
    let h = client(&ep).health().await.unwrap();
    assert!(h.jobs.retried >= 1, "{h:?}");

    // A job that did not fail cannot be retried: the endpoint's 400, said on stderr.
    let (_, v, _) = runpod(&ep, &["run", "--wait", "--input", r#"{"ok": 1}"#]).await;
    let (code, _, err) = runpod(&ep, &["retry", v["id"].as_str().unwrap()]).await;
    assert_ne!(code, 0);
    assert!(err.contains("runpod: error"), "{err}");
    worker.stop().await.unwrap();
}

//! The echo binary on an unfit machine: a system check that fails (a memory floor no machine
//! meets) is logged with its reason, reported to the endpoint as unhealthy, and the process
//! exits 1 without taking the queued job.

use serde_json::json;
use std::process::Command;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_system_check_exits_1_and_reports_unhealthy() {
    let ep = runpod_local::LocalEndpoint::builder().api_key("k").bind("127.0.0.1:0").await.unwrap();
    ep.queue_with_id("waiting", runpod_protocol::JobRequest::new(json!({"message": "hi"}))).unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_echo"));
    cmd.envs(ep.worker_env("unfit-1"))
        .env("RUNPOD_MIN_MEMORY_GB", "1000000")
        .env_remove("RUNPOD_ENDPOINT_ID");
    let out = tokio::task::spawn_blocking(move || cmd.output().unwrap()).await.unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("fitness check failed: memory | insufficient memory"), "{stderr}");
    assert!(stderr.contains("RUNPOD_MIN_MEMORY_GB"), "{stderr}");

    let http = reqwest::Client::builder().timeout(Duration::from_secs(10)).build().unwrap();
    let url = ep.endpoint_url();
    let health: serde_json::Value =
        http.get(format!("{url}/health")).bearer_auth("k").send().await.unwrap().json().await.unwrap();
    assert_eq!(health["workers"]["unhealthy"], 1, "{health}");
    assert_eq!(health["jobs"]["inQueue"], 1, "the job was not taken: {health}");
}

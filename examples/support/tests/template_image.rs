//! The worker template, as a user starts from it: `scripts/new-worker.sh` copies it to a
//! folder under the system's temp dir (outside this checkout), podman builds that folder's
//! Dockerfile (the root one) from local base images only (`scripts/test.d/50-containers.sh`),
//! and the image runs `--test-input` and one job from a local endpoint on the host, as a
//! non-root PID 1 that SIGTERM stops with exit 0.

use std::process::Command;
use std::time::Duration;

use example_support::container::{text, workspace_root, Podman};
use runpod_client::{Endpoint, JobStatus, Request};
use runpod_local::LocalEndpoint;
use serde_json::{json, Value};

const TAG: &str = "localhost/runpod-rs-test/template:cpu";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_copied_template_builds_and_serves_a_job_from_its_image() {
    let Some(podman) = Podman::from_env() else { return };

    // Copy and rename, as the README says, into a folder outside the checkout.
    let tmp =
        tempfile::Builder::new().prefix("runpod-rs-template-").tempdir_in(std::env::temp_dir()).unwrap();
    let dest = tmp.path().join("word-count");
    let out = Command::new(workspace_root().join("scripts/new-worker.sh"))
        .arg(&dest)
        .arg("word-count")
        .current_dir(tmp.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "new-worker.sh: {}", text(&out));
    let manifest = std::fs::read_to_string(dest.join("Cargo.toml")).unwrap();
    assert!(manifest.contains("name = \"word-count\""), "{manifest}");

    podman.build(TAG, &dest, &[], &[]);
    let size = podman.image_size(TAG);
    eprintln!("image {TAG}: {:.1} MB", size as f64 / 1e6);

    // --test-input through the image: the runtime's flags reach the worker (the ENTRYPOINT).
    let input = std::fs::read_to_string(dest.join("test_input.json")).unwrap();
    let out = podman.run(&[TAG, "--test-input", input.trim()], Duration::from_secs(60));
    assert!(out.status.success(), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let result: Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
    assert_eq!(result["status"], "COMPLETED", "{result}");
    assert_eq!(result["output"], json!({"words": 11, "top": [["the", 3], ["brown", 1]]}));

    // One job from a local endpoint on the host, a bad one, and the worker goes on.
    let endpoint = LocalEndpoint::builder().api_key("k").bind("127.0.0.1:0").await.unwrap();
    let container = podman.start(TAG, &endpoint.worker_env("w1"), &[]);
    let client =
        Endpoint::new(endpoint.endpoint_id(), Some("k")).unwrap().with_base_url(endpoint.base_url()).unwrap();
    let wait = Duration::from_secs(120);
    let job = client.run(&Request::new(json!({"text": "b a b", "top": 1}))).await.unwrap();
    let done = job.wait_timeout(wait).await.unwrap();
    assert_eq!(done.status, JobStatus::Completed, "{done:?}\ncontainer log:\n{}", container.logs());
    assert_eq!(done.output, Some(json!({"words": 3, "top": [["b", 2]]})));
    let bad = client.run(&Request::new(json!({"text": "a", "top": "all"}))).await.unwrap();
    let done: runpod_client::JobState<Value> = bad.wait_timeout(wait).await.unwrap();
    assert_eq!(done.status, JobStatus::Failed, "{done:?}");
    assert!(done.error.as_deref().unwrap_or_default().contains("input.top"), "{done:?}");

    container.assert_non_root_pid1_and_clean_stop();
    drop(container);
    endpoint.shutdown().await;
}

//! The worker template, as a user starts from it: `cargo runpod new` writes it to a folder under
//! the system's temp dir (outside this checkout), `cargo runpod build` builds that folder's
//! Dockerfile (the root one) with podman from local base images only
//! (`scripts/test.d/50-containers.sh`), and the image runs `--test-input` and one job from a
//! local endpoint on the host, as a non-root PID 1 that SIGTERM stops with exit 0.

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

    // `cargo runpod new` and `cargo runpod build`, as the README says, outside the checkout.
    let tmp =
        tempfile::Builder::new().prefix("runpod-rs-template-").tempdir_in(std::env::temp_dir()).unwrap();
    let dest = tmp.path().join("word-count");
    let out = cargo_runpod().args(["new"]).arg(&dest).output().unwrap();
    assert!(out.status.success(), "cargo runpod new: {}", text(&out));
    let manifest = std::fs::read_to_string(dest.join("Cargo.toml")).unwrap();
    assert!(manifest.contains("name = \"word-count\""), "{manifest}");

    let mut build = cargo_runpod();
    build.args(["build", "--engine", "podman", "--tag", TAG, "--manifest-path"]).arg(dest.join("Cargo.toml"));
    if let Ok(image) = std::env::var("RUNPOD_TEST_BUILD_IMAGE") {
        build.arg("--build-arg").arg(format!("BUILD_IMAGE={image}"));
    }
    let out = build.output().unwrap();
    assert!(out.status.success(), "cargo runpod build: {}", text(&out));
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(said.contains("podman push") && said.contains(" MB)"), "{said}");
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

/// `cargo runpod` of this checkout (`cargo run -p cargo-runpod`), with the test's podman
/// (`RUNPOD_TEST_PODMAN`, configured by the exported `CONTAINERS_*` files) first on `PATH`.
fn cargo_runpod() -> Command {
    let mut cmd = Command::new(env!("CARGO"));
    cmd.current_dir(workspace_root())
        .args(["run", "-q", "--manifest-path"])
        .arg(workspace_root().join("Cargo.toml"))
        .args(["-p", "cargo-runpod", "--", "runpod"]);
    let podman = std::path::PathBuf::from(std::env::var_os("RUNPOD_TEST_PODMAN").unwrap());
    let dir = podman.parent().unwrap().to_path_buf();
    let path = std::env::var_os("PATH").unwrap_or_default();
    let path = std::env::join_paths(std::iter::once(dir).chain(std::env::split_paths(&path))).unwrap();
    cmd.env("PATH", path);
    cmd
}

//! The embeddings worker's CPU image, built from the root `Dockerfile` with podman (the setup of
//! `scripts/test.d/50-containers.sh`) and the real all-MiniLM-L6-v2 weights baked in, then run
//! against a local endpoint on the host: the same vector as the worker outside the container,
//! a non-root worker as PID 1 that SIGTERM stops with exit 0, and one clear line (exit 1) when
//! the model folder is empty or wrong.

use std::process::Command;
use std::time::Duration;

use example_support::container::{text, workspace_root, Podman};
use example_support::test_models::minilm_dir;
use runpod_client::{Endpoint, JobStatus, Request};
use runpod_local::LocalEndpoint;
use serde_json::{json, Value};

const TAG: &str = "localhost/runpod-rs-test/embeddings:cpu";
const TEXT: &str = "A man is eating food.";

fn cosine(a: &[f32], b: &[f32]) -> f64 {
    let dot: f64 = a.iter().zip(b).map(|(x, y)| *x as f64 * *y as f64).sum();
    let norm = |v: &[f32]| v.iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt();
    dot / (norm(a) * norm(b))
}

/// Builds the image once for both tests (the second waits for the first).
fn build_image(podman: &Podman, model: &std::path::Path) {
    static BUILT: std::sync::OnceLock<()> = std::sync::OnceLock::new();
    BUILT.get_or_init(|| {
        podman.build(TAG, &workspace_root(), &[("CRATE", "examples/embeddings")], &[("model", model)]);
        eprintln!("image {TAG}: {:.1} MB", podman.image_size(TAG) as f64 / 1e6);
    });
}

/// The vector the worker binary computes outside any container (`--test-input`).
fn vector_outside(model: &std::path::Path) -> Vec<f32> {
    let out = Command::new(env!("CARGO_BIN_EXE_embeddings"))
        .env("MODEL_DIR", model)
        .env_remove("RUNPOD_WEBHOOK_GET_JOB")
        .args(["--test-input", &json!({"input": {"input": TEXT}}).to_string()])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let line = String::from_utf8_lossy(&out.stdout).lines().last().unwrap_or_default().to_owned();
    let result: Value = serde_json::from_str(&line).unwrap();
    serde_json::from_value(result["output"]["embeddings"][0].clone()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cpu_image_with_baked_weights_serves_jobs_like_the_worker_outside() {
    let Some(podman) = Podman::from_env() else { return };
    let Some(model) = minilm_dir() else { return };

    build_image(&podman, &model);

    // The worker in the container takes its jobs from a runpod-local on the host.
    let endpoint = LocalEndpoint::builder().api_key("k").bind("127.0.0.1:0").await.unwrap();
    let container = podman.start(TAG, &endpoint.worker_env("w1"), &[]);
    let client =
        Endpoint::new(endpoint.endpoint_id(), Some("k")).unwrap().with_base_url(endpoint.base_url()).unwrap();
    let job = client.run(&Request::new(json!({"input": TEXT}))).await.unwrap();
    let done = job.wait_timeout(Duration::from_secs(300)).await.unwrap();
    assert_eq!(done.status, JobStatus::Completed, "{done:?}\ncontainer log:\n{}", container.logs());
    let output: embeddings::EmbedOutput = serde_json::from_value(done.output.unwrap()).unwrap();
    let inside = &output.embeddings[0];

    let outside = vector_outside(&model);
    assert_eq!(inside.len(), 384);
    let cos = cosine(inside, &outside);
    eprintln!("container vs host vector: bit-identical {}, cosine {cos:.9}", inside == &outside);
    assert!(inside == &outside || cos > 0.99999, "cosine {cos}");

    // A non-root user, PID 1, and SIGTERM (`podman stop`) ends it with exit 0 in the grace period.
    container.assert_non_root_pid1_and_clean_stop();
    drop(container);
    endpoint.shutdown().await;
}

#[test]
fn an_image_without_weights_or_with_a_wrong_model_dir_exits_1_with_one_line() {
    let Some(podman) = Podman::from_env() else { return };
    let Some(model) = minilm_dir() else { return };
    build_image(&podman, &model);

    let empty = tempfile::tempdir().unwrap();
    let mount = format!("{}:/model:ro", empty.path().display());
    for (what, args) in [
        ("no weights in /model", vec!["-v", mount.as_str(), TAG]),
        ("a wrong MODEL_DIR", vec!["-e", "MODEL_DIR=/models/none", TAG]),
    ] {
        let out = podman.run(&args, Duration::from_secs(120));
        let said = text(&out);
        let lines: Vec<&str> = said.lines().filter(|l| !l.trim().is_empty()).collect();
        eprintln!("{what}: exit {:?}: {said}", out.status.code());
        assert_eq!(out.status.code(), Some(1), "{what}: {said}");
        assert_eq!(lines.len(), 1, "{what}: one line expected, got:\n{said}");
        assert!(
            lines[0].contains("holds no config.json: mount a model there or set MODEL_ID"),
            "{what}: {said}"
        );
    }
}

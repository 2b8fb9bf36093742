//! The embeddings worker end to end: a real local endpoint on 127.0.0.1, the worker runtime
//! taking jobs from it over HTTP, the real all-MiniLM-L6-v2 model answering.

use std::time::Duration;

use candle_core::Device;
use embeddings::{EmbedHandler, Embedder};
use example_support::local_worker::{self, LocalWorker};
use example_support::test_models::minilm_dir;
use runpod_client::{Endpoint, JobState, JobStatus, Request};
use runpod_worker::Worker;
use serde_json::{json, Value};

/// Queues `input` and polls `/status` until the job ends, as an application would.
async fn run<O: serde::de::DeserializeOwned>(ep: &Endpoint, input: Value) -> JobState<O> {
    let job = ep.run(&Request::new(input)).await.unwrap();
    job.wait_timeout(Duration::from_secs(60)).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_through_a_local_endpoint() {
    let Some(dir) = minilm_dir() else { return };
    let reference = Embedder::load(&dir, &Device::Cpu).unwrap();
    let handler = EmbedHandler::new(Embedder::load(&dir, &Device::Cpu).unwrap(), "all-MiniLM-L6-v2", 3);

    let local = LocalWorker::start(Worker::new(handler)).await.unwrap();
    let client = local_worker::client(&local);

    // A batch: same vectors as the model gives directly, token counts, truncation reported.
    let long = "lorem ipsum ".repeat(400);
    let texts = ["A man is eating food.", "The stock market fell sharply today.", long.as_str()];
    let done: JobState<embeddings::EmbedOutput> = run(&client, json!({"input": texts})).await;
    assert_eq!(done.status, JobStatus::Completed, "{done:?}");
    let out = done.output.unwrap();
    let direct = reference.embed(&texts, true).unwrap();
    assert_eq!(out.dimensions, 384);
    assert_eq!(out.model, "all-MiniLM-L6-v2");
    assert_eq!(out.tokens, direct.tokens);
    assert_eq!(out.total_tokens, direct.tokens.iter().sum::<usize>());
    assert_eq!(out.truncated, vec![2]);
    assert_eq!(out.max_tokens, 256);
    assert!(
        out.warnings[0].contains("input 2") && out.warnings[0].contains("truncated"),
        "{:?}",
        out.warnings
    );
    for (a, b) in out.embeddings.iter().zip(&direct.vectors) {
        assert_eq!(a.len(), 384);
        for (x, y) in a.iter().zip(b) {
            assert!((x - y).abs() < 1e-5);
        }
    }

    // One text, not normalised.
    let done: JobState<embeddings::EmbedOutput> =
        run(&client, json!({"input": "A man is eating food.", "normalize": false})).await;
    assert_eq!(done.status, JobStatus::Completed, "{done:?}");
    let v = &done.output.unwrap().embeddings[0];
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    assert!((norm - 1.0).abs() > 0.05, "normalize=false gives the raw vector, norm {norm}");

    // Bad inputs fail the job with a clear error, and the worker keeps serving.
    // Each reports its kind as the error report's `error_type`.
    for (input, error_type, says) in [
        (json!({"input": 7}), "InputError", "a string or an array of strings"),
        (json!({"input": ["a"], "normalise": true}), "InputError", "normalise"),
        (json!({"input": []}), "BadInput", "no input text"),
        (json!({"input": ["a", "b", "c", "d"]}), "BadInput", "at most 3"),
    ] {
        let done: JobState<Value> = run(&client, input.clone()).await;
        assert_eq!(done.status, JobStatus::Failed, "{input}: {done:?}");
        let report: Value = serde_json::from_str(done.error.as_deref().unwrap_or_default()).unwrap();
        assert_eq!(report["error_type"], error_type, "{input}: {report}");
        assert!(report["error_message"].as_str().unwrap_or_default().contains(says), "{input}: {report}");
    }
    let done: JobState<Value> = run(&client, json!({"input": "still here"})).await;
    assert_eq!(done.status, JobStatus::Completed);

    local.stop().await.unwrap();
}

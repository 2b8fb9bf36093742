//! The embeddings worker end to end: a real local endpoint on 127.0.0.1, the worker runtime
//! taking jobs from it over HTTP, the real all-MiniLM-L6-v2 model answering.

mod common;

use std::time::Duration;

use candle_core::Device;
use embeddings::{EmbedHandler, Embedder};
use runpod_local::LocalEndpoint;
use runpod_worker::{Config, Worker};
use serde_json::{json, Value};

async fn wait_done(http: &reqwest::Client, api: &str, id: &str) -> Value {
    for _ in 0..600 {
        let s: Value = http
            .get(format!("{api}/status/{id}"))
            .bearer_auth("k")
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if matches!(s["status"].as_str(), Some("COMPLETED" | "FAILED" | "CANCELLED" | "TIMED_OUT")) {
            return s;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("job {id} did not finish in 60 s");
}

async fn submit(http: &reqwest::Client, api: &str, input: Value) -> String {
    let r: Value = http
        .post(format!("{api}/run"))
        .bearer_auth("k")
        .json(&json!({ "input": input }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    r["id"].as_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_through_a_local_endpoint() {
    let Some(dir) = common::minilm_dir() else { return };
    let reference = Embedder::load(&dir, &Device::Cpu).unwrap();
    let handler = EmbedHandler::new(Embedder::load(&dir, &Device::Cpu).unwrap(), "all-MiniLM-L6-v2", 3);

    let ep = LocalEndpoint::builder().api_key("k").bind("127.0.0.1:0").await.unwrap();
    let api = ep.endpoint_url();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let worker = Worker::new(handler).config(Config::from_vars(ep.worker_env("w1")).unwrap()).shutdown_on(
        async move {
            let _ = stop_rx.await;
        },
    );
    let running = tokio::spawn(worker.run());
    let http = reqwest::Client::new();

    // A batch: same vectors as the model gives directly, token counts, truncation reported.
    let long = "lorem ipsum ".repeat(400);
    let texts = ["A man is eating food.", "The stock market fell sharply today.", long.as_str()];
    let id = submit(&http, &api, json!({"input": texts})).await;
    let done = wait_done(&http, &api, &id).await;
    assert_eq!(done["status"], "COMPLETED", "{done}");
    let out: embeddings::EmbedOutput = serde_json::from_value(done["output"].clone()).unwrap();
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
    let id = submit(&http, &api, json!({"input": "A man is eating food.", "normalize": false})).await;
    let done = wait_done(&http, &api, &id).await;
    assert_eq!(done["status"], "COMPLETED", "{done}");
    let v: Vec<f32> = serde_json::from_value(done["output"]["embeddings"][0].clone()).unwrap();
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    assert!((norm - 1.0).abs() > 0.05, "normalize=false gives the raw vector, norm {norm}");

    // Bad inputs fail the job with a clear error, and the worker keeps serving.
    for (input, says) in [
        (json!({"input": 7}), "a string or an array of strings"),
        (json!({"input": ["a"], "normalise": true}), "normalise"),
        (json!({"input": []}), "no input text"),
        (json!({"input": ["a", "b", "c", "d"]}), "at most 3"),
    ] {
        let id = submit(&http, &api, input.clone()).await;
        let done = wait_done(&http, &api, &id).await;
        assert_eq!(done["status"], "FAILED", "{input}: {done}");
        assert!(done["error"].to_string().contains(says), "{input}: {done}");
    }
    let id = submit(&http, &api, json!({"input": "still here"})).await;
    assert_eq!(wait_done(&http, &api, &id).await["status"], "COMPLETED");

    stop_tx.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(30), running).await.unwrap().unwrap().unwrap();
    ep.shutdown().await;
}

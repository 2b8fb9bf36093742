//! The text-generation worker end to end: a real local endpoint on 127.0.0.1, the worker
//! runtime taking jobs over HTTP, a tiny random Llama the test writes answering. Checks the
//! streamed pieces (order, content), stop strings, progress, bad input and cancellation.

mod tiny;

use std::sync::atomic::Ordering;
use std::time::Duration;

use candle_core::Device;
use runpod_local::LocalEndpoint;
use runpod_worker::{Config, Worker};
use serde_json::{json, Value};
use text_generation::{FinishReason, GenerateHandler, GenerateOutput, Generator, Observer, Params};

struct Quiet;
impl Observer for Quiet {}

struct Client {
    http: reqwest::Client,
    api: String,
}

impl Client {
    async fn get(&self, path: &str) -> Value {
        self.http
            .get(format!("{}/{path}", self.api))
            .bearer_auth("k")
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }
    async fn post(&self, path: &str, body: Value) -> Value {
        self.http
            .post(format!("{}/{path}", self.api))
            .bearer_auth("k")
            .json(&body)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }
    async fn submit(&self, input: Value) -> String {
        self.post("run", json!({ "input": input })).await["id"].as_str().unwrap().to_owned()
    }
    /// Reads `/stream` until the job is final; returns (streamed texts, final status body).
    async fn follow(&self, id: &str) -> (Vec<String>, Value) {
        let mut pieces = Vec::new();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
        while tokio::time::Instant::now() < deadline {
            let s = self.get(&format!("stream/{id}")).await;
            for item in s["stream"].as_array().into_iter().flatten() {
                pieces.push(item["output"]["text"].as_str().unwrap().to_owned());
            }
            if matches!(s["status"].as_str(), Some("COMPLETED" | "FAILED" | "CANCELLED" | "TIMED_OUT")) {
                let status = self.get(&format!("status/{id}")).await;
                return (pieces, status);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("job {id} did not finish in time");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_stops_fails_cleanly_and_cancels_through_a_local_endpoint() {
    let dir = tiny::write_model("worker");
    let reference = Generator::load(&dir, &Device::Cpu).unwrap();
    let handler = GenerateHandler::new(Generator::load(&dir, &Device::Cpu).unwrap());
    let stats = handler.stats();

    let ep = LocalEndpoint::builder().api_key("k").bind("127.0.0.1:0").await.unwrap();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let worker = Worker::new(handler).config(Config::from_vars(ep.worker_env("w1")).unwrap()).shutdown_on(
        async move {
            let _ = stop_rx.await;
        },
    );
    let running = tokio::spawn(worker.run());
    let c = Client { http: reqwest::Client::new(), api: ep.endpoint_url() };

    // Streaming: the chunks, in order, are exactly the text the model produces for this seed.
    let prompt = "w01 w02 w03";
    let params = Params { max_tokens: 40, temperature: 1.0, top_p: Some(0.9), seed: 3, stop: vec![] };
    let expected = reference.generate(prompt, &params, &mut Quiet).unwrap();
    let id = c
        .submit(json!({"prompt": prompt, "max_tokens": 40, "temperature": 1.0, "top_p": 0.9, "seed": 3}))
        .await;
    let (pieces, status) = c.follow(&id).await;
    assert_eq!(status["status"], "COMPLETED", "{status}");
    let out: GenerateOutput = serde_json::from_value(status["output"].clone()).unwrap();
    assert_eq!(out.text, expected.text);
    assert_eq!(pieces.concat(), out.text, "streamed pieces in order make the text");
    assert_eq!(pieces.len(), 40, "one piece per token for a word-level vocabulary");
    assert_eq!((out.generated_tokens, out.finish_reason, out.seed), (40, FinishReason::Length, 3));
    assert!(out.tokens_per_second > 0.0);

    // Stop strings: the text ends before the first occurrence, nothing past it is streamed.
    let stop = expected.text.split(' ').nth(9).unwrap().to_owned();
    let id = c.submit(json!({"prompt": prompt, "max_tokens": 40, "temperature": 1.0, "top_p": 0.9, "seed": 3, "stop": [stop]})).await;
    let (pieces, status) = c.follow(&id).await;
    let out: GenerateOutput = serde_json::from_value(status["output"].clone()).unwrap();
    assert_eq!(out.finish_reason, FinishReason::Stop);
    assert_eq!(out.text, expected.text[..expected.text.find(&stop).unwrap()]);
    assert_eq!(pieces.concat(), out.text);

    // Bad input fails the job, naming the problem.
    for (input, says) in [
        (json!({"prompt": prompt, "temperature": -1}), "temperature"),
        (json!({"prompt": prompt, "max_tokens": 0}), "max_tokens"),
        (json!({"prompt": prompt, "top_k": 5}), "top_k"),
        (json!({"max_tokens": 3}), "prompt"),
    ] {
        let id = c.submit(input.clone()).await;
        let (_, status) = c.follow(&id).await;
        assert_eq!(status["status"], "FAILED", "{input}: {status}");
        assert!(status["error"].to_string().contains(says), "{input}: {status}");
    }

    // Cancellation: a long generation stops between tokens soon after /cancel.
    let before = stats.tokens.load(Ordering::SeqCst);
    let id = c.submit(json!({"prompt": prompt, "max_tokens": 4000, "temperature": 1.0, "seed": 1})).await;
    loop {
        let s = c.get(&format!("stream/{id}")).await;
        if !s["stream"].as_array().unwrap().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let cancelled = c.post(&format!("cancel/{id}"), json!({})).await;
    assert_eq!(cancelled["status"], "CANCELLED", "{cancelled}");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while stats.cancelled.load(Ordering::SeqCst) == 0 {
        assert!(tokio::time::Instant::now() < deadline, "generation did not stop after /cancel");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let generated = stats.tokens.load(Ordering::SeqCst) - before;
    eprintln!("cancelled after {generated} of 4000 tokens");
    assert!(generated < 4000, "stopped early, after {generated} tokens");

    // Progress shows up in /status while a job runs (every max_tokens/10 tokens); the job is
    // followed on /stream afterwards so its chunks are drained.
    let id = c.submit(json!({"prompt": prompt, "max_tokens": 1000, "temperature": 1.0, "seed": 2})).await;
    let mut seen = None;
    for _ in 0..6000 {
        let s = c.get(&format!("status/{id}")).await;
        if s["status"] == "IN_PROGRESS" && s["output"]["generated_tokens"].is_u64() {
            seen = Some(s["output"].clone());
            break;
        }
        if s["status"] == "COMPLETED" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let (_, status) = c.follow(&id).await;
    assert_eq!(status["status"], "COMPLETED");
    let seen = seen.expect("a progress value while the job ran");
    assert_eq!(seen["max_tokens"], 1000);
    assert_eq!(seen["generated_tokens"].as_u64().unwrap() % 100, 0, "{seen}");

    stop_tx.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(30), running).await.unwrap().unwrap().unwrap();
    ep.shutdown().await;
    tiny::remove(&dir);
}

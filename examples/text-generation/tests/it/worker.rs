//! The text-generation worker end to end: a real local endpoint on 127.0.0.1, the worker
//! runtime taking jobs over HTTP, a tiny random Llama the test writes answering. Checks the
//! streamed pieces (order, content), stop strings, progress, bad input and cancellation.

use crate::tiny;

use std::sync::atomic::Ordering;
use std::time::Duration;

use candle_core::Device;
use example_support::local_worker::{self, LocalWorker};
use futures::StreamExt;
use runpod_client::{Endpoint, JobState, JobStatus, Request};
use runpod_worker::Worker;
use serde_json::{json, Value};
use text_generation::{FinishReason, GenerateHandler, GenerateOutput, Generator, Observer, Params};

struct Quiet;
impl Observer for Quiet {}

/// Follows the job on `/stream` until it ends; returns (streamed texts, final state).
async fn follow(ep: &Endpoint, id: &str) -> (Vec<String>, JobState<Value>) {
    let mut pieces = Vec::new();
    let mut chunks = std::pin::pin!(ep.stream::<Value>(id));
    let drained = tokio::time::timeout(Duration::from_secs(120), async {
        while let Some(chunk) = chunks.next().await {
            match chunk {
                Ok(v) => pieces.push(v["text"].as_str().unwrap().to_owned()),
                Err(runpod_client::Error::JobEnded { .. }) => break,
                Err(e) => panic!("stream of {id}: {e}"),
            }
        }
    });
    drained.await.unwrap_or_else(|_| panic!("job {id} did not finish in time"));
    (pieces, ep.status(id).await.unwrap())
}

/// Queues a job; its id.
async fn submit(ep: &Endpoint, input: Value) -> String {
    ep.run(&Request::new(input)).await.unwrap().id().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_stops_fails_cleanly_and_cancels_through_a_local_endpoint() {
    let dir = tiny::write_model("worker");
    let reference = Generator::load(&dir, &Device::Cpu).unwrap();
    let handler = GenerateHandler::new(Generator::load(&dir, &Device::Cpu).unwrap());
    let stats = handler.stats();

    let local = LocalWorker::start(Worker::new(handler)).await.unwrap();
    let c =
        local_worker::client(&local).with_poll_interval(Duration::from_millis(5), Duration::from_millis(20));

    // Streaming: the chunks, in order, are exactly the text the model produces for this seed.
    let prompt = "w01 w02 w03";
    let params = Params { max_tokens: 40, temperature: 1.0, top_p: Some(0.9), seed: 3, stop: vec![] };
    let expected = reference.generate(prompt, &params, &mut Quiet).unwrap();
    let id =
        submit(&c, json!({"prompt": prompt, "max_tokens": 40, "temperature": 1.0, "top_p": 0.9, "seed": 3}))
            .await;
    let (pieces, status) = follow(&c, &id).await;
    assert_eq!(status.status, JobStatus::Completed, "{status:?}");
    let out: GenerateOutput = serde_json::from_value(status.output.unwrap()).unwrap();
    assert_eq!(out.text, expected.text);
    assert_eq!(pieces.concat(), out.text, "streamed pieces in order make the text");
    assert_eq!(pieces.len(), 40, "one piece per token for a word-level vocabulary");
    assert_eq!((out.generated_tokens, out.finish_reason, out.seed), (40, FinishReason::Length, 3));
    assert!(out.tokens_per_second > 0.0);

    // Stop strings: the text ends before the first occurrence, nothing past it is streamed.
    let stop = expected.text.split(' ').nth(9).unwrap().to_owned();
    let id = submit(&c, json!({"prompt": prompt, "max_tokens": 40, "temperature": 1.0, "top_p": 0.9, "seed": 3, "stop": [stop]})).await;
    let (pieces, status) = follow(&c, &id).await;
    let out: GenerateOutput = serde_json::from_value(status.output.unwrap()).unwrap();
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
        let id = submit(&c, input.clone()).await;
        let (_, status) = follow(&c, &id).await;
        assert_eq!(status.status, JobStatus::Failed, "{input}: {status:?}");
        assert!(status.error.as_deref().unwrap_or_default().contains(says), "{input}: {status:?}");
    }

    // Cancellation: a long generation stops between tokens soon after /cancel.
    let before = stats.tokens.load(Ordering::SeqCst);
    let id = submit(&c, json!({"prompt": prompt, "max_tokens": 4000, "temperature": 1.0, "seed": 1})).await;
    let first = std::pin::pin!(c.stream::<Value>(&id)).next().await;
    assert!(matches!(first, Some(Ok(_))), "a first token streams: {first:?}");
    let cancelled = c.cancel(&id).await.unwrap();
    assert_eq!(cancelled.status, JobStatus::Cancelled, "{cancelled:?}");
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
    let id = submit(&c, json!({"prompt": prompt, "max_tokens": 1000, "temperature": 1.0, "seed": 2})).await;
    let mut seen = None;
    for _ in 0..6000 {
        let s = c.status::<Value>(&id).await.unwrap();
        if let Some(p) = s.progress.filter(|p| p["generated_tokens"].is_u64()) {
            seen = Some(p);
            break;
        }
        if s.status == JobStatus::Completed {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let (_, status) = follow(&c, &id).await;
    assert_eq!(status.status, JobStatus::Completed);
    let seen = seen.expect("a progress value while the job ran");
    assert_eq!(seen["max_tokens"], 1000);
    assert_eq!(seen["generated_tokens"].as_u64().unwrap() % 100, 0, "{seen}");

    local.stop().await.unwrap();
    tiny::remove(&dir);
}

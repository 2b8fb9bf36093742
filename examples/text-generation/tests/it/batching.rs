//! Continuous batching on llama.cpp, on the real instruct model (SmolLM2-135M-Instruct, Q4_1
//! GGUF): eight requests at once, four streamed chats through runpod-local's OpenAI route and
//! four native jobs, each one's greedy text the same as when it ran alone, and the engine ran
//! their tokens in shared steps.

use std::sync::atomic::Ordering;
use std::time::Instant;

use candle_core::Device;
use example_support::local_worker::LocalWorker;
use example_support::test_models;
use runpod_client::Request;
use serde_json::{json, Value};
use text_generation::gguf::GgufModel;
use text_generation::GenerateHandler;

const QUESTIONS: [&str; 8] = [
    "What is the capital of France?",
    "Write a haiku about the sea.",
    "Explain photosynthesis in two sentences.",
    "List three uses of a paperclip.",
    "Why is the sky blue?",
    "How do airplanes fly?",
    "Tell me a joke about programmers.",
    "Summarise the plot of Cinderella.",
];

const TOKENS: usize = 48;

/// A streamed greedy chat through the OpenAI route: its text, from the SSE chunks.
async fn chat(http: &reqwest::Client, base: &str, model: &str, question: &str) -> String {
    let body = json!({"model": model, "messages": [{"role": "user", "content": question}],
                      "max_tokens": TOKENS, "temperature": 0, "stream": true});
    let resp = crate::post_openai(http, base, "chat/completions", &body).await;
    assert!(resp.status().is_success(), "{}", resp.status());
    let events = crate::sse_events(resp).await;
    events.iter().filter_map(|v| v["choices"][0]["delta"]["content"].as_str()).collect()
}

/// A greedy native job with the chat's prompt written out: its output's text.
async fn native(ep: &runpod_client::Endpoint, question: &str) -> String {
    let prompt = format!("<|im_start|>user\n{question}<|im_end|>\n<|im_start|>assistant\n");
    let input = json!({"prompt": prompt, "max_tokens": TOKENS, "temperature": 0, "stream": true});
    let job = ep.run(&Request::new(input)).await.unwrap();
    let state = job.wait::<Value>().await.unwrap();
    let out = state.output.unwrap_or_else(|| panic!("no output: {:?}", state.error));
    out["text"].as_str().unwrap().to_owned()
}

/// The eight requests, the first four as chats, the rest native, all at once.
async fn all(http: &reqwest::Client, base: &str, model: &str, ep: &runpod_client::Endpoint) -> Vec<String> {
    let runs = QUESTIONS.iter().enumerate().map(|(i, q)| async move {
        if i < 4 {
            chat(http, base, model, q).await
        } else {
            native(ep, q).await
        }
    });
    futures::future::join_all(runs).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn requests_at_once_share_steps_and_keep_their_text() {
    let _cpu = crate::llama_cpu().await;
    let Some(gguf) = test_models::smollm2_gguf() else { return };
    let model = GgufModel::load_with(&gguf, &Device::Cpu, QUESTIONS.len()).unwrap();
    let name = model.name().to_owned();
    let handler = GenerateHandler::new(model);
    let engine = handler.clone();
    let stats = engine.model().gguf().unwrap().batcher().stats();
    let worker = runpod_worker::Worker::new(handler).concurrency(QUESTIONS.len());
    let local = LocalWorker::start(worker).await.unwrap();
    let (http, base) = (reqwest::Client::new(), local.endpoint().endpoint_url());
    let ep = example_support::local_worker::client(&local);

    // Each alone first.
    let started = Instant::now();
    let mut alone = Vec::new();
    for (i, q) in QUESTIONS.iter().enumerate() {
        alone.push(if i < 4 { chat(&http, &base, &name, q).await } else { native(&ep, q).await });
    }
    let alone_secs = started.elapsed().as_secs_f64();
    let shared_before = stats.shared_steps.load(Ordering::Relaxed);
    assert_eq!(shared_before, 0, "one request at a time never shares a step");

    let started = Instant::now();
    let together = all(&http, &base, &name, &ep).await;
    let together_secs = started.elapsed().as_secs_f64();
    for ((q, a), b) in QUESTIONS.iter().zip(&alone).zip(&together) {
        assert!(!a.is_empty(), "no text for {q:?}");
        assert_eq!(a, b, "{q:?}: alone and batched differ");
    }
    let (shared, most) =
        (stats.shared_steps.load(Ordering::Relaxed), stats.most_sequences.load(Ordering::Relaxed));
    eprintln!(
        "8 requests of {TOKENS} tokens: one at a time {alone_secs:.2} s, at once {together_secs:.2} s \
         ({:.2}x); {shared} shared steps, at most {most} sequences in one",
        alone_secs / together_secs
    );
    assert!(shared >= TOKENS as u64 / 2, "the requests ran in shared steps: {shared}");
    assert!(most >= 4, "at most {most} sequences shared a step");
    local.stop().await.unwrap();
}

/// A prompt longer than one step (512 tokens) is fed in chunks beside the other sequences'
/// tokens, which keep their texts. Its own greedy text may part from its text alone at a near
/// tie: measured here, "The printing press revolutionized the way ..." batched against "...
/// transformed the way ..." alone (llama.cpp's steps with sequences of other KV lengths beside
/// it round differently); two such prompts batched together kept their texts.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_long_prompt_joins_in_chunks_beside_running_sequences() {
    let Some(gguf) = test_models::smollm2_gguf() else { return };
    let _cpu = crate::llama_cpu().await;
    let model = GgufModel::load_with(&gguf, &Device::Cpu, 4).unwrap();
    let name = model.name().to_owned();
    let handler = GenerateHandler::new(model);
    let engine = handler.clone();
    let worker = runpod_worker::Worker::new(handler).concurrency(4);
    let local = LocalWorker::start(worker).await.unwrap();
    let (http, base) = (reqwest::Client::new(), local.endpoint().endpoint_url());
    let long = format!(
        "Here are my notes: {} Summarise my notes in one sentence.",
        "The printing press changed how books were made, and ideas spread faster than before. ".repeat(70)
    );
    let prompt_tokens = engine.model().encode(long.as_str()).unwrap().len();
    assert!(prompt_tokens > 1024, "the prompt spans three steps: {prompt_tokens} tokens");
    let questions = [long.as_str(), QUESTIONS[0], QUESTIONS[1], QUESTIONS[2]];

    let mut alone = Vec::new();
    for q in questions {
        alone.push(chat(&http, &base, &name, q).await);
    }
    // The short ones start first, so the long prompt joins while they decode.
    let short = futures::future::join_all(questions[1..].iter().map(|q| chat(&http, &base, &name, q)));
    let long_one = async {
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        chat(&http, &base, &name, questions[0]).await
    };
    let (short, long_text) = tokio::join!(short, long_one);
    assert_eq!(short, alone[1..], "the short ones' texts");
    eprintln!(
        "the long prompt ({prompt_tokens} tokens) alone: {:?}\nbeside three others: {long_text:?}",
        alone[0]
    );
    assert!(long_text.split_whitespace().count() >= 5, "an answer: {long_text:?}");
    let first_words = |t: &str| t.split_whitespace().take(3).collect::<Vec<_>>().join(" ");
    assert_eq!(first_words(&long_text), first_words(&alone[0]), "the same start");
    local.stop().await.unwrap();
}

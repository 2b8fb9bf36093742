//! The official OpenAI Python client (PyPI `openai`, pinned in scripts/test.d/50-llm-python.sh)
//! talking to the text-generation worker through runpod-local's `/v2/local/openai/v1`, on a
//! real instruct model (SmolLM2-135M-Instruct, Q4_1 GGUF) on the CPU: chat, a streamed chat
//! whose chunks arrive while the job runs, a completion, the model list, a wrong key, malformed
//! or out-of-range requests, a model it does not serve (404 `model_not_found`), a stream closed early (its job ends CANCELLED, the worker takes the next job). The
//! same worker keeps serving its native `{"prompt": ...}` input.

use std::path::Path;
use std::sync::atomic::Ordering;
use std::time::Duration;

use candle_core::Device;
use example_support::local_worker::{LocalWorker, API_KEY};
use example_support::test_models;
use runpod_client::{JobStatus, Request};
use serde_json::{json, Value};
use text_generation::gguf::GgufModel;
use text_generation::{GenerateHandler, GenerateOutput};

fn script() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/python/openai_client.py"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_official_openai_client_talks_to_the_worker() {
    let _cpu = crate::llama_cpu().await;
    let (Some(gguf), Some(python)) =
        (test_models::smollm2_gguf(), test_models::python("RUNPOD_TEST_LLM_PYTHON"))
    else {
        return;
    };
    let model = GgufModel::load(&gguf, &Device::Cpu).unwrap();
    let name = model.name().to_owned();
    let handler = GenerateHandler::new(model);
    let stats = handler.stats();
    let local = LocalWorker::start(runpod_worker::Worker::new(handler)).await.unwrap();
    let base_url = format!("{}/openai/v1", local.endpoint().endpoint_url());

    let run = tokio::process::Command::new(&python)
        .arg(script())
        .args([&base_url, API_KEY, &name])
        .kill_on_drop(true)
        .output();
    let done =
        tokio::time::timeout(Duration::from_secs(1200), run).await.expect("the client script timed out");
    let done = done.expect("python runs");
    let stderr = String::from_utf8_lossy(&done.stderr);
    assert!(done.status.success(), "the client script failed: {stderr}");
    let out: Value = serde_json::from_slice(&done.stdout).unwrap_or_else(|e| panic!("{e}: {stderr}"));
    eprintln!("openai client {}: {out:#}", out["openai_version"]);

    // The model list, and a chat completion that answers the question.
    assert_eq!(out["models"], json!([name]));
    let chat = &out["chat"];
    assert_eq!(
        (chat["object"].as_str(), chat["role"].as_str()),
        (Some("chat.completion"), Some("assistant"))
    );
    assert_eq!(chat["model"], name.as_str());
    assert!(chat["content"].as_str().unwrap().contains("Paris"), "{chat}");
    let usage = &chat["usage"];
    assert!(usage["prompt_tokens"].as_u64().unwrap() > 10, "the chat template was applied: {usage}");
    assert_eq!(
        usage["total_tokens"].as_u64(),
        Some(usage["prompt_tokens"].as_u64().unwrap() + usage["completion_tokens"].as_u64().unwrap())
    );
    assert!(["stop", "length"].contains(&chat["finish_reason"].as_str().unwrap()));

    // The stream: the role first, many pieces, the first long before the end, usage last.
    let s = &out["stream"];
    let pieces = s["pieces"].as_array().unwrap();
    let (first, total) = (s["first_chunk_s"].as_f64().unwrap(), s["total_s"].as_f64().unwrap());
    eprintln!("stream: first chunk after {first:.2} s of {total:.2} s, {} pieces", pieces.len());
    assert!(pieces.len() >= 10, "{s}");
    assert!(first < total / 2.0, "the first chunk came before the job ended: {first:.2} s of {total:.2} s");
    assert_eq!(s["roles"], json!(["assistant"]));
    assert_eq!(s["finish_reason"], "length", "{s}");
    assert_eq!(s["usage"]["completion_tokens"], 64);

    // A completion stops at its stop sequence.
    let c = &out["completion"];
    assert_eq!(c["object"], "text_completion");
    assert!(!c["text"].as_str().unwrap().contains('\n'), "{c}");
    assert!(c["usage"]["completion_tokens"].as_u64().unwrap() <= 8);

    // Refusals raise the client's own exceptions.
    assert_eq!(out["wrong_key"]["class"], "AuthenticationError", "{}", out["wrong_key"]);
    assert_eq!(out["wrong_key"]["status"], 401);
    for (case, says) in [
        ("no_messages", "at least one"),
        ("n_2", "n = 1"),
        ("bad_role", "wizard"),
        ("hot", "between 0 and 2"),
        ("long_stop", "at most 256 bytes"),
    ] {
        let r = &out[case];
        assert_eq!(r["class"], "BadRequestError", "{case}: {r}");
        assert!(r["message"].as_str().unwrap_or_default().contains(says), "{case}: {r}");
    }

    // A model the worker does not serve: OpenAI's 404 model_not_found.
    let other = &out["other_model"];
    assert_eq!(
        (&other["class"], &other["status"], &other["code"]),
        (&json!("NotFoundError"), &json!(404), &json!("model_not_found")),
        "{other}"
    );

    // The stream closed after 3 pieces: its job ended CANCELLED and generation stopped early.
    let closed = &out["closed_early"];
    assert!(closed["job_id"].as_str().is_some_and(|id| id.starts_with("sync-")), "{closed}");
    assert_eq!(closed["status"], "CANCELLED", "{closed}");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    while stats.cancelled.load(Ordering::SeqCst) == 0 {
        assert!(tokio::time::Instant::now() < deadline, "the generation did not stop");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let tokens = stats.tokens.load(Ordering::SeqCst);
    assert!(tokens < 1000, "the closed stream's 2000 tokens were not all generated ({tokens} in all)");
    assert!(!out["after_close"]["content"].as_str().unwrap().is_empty(), "the next job was served");

    // The native input still works on the same worker.
    let input =
        json!({"prompt": "The capital of France is", "max_tokens": 6, "temperature": 0, "stream": false});
    let job = example_support::local_worker::client(&local)
        .run_sync::<_, Value>(&Request::new(input))
        .await
        .unwrap();
    assert_eq!(job.status, JobStatus::Completed, "{job:?}");
    let native: GenerateOutput = serde_json::from_value(job.output.unwrap()).unwrap();
    assert!(native.generated_tokens >= 1 && !native.text.is_empty(), "{native:?}");
    // The native input takes OpenAI's temperature range too.
    let hot = json!({"prompt": "a", "max_tokens": 2, "temperature": 1e308});
    let job =
        example_support::local_worker::client(&local).run_sync::<_, Value>(&Request::new(hot)).await.unwrap();
    assert_eq!(job.status, JobStatus::Failed, "{job:?}");
    assert!(format!("{:?}", job.error).contains("between 0 and 2"), "{job:?}");

    local.stop().await.unwrap();
}

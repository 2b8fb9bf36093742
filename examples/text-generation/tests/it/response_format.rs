//! `response_format` on the OpenAI route, on the real instruct model (SmolLM2-135M-Instruct,
//! Q4_1 GGUF): `json_object` answers parse as objects; `json_schema` answers (greedy and
//! sampled, whole and streamed) are valid against their schema by the endpoint's own validator;
//! a schema keyword a grammar cannot hold output to, a malformed `response_format` and a model
//! that cannot be constrained (a model folder) are `400`s naming `response_format`.

use candle_core::Device;
use example_support::local_worker::LocalWorker;
use example_support::test_models;
use runpod_protocol::WorkerSchema;
use serde_json::{json, Value};
use text_generation::gguf::GgufModel;
use text_generation::{GenerateHandler, Generator};

use crate::tiny;

/// POSTs a chat; the status and the body (for a stream, the content of its deltas joined, as
/// `{"content": ..., "finish_reason": ...}`).
async fn chat(http: &reqwest::Client, base: &str, body: Value) -> (u16, Value) {
    let resp = crate::post_openai(http, base, "chat/completions", &body).await;
    let status = resp.status().as_u16();
    if body["stream"] != true || status != 200 {
        return (status, resp.json().await.unwrap());
    }
    let events = crate::sse_events(resp).await;
    let content: String =
        events.iter().filter_map(|v| v["choices"][0]["delta"]["content"].as_str()).collect();
    let finish = events.iter().rev().map(|v| &v["choices"][0]["finish_reason"]).find(|f| !f.is_null());
    (status, json!({"content": content, "finish_reason": finish}))
}

/// The answer's text and finish reason, from a whole response or a joined stream.
fn answer(body: &Value) -> (String, String) {
    let choice = &body["choices"][0];
    let content = choice["message"]["content"].as_str().or(body["content"].as_str()).unwrap();
    let finish = choice["finish_reason"].as_str().or(body["finish_reason"].as_str()).unwrap();
    (content.to_owned(), finish.to_owned())
}

fn pet_schema() -> Value {
    json!({
        "type": "object",
        "properties": {
            "name": {"type": "string", "minLength": 1, "maxLength": 24},
            "age": {"type": "integer", "minimum": 0},
            "colour": {"enum": ["black", "white", "ginger", "grey"]},
            "indoor": {"type": "boolean"},
            "toys": {"type": "array", "items": {"type": "string", "maxLength": 16}, "maxItems": 3}
        },
        "required": ["name", "age", "colour", "indoor", "toys"],
        "additionalProperties": false
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_answers_parse_and_follow_their_schema() {
    let _cpu = crate::llama_cpu().await;
    let Some(gguf) = test_models::smollm2_gguf() else { return };
    let model = GgufModel::load(&gguf, &Device::Cpu).unwrap();
    let name = model.name().to_owned();
    let local = LocalWorker::start(runpod_worker::Worker::new(GenerateHandler::new(model))).await.unwrap();
    let (http, base) = (reqwest::Client::new(), local.endpoint().endpoint_url());
    let messages = json!([{"role": "user", "content": "Describe a cat as JSON: its name, age and colour."}]);

    // Any JSON object.
    let body = json!({"model": name, "messages": messages, "max_tokens": 300, "temperature": 0,
                      "response_format": {"type": "json_object"}});
    let (status, out) = chat(&http, &base, body).await;
    assert_eq!(status, 200, "{out}");
    let (content, finish) = answer(&out);
    eprintln!("json_object: {content}");
    assert_eq!(finish, "stop", "the object closed before max_tokens: {content}");
    let parsed: Value = serde_json::from_str(&content).unwrap_or_else(|e| panic!("{e}: {content:?}"));
    assert!(parsed.is_object(), "{parsed}");

    // A schema: greedy and sampled, whole and streamed, each valid.
    let check = WorkerSchema { input: pet_schema(), output: None };
    for (temperature, seed, stream) in [(0.0, 1, false), (0.0, 1, true), (1.0, 7, false), (1.0, 11, true)] {
        let body = json!({"model": name, "messages": messages, "max_tokens": 200, "temperature": temperature,
                          "seed": seed, "stream": stream,
                          "response_format": {"type": "json_schema", "json_schema": {"name": "pet", "schema": pet_schema()}}});
        let (status, out) = chat(&http, &base, body).await;
        assert_eq!(status, 200, "{out}");
        let (content, finish) = answer(&out);
        eprintln!("json_schema (temperature {temperature}, stream {stream}): {content}");
        assert_eq!(finish, "stop", "{content}");
        let parsed: Value = serde_json::from_str(&content).unwrap_or_else(|e| panic!("{e}: {content:?}"));
        check.check_input(&parsed).unwrap_or_else(|e| panic!("{e}: {parsed}"));
    }

    // What a grammar cannot hold output to, and malformed formats: 400 naming the parameter.
    for (format, words) in [
        (
            json!({"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "string", "pattern": "^a+$"}}}),
            "pattern",
        ),
        (
            json!({"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "integer", "maximum": 9}}}),
            "maximum",
        ),
        (json!({"type": "json_schema"}), "json_schema"),
        (json!({"type": "xml"}), "xml"),
        (json!("json"), "object"),
    ] {
        let body = json!({"model": name, "messages": messages, "max_tokens": 8, "response_format": format});
        let (status, out) = chat(&http, &base, body).await;
        assert_eq!(status, 400, "{format}: {out}");
        assert_eq!(out["error"]["param"], "response_format", "{out}");
        let message = out["error"]["message"].as_str().unwrap();
        assert!(message.contains(words), "{format}: {message}");
    }
    local.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_model_folder_refuses_constrained_output() {
    let dir = tiny::write_model("response-format");
    let model = Generator::load(&dir, &Device::Cpu).unwrap();
    let local = LocalWorker::start(runpod_worker::Worker::new(GenerateHandler::new(model))).await.unwrap();
    let (http, base) = (reqwest::Client::new(), local.endpoint().endpoint_url());
    let body = json!({"prompt": "w01", "max_tokens": 4, "model": "model"});
    // Completions carry no response_format; a chat needs a template the tiny model lacks, so the
    // check is made before the template: the format is read first.
    let chat_body = json!({"messages": [{"role": "user", "content": "w01"}], "max_tokens": 4,
                           "response_format": {"type": "json_object"}});
    let (status, out) = chat(&http, &base, chat_body).await;
    assert_eq!(status, 400, "{out}");
    assert_eq!(out["error"]["param"], "response_format", "{out}");
    assert!(out["error"]["message"].as_str().unwrap().contains("GGUF"), "{out}");
    let resp = crate::post_openai(&http, &base, "completions", &body).await;
    assert_eq!(resp.status().as_u16(), 200, "{}", resp.text().await.unwrap());
    local.stop().await.unwrap();
    tiny::remove(&dir);
}

//! The OpenAI route over real HTTP, the worker side played through the worker API: the job the
//! worker receives, JSON answers, SSE relayed chunk by chunk while the job runs, error shapes
//! and statuses, and a client that disconnects mid-stream cancelling the job.

use crate::common;

use common::Api;
use futures::StreamExt;
use runpod_local::{LocalEndpoint, RateLimits};
use serde_json::{json, Value};
use std::time::Duration;

async fn endpoint() -> (LocalEndpoint, Api) {
    let ep = LocalEndpoint::builder()
        .api_key("k")
        .take_wait(Duration::from_secs(5))
        .rate_limits(RateLimits::none())
        .bind("127.0.0.1:0")
        .await
        .unwrap();
    let api = Api::new(&ep, Some("k"));
    (ep, api)
}

fn chat_body(stream: bool) -> Value {
    json!({"model": "m", "messages": [{"role": "user", "content": "hi"}], "stream": stream})
}

/// Posts an OpenAI call in the background (it waits for the job); returns its handle.
fn call(api: &Api, path: &str, body: Value, key: &str) -> tokio::task::JoinHandle<reqwest::Response> {
    let req = api.http.post(format!("{}/openai/v1/{path}", api.url)).bearer_auth(key).json(&body);
    tokio::spawn(async move { req.send().await.unwrap() })
}

/// The worker takes the next job.
async fn take(api: &Api) -> Value {
    let (status, job) = api.wget("job-take/w1").await;
    assert_eq!(status, 200, "{job}");
    job
}

fn error_of(body: &Value) -> &Value {
    let e = &body["error"];
    assert!(e["message"].is_string() && e.get("type").is_some() && e.get("param").is_some(), "{body}");
    e
}

#[tokio::test]
async fn refusals_are_in_openai_shape() {
    let (_ep, api) = endpoint().await;
    let send = |path: &str, key: &str, body: &'static str| {
        api.http.post(format!("{}/openai/v1/{path}", api.url)).bearer_auth(key).body(body).send()
    };
    for (resp, status, code) in [
        (send("chat/completions", "wrong", "{}").await.unwrap(), 401, json!("invalid_api_key")),
        (send("chat/completions", "k", "{not json").await.unwrap(), 400, Value::Null),
        (send("completions", "k", "[1, 2]").await.unwrap(), 400, Value::Null),
        (send("embeddings", "k", "{}").await.unwrap(), 404, json!("not_found")),
    ] {
        assert_eq!(resp.status().as_u16(), status);
        let body: Value = resp.json().await.unwrap();
        assert_eq!(error_of(&body)["code"], code, "{body}");
    }
}

#[tokio::test]
async fn a_call_is_a_job_and_its_output_the_answer() {
    let (_ep, api) = endpoint().await;
    let pending = call(&api, "chat/completions", chat_body(false), "k");
    let job = take(&api).await;
    assert_eq!(
        job["input"],
        json!({"openai_route": "/v1/chat/completions", "openai_input": chat_body(false)})
    );
    let id = job["id"].as_str().unwrap();
    let answer = json!({"id": "chatcmpl-1", "object": "chat.completion", "choices": []});
    api.wpost(&format!("job-done/w1/{id}"), &json!({"output": answer})).await;
    let resp = pending.await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["x-request-id"], id);
    assert_eq!(resp.json::<Value>().await.unwrap(), answer);

    // /models is a GET with an empty body; a generator's aggregate `[answer]` is unwrapped.
    let models = api.http.get(format!("{}/openai/v1/models", api.url)).bearer_auth("k").send();
    let pending = tokio::spawn(models);
    let job = take(&api).await;
    assert_eq!(job["input"], json!({"openai_route": "/v1/models", "openai_input": {}}));
    let list = json!({"object": "list", "data": [{"id": "m", "object": "model"}]});
    api.wpost(&format!("job-done/w1/{}", job["id"].as_str().unwrap()), &json!({"output": [list]})).await;
    assert_eq!(pending.await.unwrap().unwrap().json::<Value>().await.unwrap(), list);
}

#[tokio::test]
async fn worker_errors_keep_their_status() {
    let (_ep, api) = endpoint().await;
    let e400 = json!({"message": "n must be 1", "type": "invalid_request_error", "param": "n", "code": 400});
    for (done, status, message) in [
        // A handler's returned {"error": {...}}: the job fails with the object as its error.
        (json!({"error": e400.to_string()}), 400, "n must be 1"),
        // vLLM's error object as the output of a completed job.
        (
            json!({"output": [{"object": "error", "message": "no such model", "type": "NotFoundError", "code": 404}]}),
            404,
            "no such model",
        ),
        // The SDK's error report of a handler that raised.
        (
            json!({"error": json!({"error_type": "ValueError", "error_message": "boom"}).to_string()}),
            500,
            "boom",
        ),
        (json!({"error": "plain failure"}), 500, "plain failure"),
    ] {
        for stream in [false, true] {
            let pending = call(&api, "chat/completions", chat_body(stream), "k");
            let id = take(&api).await["id"].as_str().unwrap().to_owned();
            api.wpost(&format!("job-done/w1/{id}"), &done).await;
            let resp = pending.await.unwrap();
            assert_eq!(resp.status().as_u16(), status, "{done}");
            let body: Value = resp.json().await.unwrap();
            assert_eq!(error_of(&body)["message"], message, "{body}");
        }
    }
}

/// Reads the SSE body into `seen` until it holds `want`.
async fn read_until<S, B>(body: &mut S, seen: &mut String, want: &str)
where
    S: futures::Stream<Item = reqwest::Result<B>> + Unpin,
    B: AsRef<[u8]>,
{
    let read = async {
        while !seen.contains(want) {
            let chunk = body.next().await.expect("the stream ended early").unwrap();
            seen.push_str(&String::from_utf8_lossy(chunk.as_ref()));
        }
    };
    tokio::time::timeout(Duration::from_secs(30), read)
        .await
        .unwrap_or_else(|_| panic!("no {want:?} in {seen:?}"));
}

#[tokio::test]
async fn streams_are_relayed_as_they_arrive_and_end_with_done() {
    let (_ep, api) = endpoint().await;
    let pending = call(&api, "chat/completions", chat_body(true), "k");
    let id = take(&api).await["id"].as_str().unwrap().to_owned();
    // A raw SSE string (as worker-vllm streams), relayed as is, while the job still runs.
    let first = "data: {\"choices\":[{\"delta\":{\"content\":\"Hel\"}}]}\n\n";
    api.wpost(&format!("job-stream/w1/{id}"), &json!({"output": first})).await;
    let resp = pending.await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "text/event-stream");
    let mut body = resp.bytes_stream();
    let mut seen = String::new();
    read_until(&mut body, &mut seen, "Hel").await;
    assert_eq!(seen, first);
    let (status, st) = api.status(&id).await;
    assert_eq!((status, st["status"].as_str()), (200, Some("IN_PROGRESS")), "the job still runs");
    // Any other value becomes one `data:` event.
    api.wpost(
        &format!("job-stream/w1/{id}"),
        &json!({"output": {"choices": [{"delta": {"content": "lo"}}]}}),
    )
    .await;
    read_until(&mut body, &mut seen, "lo").await;
    api.wpost(&format!("job-done/w1/{id}"), &json!({"output": []})).await;
    read_until(&mut body, &mut seen, "data: [DONE]\n\n").await;
    assert!(body.next().await.is_none(), "the stream ends after [DONE]");
    assert!(
        seen.ends_with("data: {\"choices\":[{\"delta\":{\"content\":\"lo\"}}]}\n\ndata: [DONE]\n\n"),
        "{seen}"
    );

    // A worker that sends [DONE] itself gets no second one; a failure mid-stream is an error event.
    for (done, tail) in [
        (json!({"output": null}), "data: [DONE]\n\n"),
        (json!({"error": "worker crashed"}), "worker crashed"),
    ] {
        let pending = call(&api, "completions", json!({"prompt": "p", "stream": true}), "k");
        let id = take(&api).await["id"].as_str().unwrap().to_owned();
        let own_done = done.get("error").is_none();
        let chunk = if own_done { "data: {\"x\":1}\n\ndata: [DONE]\n\n" } else { "data: {\"x\":1}\n\n" };
        api.wpost(&format!("job-stream/w1/{id}"), &json!({"output": chunk})).await;
        let mut body = pending.await.unwrap().bytes_stream();
        let mut seen = String::new();
        read_until(&mut body, &mut seen, "x").await;
        api.wpost(&format!("job-done/w1/{id}"), &done).await;
        while let Some(c) = body.next().await {
            seen.push_str(&String::from_utf8_lossy(&c.unwrap()));
        }
        assert!(seen.contains(tail), "{seen}");
        assert_eq!(seen.matches("[DONE]").count(), 1, "{seen}");
    }
}

#[tokio::test]
async fn a_client_that_disconnects_cancels_the_job() {
    let (_ep, api) = endpoint().await;
    for stream in [true, false] {
        let pending = call(&api, "chat/completions", chat_body(stream), "k");
        let id = take(&api).await["id"].as_str().unwrap().to_owned();
        if stream {
            api.wpost(&format!("job-stream/w1/{id}"), &json!({"output": "data: {}\n\n"})).await;
            let resp = pending.await.unwrap();
            let mut body = resp.bytes_stream();
            let mut seen = String::new();
            read_until(&mut body, &mut seen, "data").await;
            drop(body);
        } else {
            // Give the call time to be waiting, then drop the connection.
            tokio::time::sleep(Duration::from_millis(200)).await;
            pending.abort();
        }
        let st = api.wait_status(&id, "CANCELLED").await;
        assert_eq!(st["status"], "CANCELLED");
        // The worker is told to stop it.
        let (status, stop) = api.wget("job-stop/w1").await;
        assert_eq!(status, 200);
        assert_eq!(stop["jobsToStop"], json!([id]));
    }
}

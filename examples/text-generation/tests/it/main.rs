//! The text-generation example: one test binary (each file a module; `tiny` is the shared tiny
//! model fixture).

mod batching;
mod chat_template;
mod engines;
mod generate;
mod gguf_tokenizer;
mod hostile_input;
mod openai;
mod response_format;
mod runpod_hub;
mod tiny;
mod worker;

/// llama.cpp's CPU threads wait for each other by spinning, so two GGUF models computing at once
/// on two cores slow each other several-fold (this binary took 210 s with its tests in parallel,
/// 47 s one at a time). The tests that run the GGUF model hold this while they do.
pub(crate) async fn llama_cpu() -> tokio::sync::MutexGuard<'static, ()> {
    static LOCK: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    LOCK.lock().await
}

/// The JSON events of a Server-Sent Events response, as they arrive, until the stream ends
/// (`[DONE]` left out).
pub(crate) async fn sse_events(resp: reqwest::Response) -> Vec<serde_json::Value> {
    use futures::StreamExt;
    let (mut bytes, mut buf, mut events) = (resp.bytes_stream(), String::new(), Vec::new());
    while let Some(chunk) = bytes.next().await {
        buf.push_str(&String::from_utf8_lossy(&chunk.unwrap()));
        while let Some(end) = buf.find("\n\n") {
            let event: String = buf.drain(..end + 2).collect();
            let data = event.trim().trim_start_matches("data: ");
            if data != "[DONE]" {
                events.push(serde_json::from_str(data).unwrap_or_else(|e| panic!("{e}: {data:?}")));
            }
        }
    }
    events
}

/// POSTs `body` to the OpenAI route `path` (e.g. `chat/completions`) of the endpoint at `base`,
/// with the local API key.
pub(crate) async fn post_openai(
    http: &reqwest::Client,
    base: &str,
    path: &str,
    body: &serde_json::Value,
) -> reqwest::Response {
    use example_support::local_worker::API_KEY;
    http.post(format!("{base}/openai/v1/{path}")).bearer_auth(API_KEY).json(body).send().await.unwrap()
}

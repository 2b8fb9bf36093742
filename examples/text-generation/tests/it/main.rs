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

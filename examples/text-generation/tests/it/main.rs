//! The text-generation example: one test binary (each file a module; `tiny` is the shared tiny
//! model fixture).

mod batching;
mod chat_template;
mod engines;
mod generate;
mod gguf_tokenizer;
mod hostile_input;
mod openai;
mod runpod_hub;
mod tiny;
mod worker;

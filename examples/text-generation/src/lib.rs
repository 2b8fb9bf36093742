//! Example Runpod worker: token-by-token text generation with a Llama-family causal LM
//! (Llama 2/3, TinyLlama, SmolLM, ...): GGUF files on llama.cpp, safetensors folders on
//! [candle](https://github.com/huggingface/candle).
//!
//! [`Generator`] is the model (load once; generate with temperature, top-p, seed, max tokens
//! and stop strings, reporting each piece of text to an [`Observer`] that can cancel between
//! tokens); [`GenerateHandler`] wraps it as a `runpod-worker` handler that streams the pieces,
//! reports progress and honours job cancellation. [`gguf::GgufModel`] runs a quantized GGUF file
//! on llama.cpp (tokenizer and chat template from its metadata), many requests in one batch
//! ([`batcher`]), [`TextModel`] is either kind with its [`chat::ChatTemplate`], and the handler
//! also serves the OpenAI-compatible route (chat completions, completions, models), with
//! `response_format` held to JSON by a grammar ([`json_grammar`]). A chat's messages are tokenized as text: only its
//! template's own markup becomes special tokens ([`prompt`]). See the README for running the
//! binary.
//!
//! ```no_run
//! use text_generation::{Generator, Observer, Params};
//!
//! struct Print;
//! impl Observer for Print {
//!     fn text(&mut self, piece: &str) { print!("{piece}") }
//! }
//!
//! let model = Generator::load("models/SmolLM2-135M".as_ref(), &candle_core::Device::Cpu)?;
//! let params = Params { max_tokens: 32, temperature: 0.0, top_p: None, seed: 1, stop: vec!["\n".into()] };
//! let out = model.generate("The capital of France is", &params, &mut Print)?;
//! println!("\n{:?} after {} tokens", out.finish_reason, out.generated_tokens);
//! # Ok::<(), text_generation::GenerateError>(())
//! ```
//!
//! Stop strings are matched on the streamed text, holding back only what could still become one:
//!
//! ```
//! use text_generation::stop::{StopMatcher, StopState};
//! let mut m = StopMatcher::new(&["###".to_string()]);
//! assert_eq!(m.push("Answer: 4 #"), StopState::Continue("Answer: 4 ".into()));
//! assert_eq!(m.push("## next"), StopState::Stopped(String::new()));
//! assert_eq!(m.text(), "Answer: 4 ");
//! ```

pub mod batcher;
pub mod chat;
pub mod cpu_llama;
pub mod detok;
pub mod error;
pub mod gguf;
pub mod handler;
pub mod json_grammar;
pub mod model;
pub mod prompt;
pub mod stop;
pub mod text_model;

/// The device choice (`DEVICE`, the `cuda` feature), shared with the other model examples.
pub use example_support::device;
pub use example_support::device::{pick_device, DeviceChoice, DeviceError, DEVICE_ENV};
pub use example_support::LoadError;
pub use handler::{GenerateHandler, GenerateInput, GenerateOutput, GenerateProgress, Stats, TextChunk};
pub use model::{Engine, FinishReason, GenerateError, Generation, Generator, Observer, Params};
pub use prompt::{ChatPrompt, Prompt};
pub use text_model::TextModel;

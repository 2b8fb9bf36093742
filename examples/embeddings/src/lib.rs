//! Example Runpod worker: sentence embeddings with a BERT-family model (all-MiniLM-L6-v2 and
//! its relatives) on [candle](https://github.com/huggingface/candle).
//!
//! [`Embedder`] is the model (load once, embed batches); [`EmbedHandler`] wraps it as a
//! `runpod-worker` handler; [`Hub`] fetches a model folder by id when no local copy is given.
//! The binary (`src/main.rs`) ties them together; see the README for running it.
//!
//! ```no_run
//! use embeddings::Embedder;
//! use candle_core::Device;
//!
//! let model = Embedder::load("models/all-MiniLM-L6-v2".as_ref(), &Device::Cpu)?;
//! let out = model.embed(&["A man is eating food.", "A man is eating bread."], true)?;
//! let cosine: f32 = out.vectors[0].iter().zip(&out.vectors[1]).map(|(a, b)| a * b).sum();
//! assert!(cosine > 0.5 && out.vectors[0].len() == model.dimensions());
//! # Ok::<(), embeddings::EmbedError>(())
//! ```
//!
//! The input/output types are plain serde types, so they can be checked without a model:
//!
//! ```
//! let input: embeddings::EmbedInput = serde_json::from_str(r#"{"input": ["a", "b"]}"#).unwrap();
//! assert!(input.normalize, "normalize defaults to true");
//! let bad = serde_json::from_str::<embeddings::EmbedInput>(r#"{"input": 3}"#).unwrap_err();
//! assert!(bad.to_string().contains("a string or an array of strings"));
//! ```

pub mod handler;
pub mod hub;
pub mod model;
pub mod packed;

/// The device choice (`DEVICE`, the `cuda` feature), shared with the other model examples.
pub use example_support::device;
pub use example_support::device::{pick_device, DeviceChoice, DeviceError, DEVICE_ENV};
pub use example_support::LoadError;
pub use handler::{EmbedHandler, EmbedInput, EmbedOutput, Texts};
pub use hub::{model_from_env, Hub, HubError};
pub use model::{EmbedError, Embedder, Embeddings, Engine, LoadOptions, DEFAULT_BATCH_SIZE};

/// The model used when neither `MODEL_DIR` nor `MODEL_ID` is set.
pub const DEFAULT_MODEL_ID: &str = "sentence-transformers/all-MiniLM-L6-v2";
/// Files a model folder must have.
pub const MODEL_FILES: &[&str] = &["config.json", "tokenizer.json", "model.safetensors"];
/// Files used when present (the sentence-transformers token limit).
pub const OPTIONAL_FILES: &[&str] = &["sentence_bert_config.json"];

//! [`GenerateError`]: why a model could not be loaded or a generation failed.

use example_support::candle_error::candle_message;
use example_support::load::LoadError;

/// Why a model could not be loaded or a generation failed.
#[derive(Debug, thiserror::Error)]
pub enum GenerateError {
    /// A model file is missing, unreadable or invalid (`config.json` not a Llama config,
    /// `tokenizer.json` not a tokenizer, no `*.safetensors`); the message names the file.
    #[error(transparent)]
    Load(#[from] LoadError),
    /// The weights do not fit the config (a tensor is missing or has the wrong shape).
    #[error("weights do not match the config: {0}")]
    Weights(String),
    /// Tokenisation failed.
    #[error("tokenizer: {0}")]
    Tokenizer(String),
    /// The tensor library failed. Its text is candle's message alone: no backtrace (candle
    /// appends one when `RUST_BACKTRACE` is set) and no folders of file paths.
    #[error("model: {}", candle_message(.0))]
    Model(candle_core::Error),
    /// llama.cpp failed while running a GGUF model.
    #[error("model: {0}")]
    Engine(String),
    /// The request is not acceptable (bad sampling values, prompt too long, ...).
    #[error("{0}")]
    BadInput(String),
    /// The model's thread ended abnormally.
    #[error("internal error: {0}")]
    Internal(String),
}

impl From<candle_core::Error> for GenerateError {
    fn from(e: candle_core::Error) -> Self {
        GenerateError::Model(e)
    }
}

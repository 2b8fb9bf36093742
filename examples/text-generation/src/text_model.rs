//! [`TextModel`]: the model a worker serves, from a model folder (safetensors) or one GGUF
//! file, with its chat template when it has one.

use std::path::Path;

use candle_core::Device;

use crate::chat::ChatTemplate;
use crate::gguf::GgufModel;
use crate::model::{GenerateError, Generation, Generator, Observer, Params};

/// Where the weights came from.
enum Weights {
    /// A model folder on candle's Llama.
    Folder(Box<Generator>),
    /// A GGUF file on candle's quantized Llama.
    Gguf(Box<GgufModel>),
}

/// A loaded model, its name and chat template.
pub struct TextModel {
    weights: Weights,
    chat: Option<ChatTemplate>,
    name: String,
}

// A summary: the weights and buffers are far too big to print.
impl std::fmt::Debug for TextModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TextModel").field("name", &self.name).finish_non_exhaustive()
    }
}

impl TextModel {
    /// Loads `path`: a `.gguf` file, or a model folder (`config.json`, `tokenizer.json`,
    /// safetensors weights, and `tokenizer_config.json` for the chat template).
    pub fn load(path: &Path, device: &Device) -> Result<Self, GenerateError> {
        let name = path.file_stem().and_then(|s| s.to_str()).unwrap_or("model").to_owned();
        if path.extension().is_some_and(|e| e.eq_ignore_ascii_case("gguf")) {
            return Ok(Self::from(GgufModel::load(path, device)?));
        }
        let chat = ChatTemplate::from_model_dir(path)?;
        Ok(Self { weights: Weights::Folder(Box::new(Generator::load(path, device)?)), chat, name })
    }

    /// A folder model with the given chat template (for tests and callers that load weights
    /// elsewhere).
    pub fn with_chat_template(generator: Generator, chat: Option<ChatTemplate>, name: &str) -> Self {
        Self { weights: Weights::Folder(Box::new(generator)), chat, name: name.to_owned() }
    }

    /// The name answered in `model` fields and `/v1/models`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The chat template, if the model has one.
    pub fn chat_template(&self) -> Option<&ChatTemplate> {
        match &self.weights {
            Weights::Gguf(g) => g.chat_template(),
            Weights::Folder(_) => self.chat.as_ref(),
        }
    }

    /// The longest prompt plus generation, in tokens.
    pub fn context_length(&self) -> usize {
        match &self.weights {
            Weights::Folder(g) => g.context_length(),
            Weights::Gguf(g) => g.context_length(),
        }
    }

    /// Generates a continuation of `prompt` (see [`Generator::generate`]).
    pub fn generate(
        &self,
        prompt: &str,
        params: &Params,
        observer: &mut dyn Observer,
    ) -> Result<Generation, GenerateError> {
        match &self.weights {
            Weights::Folder(g) => g.generate(prompt, params, observer),
            Weights::Gguf(g) => g.generate(prompt, params, observer),
        }
    }
}

impl From<Generator> for TextModel {
    fn from(g: Generator) -> Self {
        Self { weights: Weights::Folder(Box::new(g)), chat: None, name: "model".to_owned() }
    }
}

impl From<GgufModel> for TextModel {
    fn from(g: GgufModel) -> Self {
        // The chat template stays with the GGUF model (see `chat_template`).
        Self { chat: None, name: g.name().to_owned(), weights: Weights::Gguf(Box::new(g)) }
    }
}

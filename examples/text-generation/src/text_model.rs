//! [`TextModel`]: the model a worker serves, from a model folder (safetensors) or one GGUF
//! file, with its chat template when it has one.

use std::path::Path;

use candle_core::Device;

use crate::chat::{ChatTemplate, TemplateMessage};
use crate::gguf::GgufModel;
use crate::model::{GenerateError, Generation, Generator, Observer, Params};
use crate::prompt::{ChatPrompt, Prompt};

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
        Self::load_with(path, device, 1)
    }

    /// Loads `path` for up to `sequences` requests at once. A GGUF file runs them in one batch
    /// on llama.cpp (see [`GgufModel::load_with`]); a model folder runs each on its own.
    pub fn load_with(path: &Path, device: &Device, sequences: usize) -> Result<Self, GenerateError> {
        let name = path.file_stem().and_then(|s| s.to_str()).unwrap_or("model").to_owned();
        if Self::is_gguf(path) {
            return Ok(Self::from(GgufModel::load_with(path, device, sequences)?));
        }
        let chat = ChatTemplate::from_model_dir(path)?;
        Ok(Self { weights: Weights::Folder(Box::new(Generator::load(path, device)?)), chat, name })
    }

    /// Whether `path` names a GGUF file (by its extension).
    pub fn is_gguf(path: &Path) -> bool {
        path.extension().is_some_and(|e| e.eq_ignore_ascii_case("gguf"))
    }

    /// A folder model with the given chat template (for tests and callers that load weights
    /// elsewhere).
    pub fn with_chat_template(generator: Generator, chat: Option<ChatTemplate>, name: &str) -> Self {
        Self { weights: Weights::Folder(Box::new(generator)), chat, name: name.to_owned() }
    }

    /// The GGUF model on llama.cpp, when it is one (its engine's counters: [`GgufModel::batcher`]).
    pub fn gguf(&self) -> Option<&GgufModel> {
        match &self.weights {
            Weights::Gguf(g) => Some(g),
            Weights::Folder(_) => None,
        }
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

    /// The texts of the tokenizer's special tokens.
    pub fn special_tokens(&self) -> Vec<String> {
        match &self.weights {
            Weights::Folder(g) => g.special_tokens(),
            Weights::Gguf(g) => g.special_tokens(),
        }
    }

    /// The conversation rendered by the model's chat template, its markup apart from the
    /// messages' text (see [`ChatTemplate::render_prompt`]); `None` when the model has no
    /// template.
    pub fn chat_prompt(
        &self,
        messages: &[TemplateMessage],
        add_generation_prompt: bool,
    ) -> Option<Result<ChatPrompt, GenerateError>> {
        let template = self.chat_template()?;
        Some(template.render_prompt(messages, add_generation_prompt, &self.special_tokens()))
    }

    /// The prompt's token ids as the model reads them (see [`Generator::encode`] and
    /// [`GgufModel::encode`]).
    pub fn encode<'a>(&self, prompt: impl Into<Prompt<'a>>) -> Result<Vec<u32>, GenerateError> {
        match &self.weights {
            Weights::Folder(g) => g.encode(prompt),
            Weights::Gguf(g) => g.encode(prompt),
        }
    }

    /// Generates a continuation of `prompt` (see [`Generator::generate`]).
    pub fn generate<'a>(
        &self,
        prompt: impl Into<Prompt<'a>>,
        params: &Params,
        observer: &mut dyn Observer,
    ) -> Result<Generation, GenerateError> {
        self.generate_with(prompt, params, None, observer)
    }

    /// [`TextModel::generate`] held to `grammar` (GBNF) when there is one: GGUF models only
    /// ([`GgufModel::generate_with`]); a model folder refuses it as bad input.
    pub fn generate_with<'a>(
        &self,
        prompt: impl Into<Prompt<'a>>,
        params: &Params,
        grammar: Option<&str>,
        observer: &mut dyn Observer,
    ) -> Result<Generation, GenerateError> {
        match (&self.weights, grammar) {
            (Weights::Folder(g), None) => g.generate(prompt, params, observer),
            (Weights::Folder(_), Some(_)) => Err(GenerateError::BadInput(
                "constrained output (response_format) needs a GGUF model: llama.cpp holds the tokens to the grammar"
                    .into(),
            )),
            (Weights::Gguf(g), grammar) => g.generate_with(prompt, params, grammar, observer),
        }
    }

    /// Whether [`TextModel::generate_with`] can hold output to a grammar.
    pub fn supports_grammar(&self) -> bool {
        matches!(self.weights, Weights::Gguf(_))
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

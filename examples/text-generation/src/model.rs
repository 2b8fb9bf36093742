//! The causal language model: a Llama-family decoder (Llama 2/3, TinyLlama, SmolLM, ...) loaded
//! from a folder, with seeded sampling, stop strings, a token limit and cancellation between tokens.

use std::path::Path;

pub use crate::error::GenerateError;

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::generation::LogitsProcessor;
use candle_transformers::models::llama::{Cache, Config, Llama, LlamaConfig, LlamaEosToks};
use example_support::load;
use tokenizers::Tokenizer;

use crate::cpu_llama::{CpuLlama, KvCache};
use crate::detok::Detokenizer;
use crate::prompt::{Prompt, PromptEncoder};
use crate::stop::{StopMatcher, StopState};

/// Sampling and stopping settings for one generation.
#[derive(Debug, Clone, PartialEq)]
pub struct Params {
    /// Most new tokens to generate (at least 1).
    pub max_tokens: usize,
    /// Softmax temperature; 0 means greedy (always the most likely token).
    pub temperature: f64,
    /// Nucleus sampling: keep the smallest set of tokens whose probability reaches `top_p`.
    pub top_p: Option<f64>,
    /// Seed of the sampler: the same seed, prompt and settings give the same text.
    pub seed: u64,
    /// Generation ends before the first occurrence of any of these strings.
    pub stop: Vec<String>,
}

impl Params {
    /// Checks the values are usable; the error names the bad field.
    pub fn validate(&self) -> Result<(), GenerateError> {
        let bad = |m: String| Err(GenerateError::BadInput(m));
        if self.max_tokens == 0 {
            return bad("max_tokens must be at least 1".into());
        }
        // OpenAI's range; NaN is outside it too.
        if !(0.0..=2.0).contains(&self.temperature) {
            return bad(format!("temperature must be between 0 and 2, got {}", self.temperature));
        }
        let most = runpod_worker::openai::MAX_STOP_BYTES;
        if let Some(long) = self.stop.iter().find(|s| s.len() > most) {
            return bad(format!("a stop string is at most {most} bytes, got one of {} bytes", long.len()));
        }
        if let Some(p) = self.top_p {
            if !(p > 0.0 && p <= 1.0) {
                return bad(format!("top_p must be in (0, 1], got {p}"));
            }
        }
        Ok(())
    }
}

/// Why a generation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FinishReason {
    /// The model produced an end-of-sequence token.
    Eos,
    /// A stop string was generated (it is not part of the text).
    Stop,
    /// `max_tokens` new tokens were generated.
    Length,
    /// The caller cancelled between two tokens.
    Cancelled,
}

/// The outcome of one generation.
#[derive(Debug, Clone, PartialEq)]
pub struct Generation {
    /// The generated text (without the prompt and without any stop string).
    pub text: String,
    /// Tokens in the prompt (special tokens included).
    pub prompt_tokens: usize,
    /// New tokens the model produced.
    pub generated_tokens: usize,
    /// Why it ended.
    pub finish_reason: FinishReason,
}

/// What the caller sees during a generation.
pub trait Observer {
    /// Called before each new token; returning true stops with [`FinishReason::Cancelled`].
    fn cancelled(&mut self) -> bool {
        false
    }
    /// Called with each new piece of text, in order; the pieces concatenate to the final text.
    fn text(&mut self, _piece: &str) {}
    /// Called with each new token's id (before [`Observer::token`]), e.g. to compare runs.
    fn token_id(&mut self, _id: u32) {}
    /// Called after each token with the number of new tokens so far.
    fn token(&mut self, _generated: usize) {}
}

/// Which forward pass runs the model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    /// [`crate::cpu_llama::CpuLlama`]: the CPU, F32, no `rope_scaling`. The default where it fits.
    Cpu,
    /// candle's `Llama`: any device and dtype. The default elsewhere.
    Candle,
}

enum Decoder {
    Cpu(CpuLlama),
    Candle { model: Llama, cache: Cache },
}

/// One generation's cache, of the decoder's kind.
enum State {
    Cpu(KvCache),
    Candle(Cache),
}

/// A loaded causal LM; load once, then call [`Generator::generate`] per request (it takes
/// `&self`, so requests may run concurrently, each with its own KV cache).
pub struct Generator {
    decoder: Decoder,
    config: Config,
    encoder: PromptEncoder,
    eos: Vec<u32>,
    device: Device,
}

// A summary: the weights and buffers are far too big to print.
impl std::fmt::Debug for Generator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Generator")
            .field("eos", &self.eos)
            .field("device", &self.device)
            .finish_non_exhaustive()
    }
}

#[derive(serde::Deserialize)]
struct GenerationConfig {
    eos_token_id: Option<LlamaEosToks>,
}

fn eos_list(eos: Option<&LlamaEosToks>) -> Vec<u32> {
    match eos {
        Some(LlamaEosToks::Single(id)) => vec![*id],
        Some(LlamaEosToks::Multiple(ids)) => ids.clone(),
        None => vec![],
    }
}

impl Generator {
    /// Loads `config.json`, `tokenizer.json` and `model.safetensors` (or every
    /// `model-*.safetensors` shard) from `dir`. End-of-sequence ids come from `config.json` and,
    /// when present, `generation_config.json`. F16 on CUDA, F32 on the CPU.
    pub fn load(dir: &Path, device: &Device) -> Result<Self, GenerateError> {
        Self::load_with(dir, device, None)
    }

    /// [`Generator::load`] with a chosen forward pass (`None`: [`Engine::Cpu`] where it fits).
    pub fn load_with(dir: &Path, device: &Device, engine: Option<Engine>) -> Result<Self, GenerateError> {
        let config: LlamaConfig = load::read_json(&dir.join("config.json"))?;
        let mut eos = eos_list(config.eos_token_id.as_ref());
        let gen: Option<GenerationConfig> = load::read_json_if_present(&dir.join("generation_config.json"))?;
        if let Some(gen) = gen {
            eos.extend(eos_list(gen.eos_token_id.as_ref()));
        }
        let tokenizer = load::load_tokenizer(&dir.join("tokenizer.json"))?;
        let weights = load::weight_files(dir)?;
        let dtype = if device.is_cuda() { DType::F16 } else { DType::F32 };
        // SAFETY: the files are memory-mapped read-only and not modified while the model lives.
        #[allow(unsafe_code, reason = "memory-mapped weights load without a copy")]
        let vb = unsafe { load::mmap_weights(&weights, dtype, device)? };
        Self::from_parts_with(vb, config.into_config(false), tokenizer, eos, engine)
    }

    /// Builds a generator from weights already in a [`VarBuilder`]: for tests and for callers
    /// that get weights elsewhere. `eos` lists the end-of-sequence token ids.
    pub fn from_parts(
        vb: VarBuilder,
        config: Config,
        tokenizer: Tokenizer,
        eos: Vec<u32>,
    ) -> Result<Self, GenerateError> {
        Self::from_parts_with(vb, config, tokenizer, eos, None)
    }

    /// [`Generator::from_parts`] with a chosen forward pass (`None`: [`Engine::Cpu`] where it fits).
    pub fn from_parts_with(
        vb: VarBuilder,
        config: Config,
        tokenizer: Tokenizer,
        eos: Vec<u32>,
        engine: Option<Engine>,
    ) -> Result<Self, GenerateError> {
        let (device, dtype) = (vb.device().clone(), vb.dtype());
        let cpu_fits = device.is_cpu() && dtype == DType::F32 && CpuLlama::supports(&config);
        let decoder = match engine {
            Some(Engine::Cpu) if !cpu_fits => {
                return Err(GenerateError::BadInput(format!(
                "the CPU decoder runs F32 on the CPU without rope_scaling (asked: {dtype:?} on {device:?})"
            )))
            }
            Some(Engine::Cpu) | None if cpu_fits => {
                Decoder::Cpu(CpuLlama::load(vb, &config).map_err(|e| GenerateError::Weights(e.to_string()))?)
            }
            _ => Self::candle_decoder(vb, &config, dtype, &device)?,
        };
        let mut eos = eos;
        eos.extend(eos_list(config.eos_token_id.as_ref()));
        eos.sort_unstable();
        eos.dedup();
        Ok(Self { decoder, config, encoder: PromptEncoder::new(tokenizer), eos, device })
    }

    fn candle_decoder(
        vb: VarBuilder,
        config: &Config,
        dtype: DType,
        device: &Device,
    ) -> Result<Decoder, GenerateError> {
        // `Llama::load` unwraps the per-layer results: turn a panic on bad weights into an error.
        let model = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| Llama::load(vb, config)))
            .map_err(|p| {
                let msg = p
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_else(|| "layer failed to load".into());
                GenerateError::Weights(msg)
            })?
            .map_err(|e| GenerateError::Weights(e.to_string()))?;
        let cache = Cache::new(true, dtype, config, device)?;
        Ok(Decoder::Candle { model, cache })
    }

    /// The forward pass in use.
    pub fn engine(&self) -> Engine {
        match self.decoder {
            Decoder::Cpu(_) => Engine::Cpu,
            Decoder::Candle { .. } => Engine::Candle,
        }
    }

    /// Runs `input` at position `pos` and returns the last token's logits (F32).
    fn step(&self, input: &[u32], pos: usize, state: &mut State) -> Result<Tensor, GenerateError> {
        match (&self.decoder, state) {
            (Decoder::Cpu(model), State::Cpu(cache)) => {
                let logits = model.forward(input, cache)?;
                let n = logits.len();
                Ok(Tensor::from_vec(logits, n, &Device::Cpu)?)
            }
            (Decoder::Candle { model, .. }, State::Candle(cache)) => {
                let x = Tensor::new(input, &self.device)?.unsqueeze(0)?;
                Ok(model.forward(&x, pos, cache)?.squeeze(0)?.to_dtype(DType::F32)?)
            }
            _ => Err(GenerateError::Internal("the cache does not belong to this model".into())),
        }
    }

    /// The tokenizer (for counting tokens, or decoding).
    pub fn tokenizer(&self) -> &Tokenizer {
        self.encoder.tokenizer()
    }

    /// The prompt's token ids as the model reads them: a raw prompt through the tokenizer with
    /// its post-processor (special tokens written in it matched), a chat prompt with only the
    /// template's markup as special tokens; the BOS token when that leaves nothing.
    pub fn encode<'a>(&self, prompt: impl Into<Prompt<'a>>) -> Result<Vec<u32>, GenerateError> {
        let mut tokens = self.encoder.encode(prompt.into(), true)?;
        if tokens.is_empty() {
            tokens.extend(self.config.bos_token_id);
        }
        Ok(tokens)
    }

    /// The texts of the tokenizer's special tokens.
    pub fn special_tokens(&self) -> Vec<String> {
        self.encoder.special_tokens()
    }

    /// The longest prompt plus generation the model supports, in tokens.
    pub fn context_length(&self) -> usize {
        self.config.max_position_embeddings
    }

    /// The device the model runs on.
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// Generates a continuation of `prompt` one token at a time, telling `observer` about each
    /// piece of text as it is produced and asking it between tokens whether to cancel.
    pub fn generate<'a>(
        &self,
        prompt: impl Into<Prompt<'a>>,
        params: &Params,
        observer: &mut dyn Observer,
    ) -> Result<Generation, GenerateError> {
        params.validate()?;
        let mut tokens = self.encode(prompt)?;
        if tokens.is_empty() {
            return Err(GenerateError::BadInput("the prompt is empty and the model has no BOS token".into()));
        }
        let prompt_tokens = tokens.len();
        let total = fits_context(prompt_tokens, params.max_tokens, self.context_length())?;

        let mut state = match &self.decoder {
            Decoder::Cpu(model) => State::Cpu(model.cache(total)),
            Decoder::Candle { cache, .. } => State::Candle(cache.clone()),
        };
        let mut sampler =
            LogitsProcessor::new(params.seed, Some(params.temperature), params.top_p.filter(|&p| p < 1.0));
        let mut detok = Detokenizer::new(self.tokenizer());
        let mut stops = StopMatcher::new(&params.stop);
        let mut generated = 0;
        let mut input: Vec<u32> = tokens.clone();
        let mut pos = 0;
        let finish = loop {
            if generated == params.max_tokens {
                break FinishReason::Length;
            }
            if observer.cancelled() {
                break FinishReason::Cancelled;
            }
            let logits = self.step(&input, pos, &mut state)?;
            pos += input.len();
            let next = sampler.sample(&logits)?;
            generated += 1;
            tokens.push(next);
            input = vec![next];
            observer.token_id(next);
            observer.token(generated);
            if self.eos.contains(&next) {
                break FinishReason::Eos;
            }
            let delta = detok.push(next).map_err(GenerateError::Tokenizer)?;
            match stops.push(&delta) {
                StopState::Continue(piece) => emit(observer, &piece),
                StopState::Stopped(piece) => {
                    emit(observer, &piece);
                    break FinishReason::Stop;
                }
            }
        };
        if finish != FinishReason::Stop {
            let tail = detok.finish().map_err(GenerateError::Tokenizer)?;
            match stops.push(&tail) {
                StopState::Stopped(piece) => emit(observer, &piece),
                StopState::Continue(piece) => {
                    emit(observer, &piece);
                    emit(observer, &stops.finish());
                }
            }
        }
        Ok(Generation {
            text: stops.text().to_owned(),
            prompt_tokens,
            generated_tokens: generated,
            finish_reason: finish,
        })
    }
}

/// `prompt_tokens + max_tokens` when it is at most `context`; a bad-input error naming
/// `max_tokens` otherwise (any `max_tokens`, `usize::MAX` included, without overflow).
pub(crate) fn fits_context(
    prompt_tokens: usize,
    max_tokens: usize,
    context: usize,
) -> Result<usize, GenerateError> {
    prompt_tokens.checked_add(max_tokens).filter(|&total| total <= context).ok_or_else(|| {
        GenerateError::BadInput(format!(
            "max_tokens ({max_tokens}) + the prompt's {prompt_tokens} tokens exceeds the model's context of {context} tokens"
        ))
    })
}

fn emit(observer: &mut dyn Observer, piece: &str) {
    if !piece.is_empty() {
        observer.text(piece);
    }
}

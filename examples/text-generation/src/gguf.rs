//! Quantized Llama-family models in one GGUF file (llama.cpp's format): the weights on
//! llama.cpp (through [`Batcher`], many requests in one batch), the tokenizer built from the
//! file's vocabulary and merges, the chat template and end-of-sequence token from its metadata.

use std::path::Path;

use candle_core::quantized::gguf_file::{self, Value};
use candle_core::{Device, Tensor};
use candle_transformers::generation::LogitsProcessor;
use serde_json::json;
use tokenizers::Tokenizer;

use crate::batcher::{Batcher, BatcherConfig, Grammar};
use crate::chat::ChatTemplate;
use crate::detok::Detokenizer;
use crate::model::{fits_context, FinishReason, GenerateError, Generation, Observer, Params};
use crate::prompt::{Prompt, PromptEncoder};
use crate::stop::{StopMatcher, StopState};

/// llama.cpp's token types (`tokenizer.ggml.token_type`).
const TOKEN_CONTROL: i32 = 3;
const TOKEN_USER_DEFINED: i32 = 4;

/// The pre-tokenizer of each supported `tokenizer.ggml.pre` (llama.cpp's names), as a
/// `tokenizer.json` fragment.
fn pre_tokenizer(pre: &str) -> Option<serde_json::Value> {
    let byte_level =
        json!({"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true});
    match pre {
        // GPT-2's regex, each digit its own token (SmolLM, SmolLM2).
        "smollm" => Some(json!({"type": "Sequence", "pretokenizers": [
            {"type": "Digits", "individual_digits": true}, byte_level]})),
        "gpt2" | "default" => Some(byte_level),
        // Llama 3.
        "llama-bpe" | "llama3" => Some(json!({"type": "Sequence", "pretokenizers": [
            {"type": "Split", "pattern": {"Regex":
                "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"},
             "behavior": "Isolated", "invert": false},
            {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": false}]})),
        _ => None,
    }
}

fn meta<'a>(ct: &'a gguf_file::Content, key: &str) -> Result<&'a Value, GenerateError> {
    ct.metadata.get(key).ok_or_else(|| bad_file(format!("no `{key}` in the GGUF metadata")))
}

fn bad_file(message: String) -> GenerateError {
    GenerateError::Tokenizer(message)
}

fn strings(v: &Value, key: &str) -> Result<Vec<String>, GenerateError> {
    let list = v.to_vec().map_err(|e| bad_file(format!("`{key}`: {e}")))?;
    list.iter().map(|s| s.to_string().cloned().map_err(|e| bad_file(format!("`{key}`: {e}")))).collect()
}

/// What the tokenizer part of a GGUF file says besides the tokenizer itself.
#[derive(Debug, Clone)]
pub struct GgufVocab {
    /// The tokenizer: byte-level BPE, control tokens as special added tokens.
    pub tokenizer: Tokenizer,
    /// `tokenizer.ggml.bos_token_id`.
    pub bos: Option<u32>,
    /// `tokenizer.ggml.eos_token_id` and `eot_token_id`.
    pub eos: Vec<u32>,
    /// `tokenizer.ggml.add_bos_token`.
    pub add_bos: bool,
    /// The text of each token id (for the chat template's `bos_token`/`eos_token`).
    pub tokens: Vec<String>,
}

/// Builds the tokenizer a GGUF file describes (`tokenizer.ggml.model = gpt2`, the byte-level
/// BPE of GPT-2, Llama 3, SmolLM, Qwen ...; SentencePiece `llama` vocabularies are refused).
pub fn vocab_from_gguf(ct: &gguf_file::Content) -> Result<GgufVocab, GenerateError> {
    let model = meta(ct, "tokenizer.ggml.model")?.to_string().map_err(|e| bad_file(e.to_string()))?;
    if model != "gpt2" {
        return Err(bad_file(format!(
            "GGUF tokenizer model '{model}' is not supported (only byte-level BPE, 'gpt2')"
        )));
    }
    let pre = match ct.metadata.get("tokenizer.ggml.pre") {
        Some(v) => v.to_string().map_err(|e| bad_file(e.to_string()))?.clone(),
        None => "default".to_owned(),
    };
    let pre_tok = pre_tokenizer(&pre).ok_or_else(|| {
        bad_file(format!("GGUF pre-tokenizer '{pre}' is not supported (smollm, gpt2, llama-bpe)"))
    })?;
    let tokens = strings(meta(ct, "tokenizer.ggml.tokens")?, "tokenizer.ggml.tokens")?;
    let merges = strings(meta(ct, "tokenizer.ggml.merges")?, "tokenizer.ggml.merges")?;
    let types: Vec<i32> = match ct.metadata.get("tokenizer.ggml.token_type") {
        Some(v) => v
            .to_vec()
            .map_err(|e| bad_file(e.to_string()))?
            .iter()
            .map(|t| t.to_i32().map_err(|e| bad_file(e.to_string())))
            .collect::<Result<_, _>>()?,
        None => vec![1; tokens.len()],
    };
    let vocab: serde_json::Map<String, serde_json::Value> =
        tokens.iter().enumerate().map(|(i, t)| (t.clone(), json!(i))).collect();
    let added: Vec<serde_json::Value> = types
        .iter()
        .enumerate()
        .filter(|(_, t)| **t == TOKEN_CONTROL || **t == TOKEN_USER_DEFINED)
        .map(|(i, t)| {
            json!({"id": i, "content": tokens[i], "single_word": false, "lstrip": false, "rstrip": false,
                   "normalized": false, "special": *t == TOKEN_CONTROL})
        })
        .collect();
    let spec = json!({
        "version": "1.0", "truncation": null, "padding": null, "added_tokens": added,
        "normalizer": null, "pre_tokenizer": pre_tok, "post_processor": null,
        "decoder": {"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": true, "use_regex": true},
        "model": {"type": "BPE", "dropout": null, "unk_token": null, "continuing_subword_prefix": null,
                  "end_of_word_suffix": null, "fuse_unk": false, "byte_fallback": false, "ignore_merges": false,
                  "vocab": vocab, "merges": merges}
    });
    let tokenizer = Tokenizer::from_bytes(spec.to_string()).map_err(|e| bad_file(e.to_string()))?;
    let id = |key: &str| ct.metadata.get(key).and_then(|v| v.to_u32().ok());
    let bos = id("tokenizer.ggml.bos_token_id");
    let mut eos: Vec<u32> = [id("tokenizer.ggml.eos_token_id"), id("tokenizer.ggml.eot_token_id")]
        .into_iter()
        .flatten()
        .collect();
    eos.dedup();
    let add_bos =
        ct.metadata.get("tokenizer.ggml.add_bos_token").and_then(|v| v.to_bool().ok()).unwrap_or(false);
    Ok(GgufVocab { tokenizer, bos, eos, add_bos, tokens })
}

impl GgufVocab {
    /// The token ids of `text` as the model reads it: special tokens written in the text are
    /// matched whole, BOS first when the file asks for it.
    pub fn encode(&self, text: &str) -> Result<Vec<u32>, GenerateError> {
        let enc = self.tokenizer.encode(text, false).map_err(|e| GenerateError::Tokenizer(e.to_string()))?;
        let mut ids = Vec::with_capacity(enc.len() + 1);
        if let (true, Some(bos)) = (self.add_bos, self.bos) {
            ids.push(bos);
        }
        ids.extend_from_slice(enc.get_ids());
        Ok(ids)
    }

    fn token_text(&self, id: Option<u32>) -> String {
        id.and_then(|i| self.tokens.get(i as usize)).cloned().unwrap_or_default()
    }
}

/// The longest context a sequence gets (prompt and generation) when the file allows more: each
/// of the [`BatcherConfig::sequences`] holds a KV cache this long.
pub const MAX_CONTEXT: usize = 4096;

/// A loaded GGUF model; load once, generate per request (each with its own KV cache, up to
/// [`BatcherConfig::sequences`] at once, batched together).
pub struct GgufModel {
    batcher: Batcher,
    vocab: GgufVocab,
    encoder: PromptEncoder,
    chat: Option<ChatTemplate>,
    context: usize,
    name: String,
}

// A summary: the weights and buffers are far too big to print.
impl std::fmt::Debug for GgufModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GgufModel")
            .field("name", &self.name)
            .field("context", &self.context)
            .field("batcher", &self.batcher)
            .finish_non_exhaustive()
    }
}

impl GgufModel {
    /// Loads `path` (a `.gguf` file of a Llama-family model) onto `device`, for one request at a
    /// time (see [`GgufModel::load_with`]).
    pub fn load(path: &Path, device: &Device) -> Result<Self, GenerateError> {
        Self::load_with(path, device, 1)
    }

    /// Loads `path` onto `device` for up to `sequences` requests at once: their tokens run in
    /// one batch, and each holds a KV cache of [`GgufModel::context_length`] tokens.
    pub fn load_with(path: &Path, device: &Device, sequences: usize) -> Result<Self, GenerateError> {
        Self::load_with_config(path, device, BatcherConfig::cpu(sequences, MAX_CONTEXT))
    }

    /// Loads `path` onto `device` with `config`: its sequences and threads, and its context as
    /// the most a sequence gets (the file's own context when that is less).
    pub fn load_with_config(
        path: &Path,
        device: &Device,
        config: BatcherConfig,
    ) -> Result<Self, GenerateError> {
        let read_err = |source| example_support::LoadError::Read { path: path.to_owned(), source };
        let mut file = std::fs::File::open(path).map_err(read_err)?;
        let ct = gguf_file::Content::read(&mut file)
            .map_err(|e| GenerateError::Weights(format!("{}: not a GGUF file: {e}", path.display())))?;
        let arch = ct.metadata.get("general.architecture").and_then(|v| v.to_string().ok()).cloned();
        if arch.as_deref() != Some("llama") {
            return Err(GenerateError::Weights(format!(
                "{}: architecture {arch:?} is not supported (only llama)",
                path.display()
            )));
        }
        let vocab = vocab_from_gguf(&ct)?;
        let chat = match ct.metadata.get("tokenizer.chat_template").and_then(|v| v.to_string().ok()) {
            Some(src) => Some(ChatTemplate::new(
                src,
                &vocab.token_text(vocab.bos),
                &vocab.token_text(vocab.eos.first().copied()),
            )?),
            None => None,
        };
        let context = ct
            .metadata
            .get("llama.context_length")
            .and_then(|v| v.to_u32().ok())
            .map_or(config.context, |c| (c as usize).min(config.context));
        let name = path.file_stem().and_then(|s| s.to_str()).unwrap_or("model").to_owned();
        let mut config = BatcherConfig { context, ..config };
        if !device.is_cpu() {
            // Every layer on the GPU (llama.cpp caps the count at the model's).
            config.gpu_layers = 999;
        }
        let batcher = Batcher::start(path, config)?;
        let encoder = PromptEncoder::new(vocab.tokenizer.clone());
        Ok(Self { batcher, vocab, encoder, chat, context, name })
    }

    /// The model's name: the file name without `.gguf`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The llama.cpp engine it runs on (its settings and counters).
    pub fn batcher(&self) -> &Batcher {
        &self.batcher
    }

    /// The tokenizer and special tokens.
    pub fn vocab(&self) -> &GgufVocab {
        &self.vocab
    }

    /// The chat template from the file's metadata, if it has one.
    pub fn chat_template(&self) -> Option<&ChatTemplate> {
        self.chat.as_ref()
    }

    /// The longest prompt plus generation, in tokens (the file's context, at most
    /// [`MAX_CONTEXT`]).
    pub fn context_length(&self) -> usize {
        self.context
    }

    /// The prompt's token ids as the model reads them: BOS first when the file asks for it,
    /// then a raw prompt with the special tokens written in it matched, or a chat prompt with
    /// only the template's markup as special tokens.
    pub fn encode<'a>(&self, prompt: impl Into<Prompt<'a>>) -> Result<Vec<u32>, GenerateError> {
        let mut ids = Vec::new();
        if let (true, Some(bos)) = (self.vocab.add_bos, self.vocab.bos) {
            ids.push(bos);
        }
        ids.extend(self.encoder.encode(prompt.into(), false)?);
        Ok(ids)
    }

    /// The texts of the tokenizer's special tokens (the file's control tokens).
    pub fn special_tokens(&self) -> Vec<String> {
        self.encoder.special_tokens()
    }

    /// Generates a continuation of `prompt` (see [`GgufModel::encode`]), telling `observer`
    /// about each piece of text and asking it between tokens whether to cancel.
    pub fn generate<'a>(
        &self,
        prompt: impl Into<Prompt<'a>>,
        params: &Params,
        observer: &mut dyn Observer,
    ) -> Result<Generation, GenerateError> {
        self.generate_with(prompt, params, None, observer)
    }

    /// [`GgufModel::generate`], each token drawn from those `grammar` (GBNF, rule `root`; see
    /// [`crate::json_grammar`]) allows next, when there is one.
    pub fn generate_with<'a>(
        &self,
        prompt: impl Into<Prompt<'a>>,
        params: &Params,
        grammar: Option<&str>,
        observer: &mut dyn Observer,
    ) -> Result<Generation, GenerateError> {
        params.validate()?;
        let mut grammar = grammar.map(|g| self.batcher.grammar(g)).transpose()?;
        let tokens = self.encode(prompt)?;
        if tokens.is_empty() {
            return Err(GenerateError::BadInput("the prompt is empty".into()));
        }
        let mut cancelled = || observer.cancelled();
        let Some(mut sequence) = self.batcher.sequence(&mut cancelled) else {
            return Ok(Generation {
                text: String::new(),
                prompt_tokens: tokens.len(),
                generated_tokens: 0,
                finish_reason: FinishReason::Cancelled,
            });
        };
        let vocab = self.batcher.vocab_size();
        decode_loop(tokens, params, observer, &self.vocab, self.context, grammar.as_mut(), |input, _pos| {
            let logits = sequence.forward(input).map_err(|e| candle_core::Error::Msg(e.to_string()))?;
            Tensor::from_vec(logits, vocab, &Device::Cpu)
        })
    }
}

/// The token-by-token loop: sampling, stop strings, detokenisation, cancellation.
fn decode_loop(
    mut tokens: Vec<u32>,
    params: &Params,
    observer: &mut dyn Observer,
    vocab: &GgufVocab,
    context: usize,
    mut grammar: Option<&mut Grammar>,
    mut forward: impl FnMut(&[u32], usize) -> candle_core::Result<Tensor>,
) -> Result<Generation, GenerateError> {
    let (tokenizer, eos) = (&vocab.tokenizer, vocab.eos.as_slice());
    let prompt_tokens = tokens.len();
    fits_context(prompt_tokens, params.max_tokens, context)?;
    let mut sampler =
        LogitsProcessor::new(params.seed, Some(params.temperature), params.top_p.filter(|&p| p < 1.0));
    let mut detok = Detokenizer::new(tokenizer);
    let mut stops = StopMatcher::new(&params.stop);
    let mut generated = 0;
    let mut input = tokens.clone();
    let mut pos = 0;
    let finish = loop {
        if generated == params.max_tokens {
            break FinishReason::Length;
        }
        if observer.cancelled() {
            break FinishReason::Cancelled;
        }
        let logits = forward(&input, pos)?;
        pos += input.len();
        let logits = logits.to_dtype(candle_core::DType::F32)?;
        let mut next = sampler.sample(&logits)?;
        if let Some(g) = grammar.as_deref_mut() {
            // Drawn from all tokens first (one check, cheap); only a token the grammar refuses
            // makes it mask the whole vocabulary and draw again from what it allows. The second
            // draw is from the allowed tokens' own distribution, so the result is distributed as
            // a draw from the masked logits.
            if !g.allows(next) {
                let mut masked = logits.to_vec1::<f32>()?;
                g.mask(&mut masked);
                if masked.iter().all(|l| *l == f32::NEG_INFINITY) {
                    return Err(GenerateError::Internal("the grammar allows no token here".into()));
                }
                next = sampler.sample(&Tensor::from_vec(masked, logits.dims1()?, logits.device())?)?;
            }
            if !eos.contains(&next) {
                g.accept(next);
            }
        }
        generated += 1;
        tokens.push(next);
        input = vec![next];
        observer.token(generated);
        if eos.contains(&next) {
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

fn emit(observer: &mut dyn Observer, piece: &str) {
    if !piece.is_empty() {
        observer.text(piece);
    }
}

//! The sentence-embedding model: a BERT-family encoder, mean pooling over each text's tokens and
//! optional L2 normalisation, truncation to the model's limit. Texts are sorted by length and
//! run in forward passes of similar lengths; on the CPU the encoder is [`crate::packed`] (no
//! padding at all), elsewhere candle's `BertModel` over padded, attention-masked batches.

use std::path::Path;

use candle_core::{DType, Device, Tensor};
use candle_transformers::models::bert::{BertModel, Config};
use example_support::load::{self, LoadError};

use crate::packed::{PackedBert, Sequence};
use tokenizers::{Encoding, Tokenizer, TruncationParams, TruncationStrategy};

/// Why a model could not be loaded or a batch could not be embedded.
#[derive(Debug, thiserror::Error)]
pub enum EmbedError {
    /// A model file is missing, unreadable or invalid (`config.json`, `sentence_bert_config.json`,
    /// `tokenizer.json`, `model.safetensors`); the message names the file.
    #[error(transparent)]
    Load(#[from] LoadError),
    /// The tokenizer could not be configured, or tokenisation failed.
    #[error("tokenizer: {0}")]
    Tokenizer(String),
    /// The tensor library failed (bad weights, out of memory, ...). Its text is candle's
    /// message alone: no backtrace and no folders of file paths.
    #[error("model: {}", example_support::candle_error::candle_message(.0))]
    Model(candle_core::Error),
    /// The request itself is not acceptable (empty batch, too many inputs).
    #[error("{0}")]
    BadInput(String),
    /// The job was cancelled before the model ran.
    #[error("cancelled")]
    Cancelled,
    /// The model's thread ended abnormally.
    #[error("internal error: {0}")]
    Internal(String),
}

impl From<candle_core::Error> for EmbedError {
    fn from(e: candle_core::Error) -> Self {
        EmbedError::Model(e)
    }
}

/// The result of embedding one batch: one entry per input, in input order.
#[derive(Debug, Clone, PartialEq)]
pub struct Embeddings {
    /// One vector per input, `dimensions` long.
    pub vectors: Vec<Vec<f32>>,
    /// Tokens the model saw for each input (special tokens included, after truncation).
    pub tokens: Vec<usize>,
    /// Whether each input was cut to the model's token limit.
    pub truncated: Vec<bool>,
}

/// Which forward pass runs the encoder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    /// [`crate::packed::PackedBert`]: the CPU, F32, no padding. The default on the CPU.
    Packed,
    /// candle's `BertModel` over padded batches: any device and dtype. The default elsewhere.
    Candle,
}

/// How to load a model: see [`Embedder::load_with`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoadOptions {
    /// Weights and activations (`F16` halves the memory and is faster on a GPU; pooling and
    /// normalising stay in F32). Default F32.
    pub dtype: DType,
    /// The forward pass; `None` picks [`Engine::Packed`] for F32 on the CPU, else [`Engine::Candle`].
    pub engine: Option<Engine>,
}

impl Default for LoadOptions {
    fn default() -> Self {
        Self { dtype: DType::F32, engine: None }
    }
}

enum Encoder {
    Packed(PackedBert),
    Candle(BertModel),
}

/// A loaded sentence-embedding model; load once, then call [`Embedder::embed`] per batch.
pub struct Embedder {
    model: Encoder,
    tokenizer: Tokenizer,
    device: Device,
    max_tokens: usize,
    dimensions: usize,
    pad_id: u32,
    batch_size: usize,
}

// A summary: the weights and buffers are far too big to print.
impl std::fmt::Debug for Embedder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Embedder")
            .field("dimensions", &self.dimensions)
            .field("max_tokens", &self.max_tokens)
            .field("batch_size", &self.batch_size)
            .field("device", &self.device)
            .finish_non_exhaustive()
    }
}

/// Texts per forward pass unless [`Embedder::with_batch_size`] says otherwise (the same default
/// as sentence-transformers' `encode`).
pub const DEFAULT_BATCH_SIZE: usize = 32;

#[derive(serde::Deserialize)]
struct SentenceBertConfig {
    max_seq_length: Option<usize>,
}

impl Embedder {
    /// Loads `config.json`, `model.safetensors` and `tokenizer.json` from `dir` onto `device`.
    ///
    /// The token limit is `max_seq_length` from `sentence_bert_config.json` when that file exists
    /// (256 for all-MiniLM-L6-v2, what sentence-transformers uses), else the model's
    /// `max_position_embeddings`. The tokenizer's own fixed padding is replaced by per-pass padding.
    pub fn load(dir: &Path, device: &Device) -> Result<Self, EmbedError> {
        Self::load_with(dir, device, LoadOptions::default())
    }

    /// [`Embedder::load`] with another dtype or forward pass ([`Engine::Packed`] needs the CPU
    /// and F32).
    pub fn load_with(dir: &Path, device: &Device, options: LoadOptions) -> Result<Self, EmbedError> {
        let LoadOptions { dtype, engine } = options;
        let config: Config = load::read_json(&dir.join("config.json"))?;
        let st_config: Option<SentenceBertConfig> =
            load::read_json_if_present(&dir.join("sentence_bert_config.json"))?;
        let st_limit = st_config.and_then(|c| c.max_seq_length);
        let max_tokens =
            st_limit.unwrap_or(config.max_position_embeddings).min(config.max_position_embeddings);

        let mut tokenizer = load::load_tokenizer(&dir.join("tokenizer.json"))?;
        let pad_id = config.pad_token_id as u32;
        // Padding is done per forward pass, after sorting by length (see `embed`).
        tokenizer.with_padding(None);
        tokenizer
            .with_truncation(Some(TruncationParams {
                max_length: max_tokens,
                strategy: TruncationStrategy::LongestFirst,
                stride: 0,
                ..Default::default()
            }))
            .map_err(|e| EmbedError::Tokenizer(e.to_string()))?;

        // SAFETY: the file is memory-mapped read-only and not modified while the model lives.
        #[allow(unsafe_code, reason = "memory-mapped weights load without a copy")]
        let vb = unsafe { load::mmap_weights(&[dir.join("model.safetensors")], dtype, device)? };
        let packed_fits = device.is_cpu() && dtype == DType::F32 && PackedBert::supports(&config);
        let model = match engine {
            Some(Engine::Packed) if !packed_fits => {
                return Err(EmbedError::BadInput(format!(
                    "the packed encoder runs F32 on the CPU only (asked: {dtype:?} on {device:?})"
                )))
            }
            Some(Engine::Packed) | None if packed_fits => Encoder::Packed(PackedBert::load(vb, &config)?),
            _ => Encoder::Candle(BertModel::load(vb, &config)?),
        };
        Ok(Self {
            model,
            tokenizer,
            device: device.clone(),
            max_tokens,
            dimensions: config.hidden_size,
            pad_id,
            batch_size: DEFAULT_BATCH_SIZE,
        })
    }

    /// The most tokens (special tokens included) one input may have before it is truncated.
    pub fn max_tokens(&self) -> usize {
        self.max_tokens
    }

    /// Length of every output vector.
    pub fn dimensions(&self) -> usize {
        self.dimensions
    }

    /// The device the model runs on.
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// The forward pass in use.
    pub fn engine(&self) -> Engine {
        match self.model {
            Encoder::Packed(_) => Engine::Packed,
            Encoder::Candle(_) => Engine::Candle,
        }
    }

    /// The most texts one forward pass takes (default [`DEFAULT_BATCH_SIZE`]).
    pub fn batch_size(&self) -> usize {
        self.batch_size
    }

    /// Sets the most texts one forward pass takes (at least 1). Larger passes use the matrix
    /// kernels better, smaller ones pad less and hold less memory.
    #[must_use]
    pub fn with_batch_size(mut self, batch_size: usize) -> Self {
        self.batch_size = batch_size.max(1);
        self
    }

    /// Embeds `texts`; the result is in input order. The texts are sorted by token count and run
    /// in forward passes of at most [`Embedder::batch_size`] texts of similar length, each padded
    /// only to its own longest text; padding is masked in attention and in mean pooling. Each
    /// vector is L2-normalised when `normalize`.
    pub fn embed<S: AsRef<str>>(&self, texts: &[S], normalize: bool) -> Result<Embeddings, EmbedError> {
        if texts.is_empty() {
            return Err(EmbedError::BadInput("no input text given".into()));
        }
        let inputs: Vec<&str> = texts.iter().map(AsRef::as_ref).collect();
        let encodings =
            self.tokenizer.encode_batch(inputs, true).map_err(|e| EmbedError::Tokenizer(e.to_string()))?;
        let n = encodings.len();
        // Longest first (a stable sort: equal lengths keep their order), as sentence-transformers does.
        let mut order: Vec<usize> = (0..n).collect();
        order.sort_by_key(|&i| std::cmp::Reverse(encodings[i].len()));

        let mut vectors = vec![Vec::new(); n];
        for pass in order.chunks(self.batch_size) {
            let batch: Vec<&Encoding> = pass.iter().map(|&i| &encodings[i]).collect();
            for (&i, vector) in pass.iter().zip(self.forward(&batch, normalize)?) {
                vectors[i] = vector;
            }
        }
        Ok(Embeddings {
            vectors,
            tokens: encodings.iter().map(Encoding::len).collect(),
            truncated: encodings.iter().map(|e| !e.get_overflowing().is_empty()).collect(),
        })
    }

    /// One forward pass over `batch`: the pooled (and maybe normalised) vectors, in order.
    fn forward(&self, batch: &[&Encoding], normalize: bool) -> Result<Vec<Vec<f32>>, EmbedError> {
        let model = match &self.model {
            Encoder::Candle(model) => return self.forward_padded(model, batch, normalize),
            Encoder::Packed(model) => model,
        };
        let seqs: Vec<Sequence> =
            batch.iter().map(|e| Sequence { ids: e.get_ids(), types: e.get_type_ids() }).collect();
        let mut vectors = model.mean_pooled(&seqs)?;
        if normalize {
            for v in &mut vectors {
                let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-12);
                v.iter_mut().for_each(|x| *x /= norm);
            }
        }
        Ok(vectors)
    }

    /// candle's forward pass over `batch` padded to its longest entry, padding masked.
    fn forward_padded(
        &self,
        model: &BertModel,
        batch: &[&Encoding],
        normalize: bool,
    ) -> Result<Vec<Vec<f32>>, EmbedError> {
        let size = batch.len();
        let seq_len = batch.iter().map(|e| e.len()).max().unwrap_or(0);
        let mut ids = vec![self.pad_id; size * seq_len];
        let mut types = vec![0u32; size * seq_len];
        let mut mask = vec![0u32; size * seq_len];
        for (row, enc) in batch.iter().enumerate() {
            let at = row * seq_len;
            ids[at..at + enc.len()].copy_from_slice(enc.get_ids());
            types[at..at + enc.len()].copy_from_slice(enc.get_type_ids());
            mask[at..at + enc.len()].fill(1);
        }
        let ids = Tensor::from_vec(ids, (size, seq_len), &self.device)?;
        let types = Tensor::from_vec(types, (size, seq_len), &self.device)?;
        let mask = Tensor::from_vec(mask, (size, seq_len), &self.device)?;

        let hidden = model.forward(&ids, &types, Some(&mask))?.to_dtype(DType::F32)?; // (batch, seq, hidden)
        let mask = mask.to_dtype(DType::F32)?.unsqueeze(2)?; // (batch, seq, 1)
        let summed = hidden.broadcast_mul(&mask)?.sum(1)?; // (batch, hidden)
        let counts = mask.sum(1)?; // (batch, 1); at least 2: [CLS] and [SEP]
        let mut pooled = summed.broadcast_div(&counts)?;
        if normalize {
            let norms = pooled.sqr()?.sum_keepdim(1)?.sqrt()?.clamp(1e-12f32, f32::MAX)?;
            pooled = pooled.broadcast_div(&norms)?;
        }
        Ok(pooled.to_vec2::<f32>()?)
    }
}

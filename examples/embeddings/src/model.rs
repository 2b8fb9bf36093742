//! The sentence-embedding model: a BERT-family encoder, attention-masked mean pooling and
//! optional L2 normalisation, with per-batch padding and truncation to the model's limit.

use std::path::Path;

use candle_core::{DType, Device, Tensor};
use candle_transformers::models::bert::{BertModel, Config};
use example_support::load::{self, LoadError};
use tokenizers::{PaddingParams, PaddingStrategy, Tokenizer, TruncationParams, TruncationStrategy};

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
    /// The tensor library failed (bad weights, out of memory, ...).
    #[error("model: {0}")]
    Model(#[from] candle_core::Error),
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

/// A loaded sentence-embedding model; load once, then call [`Embedder::embed`] per batch.
pub struct Embedder {
    model: BertModel,
    tokenizer: Tokenizer,
    device: Device,
    max_tokens: usize,
    dimensions: usize,
}

#[derive(serde::Deserialize)]
struct SentenceBertConfig {
    max_seq_length: Option<usize>,
}

impl Embedder {
    /// Loads `config.json`, `model.safetensors` and `tokenizer.json` from `dir` onto `device`.
    ///
    /// The token limit is `max_seq_length` from `sentence_bert_config.json` when that file exists
    /// (256 for all-MiniLM-L6-v2, what sentence-transformers uses), else the model's
    /// `max_position_embeddings`. The tokenizer's own fixed padding is replaced by per-batch padding.
    pub fn load(dir: &Path, device: &Device) -> Result<Self, EmbedError> {
        let config: Config = load::read_json(&dir.join("config.json"))?;
        let st_config: Option<SentenceBertConfig> =
            load::read_json_if_present(&dir.join("sentence_bert_config.json"))?;
        let st_limit = st_config.and_then(|c| c.max_seq_length);
        let max_tokens =
            st_limit.unwrap_or(config.max_position_embeddings).min(config.max_position_embeddings);

        let mut tokenizer = load::load_tokenizer(&dir.join("tokenizer.json"))?;
        let pad_id = config.pad_token_id as u32;
        let pad_token = tokenizer.id_to_token(pad_id).unwrap_or_else(|| "[PAD]".to_owned());
        tokenizer.with_padding(Some(PaddingParams {
            strategy: PaddingStrategy::BatchLongest,
            pad_id,
            pad_token,
            ..Default::default()
        }));
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
        let vb = unsafe { load::mmap_weights(&[dir.join("model.safetensors")], DType::F32, device)? };
        let model = BertModel::load(vb, &config)?;
        Ok(Self { model, tokenizer, device: device.clone(), max_tokens, dimensions: config.hidden_size })
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

    /// Embeds `texts` in one forward pass: pads them to the longest in the batch, masks the
    /// padding in attention and in mean pooling, and L2-normalises each vector when `normalize`.
    pub fn embed<S: AsRef<str>>(&self, texts: &[S], normalize: bool) -> Result<Embeddings, EmbedError> {
        if texts.is_empty() {
            return Err(EmbedError::BadInput("no input text given".into()));
        }
        let inputs: Vec<&str> = texts.iter().map(AsRef::as_ref).collect();
        let encodings =
            self.tokenizer.encode_batch(inputs, true).map_err(|e| EmbedError::Tokenizer(e.to_string()))?;
        let seq_len = encodings[0].len();
        let batch = encodings.len();
        let mut ids = Vec::with_capacity(batch * seq_len);
        let mut types = Vec::with_capacity(batch * seq_len);
        let mut mask = Vec::with_capacity(batch * seq_len);
        let mut tokens = Vec::with_capacity(batch);
        let mut truncated = Vec::with_capacity(batch);
        for enc in &encodings {
            ids.extend_from_slice(enc.get_ids());
            types.extend_from_slice(enc.get_type_ids());
            mask.extend_from_slice(enc.get_attention_mask());
            tokens.push(enc.get_attention_mask().iter().filter(|&&m| m == 1).count());
            truncated.push(!enc.get_overflowing().is_empty());
        }
        let ids = Tensor::from_vec(ids, (batch, seq_len), &self.device)?;
        let types = Tensor::from_vec(types, (batch, seq_len), &self.device)?;
        let mask = Tensor::from_vec(mask, (batch, seq_len), &self.device)?;

        let hidden = self.model.forward(&ids, &types, Some(&mask))?; // (batch, seq, hidden)
        let mask = mask.to_dtype(DType::F32)?.unsqueeze(2)?; // (batch, seq, 1)
        let summed = hidden.broadcast_mul(&mask)?.sum(1)?; // (batch, hidden)
        let counts = mask.sum(1)?; // (batch, 1); at least 2: [CLS] and [SEP]
        let mut pooled = summed.broadcast_div(&counts)?;
        if normalize {
            let norms = pooled.sqr()?.sum_keepdim(1)?.sqrt()?.clamp(1e-12f32, f32::MAX)?;
            pooled = pooled.broadcast_div(&norms)?;
        }
        let vectors = pooled.to_dtype(DType::F32)?.to_vec2::<f32>()?;
        Ok(Embeddings { vectors, tokens, truncated })
    }
}

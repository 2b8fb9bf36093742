//! The worker's job handler: JSON input in, vectors out, the model run off the async threads.

use std::sync::Arc;

use runpod_worker::{Failure, Job, JobContext};
use serde::{Deserialize, Serialize};

use crate::model::{EmbedError, Embedder};

/// One job's input: `{"input": "text" | ["text", ...], "normalize": true}`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmbedInput {
    /// One text or a batch of texts.
    pub input: Texts,
    /// L2-normalise each vector (default true: cosine similarity is then a dot product).
    #[serde(default = "default_normalize")]
    pub normalize: bool,
}

fn default_normalize() -> bool {
    true
}

/// One text or a batch.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged, expecting = "a string or an array of strings")]
pub enum Texts {
    /// A single text.
    One(String),
    /// A batch: sorted by length and embedded in forward passes of similar lengths (see
    /// [`crate::Embedder::embed`]); the output keeps the input order.
    Batch(Vec<String>),
}

impl Texts {
    fn into_vec(self) -> Vec<String> {
        match self {
            Texts::One(t) => vec![t],
            Texts::Batch(b) => b,
        }
    }
}

/// One job's output.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct EmbedOutput {
    /// The model's name (its folder name or hub id).
    pub model: String,
    /// Length of every vector.
    pub dimensions: usize,
    /// One vector per input text, in input order.
    pub embeddings: Vec<Vec<f32>>,
    /// Tokens the model saw per input (special tokens included, after truncation).
    pub tokens: Vec<usize>,
    /// Sum of `tokens`.
    pub total_tokens: usize,
    /// Indices of the inputs that were cut to `max_tokens`.
    pub truncated: Vec<usize>,
    /// The model's token limit per input.
    pub max_tokens: usize,
    /// Human-readable notes, e.g. which inputs were truncated.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

/// The embeddings worker: one loaded model shared by every job.
#[derive(Clone, Debug)]
pub struct EmbedHandler {
    embedder: Arc<Embedder>,
    model: String,
    max_batch: usize,
}

impl EmbedHandler {
    /// A handler over a loaded model; `model` names it in outputs, `max_batch` caps the texts
    /// per job (a job's texts and vectors are all in memory at once).
    pub fn new(embedder: Embedder, model: impl Into<String>, max_batch: usize) -> Self {
        Self { embedder: Arc::new(embedder), model: model.into(), max_batch: max_batch.max(1) }
    }

    /// The loaded model.
    pub fn embedder(&self) -> &Embedder {
        &self.embedder
    }

    /// Embeds a job's texts on a blocking thread and shapes the output.
    pub async fn run(&self, input: EmbedInput, ctx: &JobContext) -> Result<EmbedOutput, EmbedError> {
        let texts = input.input.into_vec();
        if texts.len() > self.max_batch {
            return Err(EmbedError::BadInput(format!(
                "{} texts in one job; this worker takes at most {} (MAX_BATCH)",
                texts.len(),
                self.max_batch
            )));
        }
        if ctx.is_cancelled() {
            return Err(EmbedError::Cancelled);
        }
        let embedder = self.embedder.clone();
        let normalize = input.normalize;
        let span = ctx.span().clone();
        let out = tokio::task::spawn_blocking(move || {
            let _g = span.enter();
            embedder.embed(&texts, normalize)
        })
        .await
        .map_err(|e| EmbedError::Internal(format!("the model thread failed: {e}")))??;
        let max_tokens = self.embedder.max_tokens();
        let truncated: Vec<usize> =
            out.truncated.iter().enumerate().filter(|(_, t)| **t).map(|(i, _)| i).collect();
        let warnings = truncated
            .iter()
            .map(|i| format!("input {i} was longer than {max_tokens} tokens and was truncated"))
            .collect();
        Ok(EmbedOutput {
            model: self.model.clone(),
            dimensions: self.embedder.dimensions(),
            total_tokens: out.tokens.iter().sum(),
            embeddings: out.vectors,
            tokens: out.tokens,
            truncated,
            max_tokens,
            warnings,
        })
    }
}

/// Each kind of failure is the job's `error_type`: `BadInput`, `Cancelled`, `ModelLoad`,
/// `Tokenizer`, `Model` or `Internal`.
impl From<EmbedError> for Failure {
    fn from(e: EmbedError) -> Failure {
        let error_type = match e {
            EmbedError::Load(_) => "ModelLoad",
            EmbedError::Tokenizer(_) => "Tokenizer",
            EmbedError::Model(_) => "Model",
            EmbedError::BadInput(_) => "BadInput",
            EmbedError::Cancelled => "Cancelled",
            EmbedError::Internal(_) => "Internal",
        };
        Failure::from_error(error_type, &e)
    }
}

#[runpod_worker::async_trait]
impl runpod_worker::Handler for EmbedHandler {
    type Input = EmbedInput;
    type Output = EmbedOutput;
    type Error = EmbedError;

    async fn handle(&self, job: Job<EmbedInput>, ctx: JobContext) -> Result<EmbedOutput, EmbedError> {
        self.run(job.input, &ctx).await
    }
}

//! The worker's job handler: generation on a blocking thread, text pieces streamed through the
//! runtime as they are produced, progress reported, cancellation checked between tokens.

use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use runpod_worker::{Failure, Job, JobContext};
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use crate::model::{FinishReason, GenerateError, Generator, Observer, Params};

/// One job's input.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GenerateInput {
    /// The text to continue.
    pub prompt: String,
    /// Most new tokens (default 128).
    #[serde(default = "default_max_tokens")]
    pub max_tokens: usize,
    /// Sampling temperature; 0 is greedy (default 0.7).
    #[serde(default = "default_temperature")]
    pub temperature: f64,
    /// Nucleus sampling threshold in (0, 1] (default: off).
    #[serde(default)]
    pub top_p: Option<f64>,
    /// Sampler seed (default: random; the output says which seed was used).
    #[serde(default)]
    pub seed: Option<u64>,
    /// Stop before the first of these strings (at most 8).
    #[serde(default)]
    pub stop: Vec<String>,
    /// Stream text pieces as they are generated (default true).
    #[serde(default = "yes")]
    pub stream: bool,
}

fn default_max_tokens() -> usize {
    128
}
fn default_temperature() -> f64 {
    0.7
}
fn yes() -> bool {
    true
}

/// One streamed chunk: the next piece of generated text.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct TextChunk {
    /// The new text; all chunks of a job concatenate to its final `text`.
    pub text: String,
}

/// Progress while generating.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct GenerateProgress {
    /// New tokens so far.
    pub generated_tokens: usize,
    /// The job's `max_tokens`.
    pub max_tokens: usize,
}

/// One job's output.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct GenerateOutput {
    /// The generated text (no prompt, no stop string).
    pub text: String,
    /// Why generation ended: `eos`, `stop`, `length` or `cancelled`.
    pub finish_reason: FinishReason,
    /// Tokens in the prompt.
    pub prompt_tokens: usize,
    /// New tokens generated.
    pub generated_tokens: usize,
    /// The sampler seed used (pass it back to reproduce the text).
    pub seed: u64,
    /// Generation speed, new tokens per second of wall time (prompt processing included).
    pub tokens_per_second: f64,
}

/// Counters over the worker's life, for logs and tests.
#[derive(Debug, Default)]
pub struct Stats {
    /// Jobs that finished (any finish reason).
    pub jobs: AtomicU64,
    /// Jobs that ended because they were cancelled.
    pub cancelled: AtomicU64,
    /// New tokens generated over all jobs.
    pub tokens: AtomicU64,
}

/// The text-generation worker: one loaded model shared by every job.
#[derive(Clone)]
pub struct GenerateHandler {
    generator: Arc<Generator>,
    stats: Arc<Stats>,
}

struct JobObserver {
    ctx: JobContext,
    pieces: Option<mpsc::Sender<String>>,
    max_tokens: usize,
    every: usize,
    consumer_gone: bool,
}

impl Observer for JobObserver {
    fn cancelled(&mut self) -> bool {
        self.consumer_gone || self.ctx.is_cancelled()
    }
    fn text(&mut self, piece: &str) {
        if let Some(tx) = &self.pieces {
            // Blocks when the stream is behind: the endpoint's pace sets the generator's.
            if tx.blocking_send(piece.to_owned()).is_err() {
                self.consumer_gone = true;
            }
        }
    }
    fn token(&mut self, generated: usize) {
        if generated.is_multiple_of(self.every) || generated == self.max_tokens {
            self.ctx.progress(GenerateProgress { generated_tokens: generated, max_tokens: self.max_tokens });
        }
    }
}

fn random_seed() -> u64 {
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_nanos(),
    );
    h.finish()
}

impl GenerateHandler {
    /// A handler over a loaded model.
    pub fn new(generator: Generator) -> Self {
        Self { generator: Arc::new(generator), stats: Arc::default() }
    }

    /// The loaded model.
    pub fn generator(&self) -> &Generator {
        &self.generator
    }

    /// Counters shared by every clone of this handler.
    pub fn stats(&self) -> Arc<Stats> {
        self.stats.clone()
    }

    /// Runs one generation job: pieces go to `ctx.stream` in order, progress to `ctx.progress`.
    pub async fn run(&self, input: GenerateInput, ctx: &JobContext) -> Result<GenerateOutput, GenerateError> {
        if input.stop.len() > 8 {
            return Err(GenerateError::BadInput(format!("at most 8 stop strings, got {}", input.stop.len())));
        }
        let seed = input.seed.unwrap_or_else(random_seed);
        let params = Params {
            max_tokens: input.max_tokens,
            temperature: input.temperature,
            top_p: input.top_p,
            seed,
            stop: input.stop,
        };
        params.validate()?;
        let (tx, mut rx) = mpsc::channel::<String>(64);
        let mut observer = JobObserver {
            ctx: ctx.clone(),
            pieces: input.stream.then_some(tx),
            max_tokens: params.max_tokens,
            every: (params.max_tokens / 10).max(1),
            consumer_gone: false,
        };
        let generator = self.generator.clone();
        let span = ctx.span().clone();
        let prompt = input.prompt;
        let started = Instant::now();
        let stats = self.stats.clone();
        // The runtime may drop this future when the job is cancelled; the blocking thread then
        // sees the closed channel (or the cancelled context) before its next token and ends.
        let work = tokio::task::spawn_blocking(move || {
            let _g = span.enter();
            let out = generator.generate(&prompt, &params, &mut observer);
            if let Ok(out) = &out {
                stats.jobs.fetch_add(1, Ordering::SeqCst);
                stats.tokens.fetch_add(out.generated_tokens as u64, Ordering::SeqCst);
                if out.finish_reason == FinishReason::Cancelled {
                    stats.cancelled.fetch_add(1, Ordering::SeqCst);
                }
            }
            out
        });
        // Forward pieces as they come; the channel closes when the generator returns.
        while let Some(piece) = rx.recv().await {
            if let Err(e) = ctx.stream(TextChunk { text: piece }).await {
                tracing::debug!(parent: ctx.span(), "stream closed ({e}); stopping generation");
                break;
            }
        }
        drop(rx);
        let out =
            work.await.map_err(|e| GenerateError::Internal(format!("the model thread failed: {e}")))??;
        let secs = started.elapsed().as_secs_f64();
        Ok(GenerateOutput {
            text: out.text,
            finish_reason: out.finish_reason,
            prompt_tokens: out.prompt_tokens,
            generated_tokens: out.generated_tokens,
            seed,
            tokens_per_second: if secs > 0.0 { out.generated_tokens as f64 / secs } else { 0.0 },
        })
    }
}

/// Each kind of failure is the job's `error_type`: `BadInput`, `ModelLoad`, `Weights`,
/// `Tokenizer`, `Model` or `Internal`.
impl From<GenerateError> for Failure {
    fn from(e: GenerateError) -> Failure {
        let error_type = match e {
            GenerateError::Load(_) => "ModelLoad",
            GenerateError::Weights(_) => "Weights",
            GenerateError::Tokenizer(_) => "Tokenizer",
            GenerateError::Model(_) => "Model",
            GenerateError::BadInput(_) => "BadInput",
            GenerateError::Internal(_) => "Internal",
        };
        Failure::from_error(error_type, &e)
    }
}

#[runpod_worker::async_trait]
impl runpod_worker::Handler for GenerateHandler {
    type Input = GenerateInput;
    type Output = GenerateOutput;
    type Error = GenerateError;

    async fn handle(
        &self,
        job: Job<GenerateInput>,
        ctx: JobContext,
    ) -> Result<GenerateOutput, GenerateError> {
        self.run(job.input, &ctx).await
    }
}

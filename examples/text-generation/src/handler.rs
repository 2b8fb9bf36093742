//! The worker's job handler: generation on a blocking thread, text pieces streamed through the
//! runtime as they are produced, progress reported, cancellation checked between tokens; the
//! native input and the OpenAI route in one handler.

use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use runpod_worker::openai::{self, Reply, Request, Responder, ResponseFormat, Usage};
use runpod_worker::{Failure, Job, JobContext};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::sync::mpsc;

use crate::chat::TemplateMessage;
use crate::json_grammar;
use crate::model::{FinishReason, GenerateError, Generation, Observer, Params};
use crate::prompt::{ChatPrompt, Prompt};
use crate::text_model::TextModel;

/// One job's input.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GenerateInput {
    /// The text to continue.
    pub prompt: String,
    /// Most new tokens (default 128).
    #[serde(default = "default_max_tokens")]
    pub max_tokens: usize,
    /// Sampling temperature in [0, 2]; 0 is greedy (default 0.7).
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

/// The text-generation worker: one loaded model shared by every job. It serves the native
/// input ([`GenerateInput`]) and the OpenAI route (chat completions, completions, models).
#[derive(Clone, Debug)]
pub struct GenerateHandler {
    model: Arc<TextModel>,
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

/// New tokens of an OpenAI call that sets no `max_tokens` (chat; completions default to 16).
pub const DEFAULT_OPENAI_MAX_TOKENS: usize = 512;

/// What a job asks the model to continue, owned by its thread.
enum JobPrompt {
    /// The native input's `prompt`, or a completion's.
    Raw(String),
    /// A chat completion's messages, rendered.
    Chat(ChatPrompt),
}

impl JobPrompt {
    fn as_prompt(&self) -> Prompt<'_> {
        match self {
            JobPrompt::Raw(s) => Prompt::Raw(s),
            JobPrompt::Chat(c) => Prompt::Chat(c),
        }
    }
}

/// A generation running on a blocking thread: its text pieces (when streamed) and its end.
struct Running {
    pieces: mpsc::Receiver<String>,
    work: tokio::task::JoinHandle<Result<Generation, GenerateError>>,
}

impl Running {
    async fn finish(self) -> Result<Generation, GenerateError> {
        drop(self.pieces);
        self.work.await.map_err(|e| GenerateError::Internal(format!("the model thread failed: {e}")))?
    }
}

impl GenerateHandler {
    /// A handler over a loaded model (a [`Generator`](crate::Generator) or any [`TextModel`]).
    pub fn new(model: impl Into<TextModel>) -> Self {
        Self { model: Arc::new(model.into()), stats: Arc::default() }
    }

    /// The loaded model.
    pub fn model(&self) -> &TextModel {
        &self.model
    }

    /// Counters shared by every clone of this handler.
    pub fn stats(&self) -> Arc<Stats> {
        self.stats.clone()
    }

    /// Starts generating on a blocking thread; pieces of text arrive on the channel when
    /// `stream` is set. The runtime may drop the caller when the job is cancelled; the thread
    /// then sees the closed channel (or the cancelled context) before its next token and ends.
    fn start(
        &self,
        prompt: JobPrompt,
        params: Params,
        grammar: Option<String>,
        stream: bool,
        ctx: &JobContext,
    ) -> Running {
        let (tx, pieces) = mpsc::channel::<String>(64);
        let mut observer = JobObserver {
            ctx: ctx.clone(),
            pieces: stream.then_some(tx),
            max_tokens: params.max_tokens,
            every: (params.max_tokens / 10).max(1),
            consumer_gone: false,
        };
        let model = self.model.clone();
        let span = ctx.span().clone();
        let stats = self.stats.clone();
        let work = tokio::task::spawn_blocking(move || {
            let _g = span.enter();
            let out = model.generate_with(prompt.as_prompt(), &params, grammar.as_deref(), &mut observer);
            if let Ok(out) = &out {
                stats.jobs.fetch_add(1, Ordering::SeqCst);
                stats.tokens.fetch_add(out.generated_tokens as u64, Ordering::SeqCst);
                if out.finish_reason == FinishReason::Cancelled {
                    stats.cancelled.fetch_add(1, Ordering::SeqCst);
                }
            }
            out
        });
        Running { pieces, work }
    }

    /// Runs one native generation job: pieces go to `ctx.stream` in order, progress to
    /// `ctx.progress`.
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
        self.check_max_tokens(params.max_tokens).map_err(GenerateError::BadInput)?;
        let started = Instant::now();
        let mut running = self.start(JobPrompt::Raw(input.prompt), params, None, input.stream, ctx);
        // Forward pieces as they come; the channel closes when the generator returns.
        while let Some(piece) = running.pieces.recv().await {
            if let Err(e) = ctx.stream(TextChunk { text: piece }).await {
                tracing::debug!(parent: ctx.span(), "stream closed ({e}); stopping generation");
                break;
            }
        }
        let out = running.finish().await?;
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

    /// `max_tokens` leaves room for a prompt in the model's context; checked before any work,
    /// so that a huge value (up to `u64::MAX`) is refused at once.
    fn check_max_tokens(&self, max_tokens: usize) -> Result<(), String> {
        let context = self.model.context_length();
        if max_tokens < context {
            return Ok(());
        }
        Err(format!(
            "max_tokens must be less than the model's context of {context} tokens (prompt included), got {max_tokens}"
        ))
    }

    /// Serves one OpenAI call: the model list, or a chat completion (the model's chat template
    /// applied) or completion, streamed as SSE chunks when the client asked for a stream.
    pub async fn openai(
        &self,
        request: Request,
        job_id: &str,
        ctx: &JobContext,
    ) -> Result<Value, openai::Error> {
        request.check_model(&[self.model.name()])?;
        let (prompt, sampling, max_tokens_name, grammar) = match &request {
            Request::Models => return Ok(openai::model_list(&[self.model.name()])),
            Request::Chat(r) => {
                let grammar = self.grammar(&r.response_format()?)?;
                let messages = r
                    .messages
                    .iter()
                    .map(|m| Ok(TemplateMessage::new(m.role.as_template_role(), m.text()?)))
                    .collect::<Result<Vec<_>, openai::Error>>()?;
                let prompt = self.model.chat_prompt(&messages, true).ok_or_else(|| {
                    openai::Error::invalid("messages", "this model has no chat template: use /v1/completions")
                })?;
                let name =
                    if r.max_completion_tokens.is_some() { "max_completion_tokens" } else { "max_tokens" };
                (JobPrompt::Chat(prompt.map_err(openai_error)?), r.sampling(), name, grammar)
            }
            Request::Completion(r) => {
                (JobPrompt::Raw(r.prompt_text()?.to_owned()), r.sampling(), "max_tokens", None)
            }
        };
        if let Some(n) = sampling.max_tokens {
            let n = usize::try_from(n).unwrap_or(usize::MAX);
            self.check_max_tokens(n).map_err(|m| {
                openai::Error::invalid(max_tokens_name, m.replacen("max_tokens", max_tokens_name, 1))
            })?;
        }
        let params = Params {
            max_tokens: sampling
                .max_tokens
                .map_or(DEFAULT_OPENAI_MAX_TOKENS, |n| usize::try_from(n).unwrap_or(usize::MAX)),
            temperature: sampling.temperature.unwrap_or(1.0),
            top_p: sampling.top_p,
            seed: sampling.seed.unwrap_or_else(random_seed),
            stop: sampling.stop,
        };
        params.validate().map_err(openai_error)?;
        let mut reply = Responder::new(&request, self.model.name(), job_id);
        let mut running = self.start(prompt, params, grammar, reply.is_streaming(), ctx);
        while let Some(piece) = running.pieces.recv().await {
            if let Some(event) = reply.piece(&piece) {
                if let Err(e) = ctx.stream(event).await {
                    tracing::debug!(parent: ctx.span(), "stream closed ({e}); stopping generation");
                    break;
                }
            }
        }
        let out = running.finish().await.map_err(openai_error)?;
        if !reply.is_streaming() {
            reply.piece(&out.text);
        }
        let finish = match out.finish_reason {
            FinishReason::Length => openai::FinishReason::Length,
            FinishReason::Eos | FinishReason::Stop | FinishReason::Cancelled => openai::FinishReason::Stop,
        };
        let usage = Usage::new(out.prompt_tokens as u64, out.generated_tokens as u64);
        match reply.finish(finish, usage) {
            Reply::Response(body) => Ok(body),
            Reply::Stream(tail) => {
                // The client may be gone; the job is then cancelled and the result unused.
                let _ = ctx.stream(tail).await;
                Ok(Value::Null)
            }
        }
    }
}

impl GenerateHandler {
    /// The grammar a chat's `response_format` holds the answer to (`None` for text): a `400`
    /// naming `response_format` for a schema the grammar cannot honour, or a model that cannot
    /// be held to one (a model folder).
    fn grammar(&self, format: &ResponseFormat) -> Result<Option<String>, openai::Error> {
        let grammar = match format {
            ResponseFormat::Text => return Ok(None),
            ResponseFormat::JsonObject => json_grammar::json_object_grammar(),
            ResponseFormat::JsonSchema { schema, .. } => json_grammar::schema_grammar(schema)
                .map_err(|e| openai::Error::invalid("response_format", format!("json_schema: {e}")))?,
        };
        if !self.model.supports_grammar() {
            return Err(openai::Error::invalid(
                "response_format",
                "this model cannot hold its output to JSON (only GGUF models can): leave response_format out",
            ));
        }
        Ok(Some(grammar))
    }
}

/// A generation error as an OpenAI error: bad input is the client's (`400`), the rest the
/// worker's (`500`).
fn openai_error(e: GenerateError) -> openai::Error {
    match e {
        GenerateError::BadInput(m) => openai::Error::invalid_request(m),
        other => openai::Error::server(other.to_string()),
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
            GenerateError::Model(_) | GenerateError::Engine(_) => "Model",
            GenerateError::BadInput(_) => "BadInput",
            GenerateError::Internal(_) => "Internal",
        };
        Failure::from_error(error_type, &e)
    }
}

#[runpod_worker::async_trait]
impl runpod_worker::Handler for GenerateHandler {
    type Input = openai::Input<GenerateInput>;
    type Output = Value;
    type Error = GenerateError;

    async fn handle(&self, job: Job<Self::Input>, ctx: JobContext) -> Result<Value, GenerateError> {
        match job.input {
            openai::Input::Native(input) => {
                let out = self.run(input, &ctx).await?;
                serde_json::to_value(out).map_err(|e| GenerateError::Internal(e.to_string()))
            }
            // An OpenAI error is returned as `{"error": {...}}`: the job fails with it and the
            // route answers with its status.
            openai::Input::OpenAi(call) => Ok(match call {
                Ok(request) => {
                    self.openai(request, &job.id, &ctx).await.unwrap_or_else(openai::Error::into_output)
                }
                Err(e) => e.into_output(),
            }),
        }
    }
}

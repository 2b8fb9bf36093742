//! The OpenAI-compatible route: request types, response and stream-chunk builders, errors.
//!
//! A client of `https://api.runpod.ai/v2/{endpoint}/openai/v1/...` (or runpod-local's
//! `/v2/{endpoint}/openai/v1/...`) reaches the worker as an ordinary job whose input is
//! `{"openai_route": "/v1/chat/completions", "openai_input": <the request body>}` (see
//! `docs/openai.md`). [`Input`] decodes either that envelope or the handler's own input, so
//! one [`Handler`](crate::Handler) serves both. A streamed answer is a series of stream chunks
//! that are Server-Sent Events as text (`data: {...}\n\n`, ending with `data: [DONE]\n\n`),
//! which the platform relays to the client as they come; [`Responder`] builds them, or the
//! one response object when the client did not ask for a stream.
//!
//! ```
//! use runpod_worker::openai::{FinishReason, Input, Reply, Request, Responder, Usage};
//! use serde_json::json;
//!
//! #[derive(serde::Deserialize)]
//! struct Native { prompt: String }
//!
//! let job = json!({"openai_route": "/v1/chat/completions", "openai_input": {
//!     "model": "echo", "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 8}});
//! let input: Input<Native> = serde_json::from_value(job).unwrap();
//! let Input::OpenAi(Ok(Request::Chat(chat))) = input else { panic!("a chat request") };
//! assert_eq!(chat.messages[0].text().unwrap(), "Hi");
//!
//! let mut reply = Responder::new(&Request::Chat(chat), "echo", "job-1");
//! assert_eq!(reply.piece("Hello"), None); // not streamed: the text is kept for the response
//! let usage = Usage::new(3, 1);
//! let Reply::Response(body) = reply.finish(FinishReason::Stop, usage) else { panic!() };
//! assert_eq!(body["choices"][0]["message"]["content"], "Hello");
//! assert_eq!(body["usage"]["total_tokens"], 4);
//!
//! // A request the worker cannot serve is an OpenAI error (status 400 in `code`).
//! let bad = json!({"openai_route": "/v1/chat/completions", "openai_input": {"messages": [], "n": 2}});
//! let Input::OpenAi(Err(e)) = serde_json::from_value::<Input<Native>>(bad).unwrap() else { panic!() };
//! assert_eq!(e.status(), 400);
//! ```

use serde::de::{DeserializeOwned, Deserializer};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use std::time::{SystemTime, UNIX_EPOCH};

/// `openai_route` of `POST /openai/v1/chat/completions`.
pub const CHAT_COMPLETIONS_ROUTE: &str = "/v1/chat/completions";
/// `openai_route` of `POST /openai/v1/completions`.
pub const COMPLETIONS_ROUTE: &str = "/v1/completions";
/// `openai_route` of `GET /openai/v1/models`.
pub const MODELS_ROUTE: &str = "/v1/models";
/// The event that ends every stream.
pub const SSE_DONE: &str = "data: [DONE]\n\n";

/// Most stop sequences a request may give (OpenAI's limit).
pub const MAX_STOP: usize = 4;

// ---------------------------------------------------------------------------------------------
// Input

/// A job's input: an OpenAI call (the `openai_route` / `openai_input` envelope), or the
/// handler's own input `T`.
///
/// Decoding never fails on a bad OpenAI request: it becomes `OpenAi(Err(_))`, a `400` for the
/// client, so the handler answers it in OpenAI's error shape. Anything without the envelope's
/// keys decodes as `T` (a mismatch fails the job as usual, naming the field).
#[derive(Debug, Clone)]
pub enum Input<T> {
    /// A call on the OpenAI route: the request, or why it cannot be served.
    OpenAi(Result<Request, Error>),
    /// The handler's own input.
    Native(T),
}

impl<'de, T: DeserializeOwned> Deserialize<'de> for Input<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(deserializer)?;
        match value {
            Value::Object(map) if map.contains_key("openai_route") || map.contains_key("openai_input") => {
                Ok(Input::OpenAi(Request::from_envelope(map)))
            }
            other => serde_path_to_error::deserialize(other).map(Input::Native).map_err(|e| {
                let path = e.path().to_string();
                let inner = e.into_inner();
                if path == "." {
                    serde::de::Error::custom(inner)
                } else {
                    serde::de::Error::custom(format_args!("at `{path}`: {inner}"))
                }
            }),
        }
    }
}

/// One OpenAI call the worker serves.
#[derive(Debug, Clone)]
pub enum Request {
    /// `POST /v1/chat/completions`.
    Chat(ChatCompletionRequest),
    /// `POST /v1/completions`.
    Completion(CompletionRequest),
    /// `GET /v1/models`.
    Models,
}

impl Request {
    /// Decodes the envelope `{"openai_route", "openai_input"}` (a missing route means chat
    /// completions, as worker-vllm reads it) and checks what this module can serve.
    pub fn from_envelope(mut envelope: Map<String, Value>) -> Result<Request, Error> {
        let route = match envelope.remove("openai_route") {
            None | Some(Value::Null) => CHAT_COMPLETIONS_ROUTE.to_owned(),
            Some(Value::String(s)) => s,
            Some(other) => {
                return Err(Error::invalid("openai_route", format!("must be a string, got {other}")))
            }
        };
        let body = match envelope.remove("openai_input") {
            None | Some(Value::Null) => Value::Object(Map::new()),
            Some(v) => v,
        };
        match route.trim_end_matches('/') {
            CHAT_COMPLETIONS_ROUTE => {
                let req: ChatCompletionRequest = decode_body(body)?;
                req.validate()?;
                Ok(Request::Chat(req))
            }
            COMPLETIONS_ROUTE => {
                let req: CompletionRequest = decode_body(body)?;
                req.validate()?;
                Ok(Request::Completion(req))
            }
            MODELS_ROUTE => Ok(Request::Models),
            other => Err(Error::not_found(format!("route '{other}' is not served by this worker"))),
        }
    }

    /// True when the client asked for a stream (`"stream": true`).
    pub fn stream(&self) -> bool {
        match self {
            Request::Chat(r) => r.stream,
            Request::Completion(r) => r.stream,
            Request::Models => false,
        }
    }
}

fn decode_body<T: DeserializeOwned>(body: Value) -> Result<T, Error> {
    if !body.is_object() {
        return Err(Error::invalid_request("the request body must be a JSON object"));
    }
    serde_path_to_error::deserialize(body).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner().to_string();
        if path == "." {
            Error::invalid_request(inner)
        } else {
            Error::invalid(&path, format!("'{path}': {inner}"))
        }
    })
}

// ---------------------------------------------------------------------------------------------
// Requests

/// `stop`: one string or a list of them.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum Stop {
    /// One stop sequence.
    One(String),
    /// Several (at most [`MAX_STOP`]).
    Many(Vec<String>),
}

/// `stream_options`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct StreamOptions {
    /// Send a last chunk with `usage` (and no choices) before `[DONE]`.
    #[serde(default)]
    pub include_usage: bool,
}

/// Who wrote a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Instructions from the application.
    System,
    /// Instructions from the application (OpenAI's newer name for `system`).
    Developer,
    /// The user.
    User,
    /// The model.
    Assistant,
    /// A tool's result.
    Tool,
}

impl Role {
    /// The role as the chat template sees it (`developer` is given as `system`, since
    /// templates know only that).
    pub fn as_template_role(self) -> &'static str {
        match self {
            Role::System | Role::Developer => "system",
            Role::User => "user",
            Role::Assistant => "assistant",
            Role::Tool => "tool",
        }
    }
}

/// One part of a message's content given as a list.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct ContentPart {
    /// `text` (the only kind a text model takes), `image_url`, `input_audio`, ...
    #[serde(rename = "type")]
    pub kind: String,
    /// The text of a `text` part.
    #[serde(default)]
    pub text: Option<String>,
}

/// A message's content: a string, or a list of parts.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum Content {
    /// Plain text.
    Text(String),
    /// Content parts.
    Parts(Vec<ContentPart>),
}

/// One message of a chat.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct ChatMessage {
    /// Who wrote it.
    pub role: Role,
    /// What it says (`null` for an assistant message that only called tools).
    #[serde(default)]
    pub content: Option<Content>,
    /// An optional participant name.
    #[serde(default)]
    pub name: Option<String>,
}

impl ChatMessage {
    /// The message's text: the string, or its text parts joined by `\n`. Any other part
    /// (an image, audio) is a `400`: a text model cannot take it.
    pub fn text(&self) -> Result<String, Error> {
        match &self.content {
            None => Ok(String::new()),
            Some(Content::Text(s)) => Ok(s.clone()),
            Some(Content::Parts(parts)) => {
                let mut texts = Vec::with_capacity(parts.len());
                for p in parts {
                    match (p.kind.as_str(), &p.text) {
                        ("text", Some(t)) => texts.push(t.as_str()),
                        ("text", None) => return Err(Error::invalid("messages", "a text part needs 'text'")),
                        (other, _) => {
                            let msg = format!("content parts of type '{other}' are not supported: text only");
                            return Err(Error::invalid("messages", msg));
                        }
                    }
                }
                Ok(texts.join("\n"))
            }
        }
    }
}

/// The body of `POST /v1/chat/completions`, as the official clients send it. Fields this
/// module does not know are ignored; the known ones a text model cannot honour are refused
/// by [`ChatCompletionRequest::validate`].
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct ChatCompletionRequest {
    /// The model asked for.
    #[serde(default)]
    pub model: Option<String>,
    /// The conversation so far.
    pub messages: Vec<ChatMessage>,
    /// Most new tokens (older name).
    #[serde(default)]
    pub max_tokens: Option<u32>,
    /// Most new tokens (newer name; wins over `max_tokens`).
    #[serde(default)]
    pub max_completion_tokens: Option<u32>,
    /// Sampling temperature in [0, 2]; 0 is greedy.
    #[serde(default)]
    pub temperature: Option<f64>,
    /// Nucleus sampling threshold in (0, 1].
    #[serde(default)]
    pub top_p: Option<f64>,
    /// Choices to generate: only 1 is served.
    #[serde(default)]
    pub n: Option<u32>,
    /// Stop sequences.
    #[serde(default)]
    pub stop: Option<Stop>,
    /// Sampler seed.
    #[serde(default)]
    pub seed: Option<i64>,
    /// Stream the answer as Server-Sent Events.
    #[serde(default)]
    pub stream: bool,
    /// Streaming options.
    #[serde(default)]
    pub stream_options: Option<StreamOptions>,
    /// Log probabilities: not served.
    #[serde(default)]
    pub logprobs: Option<bool>,
    /// Tools the model may call: not served.
    #[serde(default)]
    pub tools: Option<Vec<Value>>,
}

/// `prompt` of a completion: a string, or a list holding one.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum Prompt {
    /// One prompt.
    Text(String),
    /// Several prompts, or token ids (only one string prompt is served).
    Many(Vec<Value>),
}

/// The body of `POST /v1/completions`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct CompletionRequest {
    /// The model asked for.
    #[serde(default)]
    pub model: Option<String>,
    /// The text to continue.
    pub prompt: Prompt,
    /// Most new tokens (OpenAI's default is 16).
    #[serde(default)]
    pub max_tokens: Option<u32>,
    /// Sampling temperature in [0, 2]; 0 is greedy.
    #[serde(default)]
    pub temperature: Option<f64>,
    /// Nucleus sampling threshold in (0, 1].
    #[serde(default)]
    pub top_p: Option<f64>,
    /// Choices to generate: only 1 is served.
    #[serde(default)]
    pub n: Option<u32>,
    /// Stop sequences.
    #[serde(default)]
    pub stop: Option<Stop>,
    /// Sampler seed.
    #[serde(default)]
    pub seed: Option<i64>,
    /// Stream the answer as Server-Sent Events.
    #[serde(default)]
    pub stream: bool,
    /// Streaming options.
    #[serde(default)]
    pub stream_options: Option<StreamOptions>,
    /// Repeat the prompt in the answer: not served.
    #[serde(default)]
    pub echo: Option<bool>,
    /// Text after the completion: not served.
    #[serde(default)]
    pub suffix: Option<String>,
    /// Server-side candidates: only 1 is served.
    #[serde(default)]
    pub best_of: Option<u32>,
    /// Log probabilities: not served.
    #[serde(default)]
    pub logprobs: Option<u32>,
}

/// The sampling settings common to both request kinds, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct Sampling {
    /// Most new tokens, if the client set a limit.
    pub max_tokens: Option<u32>,
    /// Temperature, if given (OpenAI's default is 1).
    pub temperature: Option<f64>,
    /// Nucleus threshold, if given.
    pub top_p: Option<f64>,
    /// Seed, if given (a negative seed is taken as its two's complement).
    pub seed: Option<u64>,
    /// Stop sequences (empty ones dropped).
    pub stop: Vec<String>,
}

fn check_common(
    n: Option<u32>,
    temperature: Option<f64>,
    top_p: Option<f64>,
    max_tokens: Option<u32>,
    stop: &Option<Stop>,
    max_tokens_name: &str,
) -> Result<(), Error> {
    if let Some(n) = n.filter(|&n| n != 1) {
        return Err(Error::invalid("n", format!("only n = 1 is supported, got n = {n}")));
    }
    if let Some(t) = temperature.filter(|t| !(t.is_finite() && (0.0..=2.0).contains(t))) {
        return Err(Error::invalid("temperature", format!("temperature must be between 0 and 2, got {t}")));
    }
    if let Some(p) = top_p.filter(|p| !(*p > 0.0 && *p <= 1.0)) {
        return Err(Error::invalid("top_p", format!("top_p must be in (0, 1], got {p}")));
    }
    if max_tokens == Some(0) {
        return Err(Error::invalid(max_tokens_name, format!("{max_tokens_name} must be at least 1")));
    }
    if let Some(Stop::Many(list)) = stop {
        if list.len() > MAX_STOP {
            return Err(Error::invalid(
                "stop",
                format!("at most {MAX_STOP} stop sequences, got {}", list.len()),
            ));
        }
    }
    Ok(())
}

fn stop_list(stop: &Option<Stop>) -> Vec<String> {
    let list = match stop {
        None => vec![],
        Some(Stop::One(s)) => vec![s.clone()],
        Some(Stop::Many(v)) => v.clone(),
    };
    list.into_iter().filter(|s| !s.is_empty()).collect()
}

impl ChatCompletionRequest {
    /// Refuses what this module cannot serve, naming the parameter: `n` other than 1, no
    /// messages, out-of-range sampling values, more than 4 stop sequences, log probabilities,
    /// tools, content that is not text.
    pub fn validate(&self) -> Result<(), Error> {
        if self.messages.is_empty() {
            return Err(Error::invalid("messages", "'messages' must hold at least one message"));
        }
        let name = if self.max_completion_tokens.is_some() { "max_completion_tokens" } else { "max_tokens" };
        check_common(self.n, self.temperature, self.top_p, self.max_tokens(), &self.stop, name)?;
        if self.logprobs == Some(true) {
            return Err(Error::invalid("logprobs", "logprobs are not supported"));
        }
        if self.tools.as_ref().is_some_and(|t| !t.is_empty()) {
            return Err(Error::invalid("tools", "tool calling is not supported by this model"));
        }
        for m in &self.messages {
            m.text()?;
        }
        Ok(())
    }

    /// `max_completion_tokens`, else `max_tokens`.
    pub fn max_tokens(&self) -> Option<u32> {
        self.max_completion_tokens.or(self.max_tokens)
    }

    /// The sampling settings.
    pub fn sampling(&self) -> Sampling {
        Sampling {
            max_tokens: self.max_tokens(),
            temperature: self.temperature,
            top_p: self.top_p,
            seed: self.seed.map(|s| s as u64),
            stop: stop_list(&self.stop),
        }
    }

    /// True when the last chunk of a stream should carry `usage`.
    pub fn include_usage(&self) -> bool {
        self.stream_options.as_ref().is_some_and(|o| o.include_usage)
    }
}

impl CompletionRequest {
    /// Refuses what this module cannot serve, naming the parameter: several prompts or token
    /// ids, `n` or `best_of` other than 1, `echo`, `suffix`, log probabilities, out-of-range
    /// sampling values, more than 4 stop sequences.
    pub fn validate(&self) -> Result<(), Error> {
        self.prompt_text()?;
        check_common(self.n, self.temperature, self.top_p, self.max_tokens, &self.stop, "max_tokens")?;
        if let Some(b) = self.best_of.filter(|&b| b != 1) {
            return Err(Error::invalid("best_of", format!("only best_of = 1 is supported, got {b}")));
        }
        if self.echo == Some(true) {
            return Err(Error::invalid("echo", "echo is not supported"));
        }
        if self.suffix.as_deref().is_some_and(|s| !s.is_empty()) {
            return Err(Error::invalid("suffix", "suffix is not supported"));
        }
        if self.logprobs.is_some() {
            return Err(Error::invalid("logprobs", "logprobs are not supported"));
        }
        Ok(())
    }

    /// The one prompt string.
    pub fn prompt_text(&self) -> Result<&str, Error> {
        match &self.prompt {
            Prompt::Text(s) => Ok(s),
            Prompt::Many(list) => match list.as_slice() {
                [Value::String(s)] => Ok(s),
                _ => Err(Error::invalid("prompt", "only one prompt, given as a string, is supported")),
            },
        }
    }

    /// The sampling settings (`max_tokens` defaults to OpenAI's 16).
    pub fn sampling(&self) -> Sampling {
        Sampling {
            max_tokens: Some(self.max_tokens.unwrap_or(16)),
            temperature: self.temperature,
            top_p: self.top_p,
            seed: self.seed.map(|s| s as u64),
            stop: stop_list(&self.stop),
        }
    }

    /// True when the last chunk of a stream should carry `usage`.
    pub fn include_usage(&self) -> bool {
        self.stream_options.as_ref().is_some_and(|o| o.include_usage)
    }
}

// ---------------------------------------------------------------------------------------------
// Responses

/// Why generation ended, as OpenAI names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FinishReason {
    /// The model ended its answer or a stop sequence was reached.
    Stop,
    /// The token limit was reached.
    Length,
}

/// Token counts of one call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    /// Tokens of the prompt (after the chat template).
    pub prompt_tokens: u64,
    /// Tokens generated.
    pub completion_tokens: u64,
    /// Their sum.
    pub total_tokens: u64,
}

impl Usage {
    /// Counts with their total.
    pub fn new(prompt_tokens: u64, completion_tokens: u64) -> Self {
        Usage { prompt_tokens, completion_tokens, total_tokens: prompt_tokens + completion_tokens }
    }
}

/// The `GET /v1/models` answer for the given model ids (owned by `runpod`, as the platform's
/// docs show).
pub fn model_list(ids: &[&str]) -> Value {
    let created = unix_now();
    let data: Vec<Value> = ids
        .iter()
        .map(|id| json!({"id": id, "object": "model", "created": created, "owned_by": "runpod"}))
        .collect();
    json!({"object": "list", "data": data})
}

fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or_default()
}

/// One Server-Sent Event carrying `value` as JSON: `data: {...}\n\n`.
pub fn sse_event(value: &Value) -> String {
    format!("data: {value}\n\n")
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Chat,
    Completion,
}

/// Builds one call's answer: stream chunks (as SSE text) while generating when the client asked
/// for a stream, else the response object at the end.
#[derive(Debug, Clone)]
pub struct Responder {
    kind: Kind,
    id: String,
    created: u64,
    model: String,
    stream: bool,
    include_usage: bool,
    sent_role: bool,
    text: String,
}

/// What [`Responder::finish`] gives.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    /// A stream's closing events (the last chunk with `finish_reason`, the usage chunk when
    /// asked, `[DONE]`): stream this text, then end the job.
    Stream(String),
    /// The response object: the job's output.
    Response(Value),
}

impl Responder {
    /// A responder for `request`, answering as `model`, with ids made from `job_id`
    /// (`chatcmpl-<job id>` or `cmpl-<job id>`). `Request::Models` is answered as a completion;
    /// use [`model_list`] for it.
    pub fn new(request: &Request, model: &str, job_id: &str) -> Self {
        let (kind, stream, include_usage) = match request {
            Request::Chat(r) => (Kind::Chat, r.stream, r.include_usage()),
            Request::Completion(r) => (Kind::Completion, r.stream, r.include_usage()),
            Request::Models => (Kind::Completion, false, false),
        };
        let prefix = if kind == Kind::Chat { "chatcmpl" } else { "cmpl" };
        Responder {
            kind,
            id: format!("{prefix}-{job_id}"),
            created: unix_now(),
            model: model.to_owned(),
            stream,
            include_usage,
            sent_role: false,
            text: String::new(),
        }
    }

    /// True when the answer is streamed.
    pub fn is_streaming(&self) -> bool {
        self.stream
    }

    /// The answer's id.
    pub fn id(&self) -> &str {
        &self.id
    }

    fn chunk(&self, choices: Value, usage: Option<Usage>) -> Value {
        let object = match self.kind {
            Kind::Chat => "chat.completion.chunk",
            Kind::Completion => "text_completion",
        };
        let mut v = json!({
            "id": self.id, "object": object, "created": self.created, "model": self.model, "choices": choices,
        });
        if let Some(u) = usage {
            v["usage"] = json!(u);
        }
        v
    }

    fn choice_chunk(&mut self, text: Option<&str>, finish: Option<FinishReason>) -> Value {
        let choice = match self.kind {
            Kind::Chat => {
                let mut delta = Map::new();
                if !self.sent_role {
                    delta.insert("role".into(), "assistant".into());
                    self.sent_role = true;
                }
                if let Some(t) = text {
                    delta.insert("content".into(), t.into());
                }
                json!({"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish})
            }
            Kind::Completion => {
                json!({"index": 0, "text": text.unwrap_or(""), "logprobs": null, "finish_reason": finish})
            }
        };
        self.chunk(json!([choice]), None)
    }

    /// The next piece of generated text: its stream chunk as an SSE event when streaming
    /// (`ctx.stream` it), else `None` (the text is kept for the response). Empty pieces
    /// give nothing.
    pub fn piece(&mut self, text: &str) -> Option<String> {
        if text.is_empty() {
            return None;
        }
        if !self.stream {
            self.text.push_str(text);
            return None;
        }
        Some(sse_event(&self.choice_chunk(Some(text), None)))
    }

    /// Ends the answer with `finish_reason` and `usage`.
    pub fn finish(mut self, finish_reason: FinishReason, usage: Usage) -> Reply {
        if self.stream {
            let mut out = sse_event(&self.choice_chunk(None, Some(finish_reason)));
            if self.include_usage {
                out.push_str(&sse_event(&self.chunk(json!([]), Some(usage))));
            }
            out.push_str(SSE_DONE);
            return Reply::Stream(out);
        }
        let text = std::mem::take(&mut self.text);
        let (object, choice) = match self.kind {
            Kind::Chat => (
                "chat.completion",
                json!({"index": 0, "message": {"role": "assistant", "content": text},
                       "logprobs": null, "finish_reason": finish_reason}),
            ),
            Kind::Completion => (
                "text_completion",
                json!({"index": 0, "text": text, "logprobs": null, "finish_reason": finish_reason}),
            ),
        };
        Reply::Response(json!({
            "id": self.id, "object": object, "created": self.created, "model": self.model,
            "choices": [choice], "usage": usage,
        }))
    }
}

// ---------------------------------------------------------------------------------------------
// Errors

/// An error in OpenAI's shape, with the HTTP status it stands for.
///
/// Serialized as `{"message", "type", "param", "code"}` with the status in `code`, as vLLM
/// (and so worker-vllm) does; [`Error::into_output`] wraps it as `{"error": {...}}`, the
/// value a handler returns so that the job fails with it and the OpenAI route answers with
/// that status.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct Error {
    status: u16,
    kind: String,
    message: String,
    param: Option<String>,
}

impl Error {
    /// An error with any status and type.
    pub fn new(status: u16, kind: impl Into<String>, message: impl Into<String>) -> Self {
        Error { status, kind: kind.into(), message: message.into(), param: None }
    }

    /// `400 invalid_request_error`.
    pub fn invalid_request(message: impl Into<String>) -> Self {
        Error::new(400, "invalid_request_error", message)
    }

    /// `400 invalid_request_error` about parameter `param`.
    pub fn invalid(param: &str, message: impl Into<String>) -> Self {
        Error { param: Some(param.to_owned()), ..Error::invalid_request(message) }
    }

    /// `404 not_found_error`.
    pub fn not_found(message: impl Into<String>) -> Self {
        Error::new(404, "not_found_error", message)
    }

    /// `500 server_error`.
    pub fn server(message: impl Into<String>) -> Self {
        Error::new(500, "server_error", message)
    }

    /// The HTTP status.
    pub fn status(&self) -> u16 {
        self.status
    }

    /// OpenAI's error `type`.
    pub fn kind(&self) -> &str {
        &self.kind
    }

    /// The parameter at fault, if any.
    pub fn param(&self) -> Option<&str> {
        self.param.as_deref()
    }

    /// `{"message", "type", "param", "code": status}`.
    pub fn body(&self) -> Value {
        json!({"message": self.message, "type": self.kind, "param": self.param, "code": self.status})
    }

    /// `{"error": {...}}`: as a handler's output it fails the job with the error object.
    pub fn into_output(self) -> Value {
        json!({"error": self.body()})
    }

    /// The error as one Server-Sent Event, for a stream that fails after it started.
    pub fn sse_event(&self) -> String {
        sse_event(&json!({"error": self.body()}))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Native {
        prompt: String,
    }

    fn call(route: &str, body: Value) -> Result<Request, Error> {
        match serde_json::from_value::<Input<Native>>(json!({"openai_route": route, "openai_input": body})) {
            Ok(Input::OpenAi(r)) => r,
            other => panic!("not an OpenAI call: {other:?}"),
        }
    }

    #[test]
    fn native_input_decodes_and_names_fields() {
        let ok: Input<Native> = serde_json::from_value(json!({"prompt": "hi"})).unwrap();
        assert!(matches!(ok, Input::Native(Native { ref prompt }) if prompt == "hi"));
        let e = serde_json::from_value::<Input<Native>>(json!({"prompt": 1})).unwrap_err().to_string();
        assert!(e.contains("prompt") && e.contains("expected a string"), "{e}");
        let e = serde_json::from_value::<Input<Native>>(json!({"top_k": 1})).unwrap_err().to_string();
        assert!(e.contains("top_k"), "{e}");
    }

    #[test]
    fn real_client_bodies_decode() {
        let body = json!({
            "model": "m", "stream": true, "stream_options": {"include_usage": true},
            "max_completion_tokens": 9, "max_tokens": 3, "temperature": 0, "top_p": 0.5,
            "stop": "\n", "seed": -1, "n": 1, "user": "ignored", "presence_penalty": 0,
            "messages": [
                {"role": "developer", "content": "Be brief."},
                {"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]},
                {"role": "assistant", "content": null},
            ]
        });
        let Request::Chat(r) = call("/v1/chat/completions", body).unwrap() else { panic!() };
        assert_eq!(r.max_tokens(), Some(9));
        assert!(r.stream && r.include_usage());
        assert_eq!(r.messages[1].text().unwrap(), "a\nb");
        assert_eq!(r.messages[0].role.as_template_role(), "system");
        let s = r.sampling();
        assert_eq!((s.stop, s.seed, s.temperature), (vec!["\n".to_string()], Some(u64::MAX), Some(0.0)));

        let Request::Completion(c) =
            call("/v1/completions/", json!({"prompt": ["p"], "stop": ["a", "b"]})).unwrap()
        else {
            panic!()
        };
        assert_eq!(c.prompt_text().unwrap(), "p");
        assert_eq!(c.sampling().max_tokens, Some(16));
        assert!(matches!(call("/v1/models", json!({})), Ok(Request::Models)));
        let models: Input<Native> = serde_json::from_value(json!({"openai_route": "/v1/models"})).unwrap();
        assert!(matches!(models, Input::OpenAi(Ok(Request::Models))));
    }

    #[test]
    fn what_cannot_be_served_is_a_clear_400_or_404() {
        let user = json!([{"role": "user", "content": "x"}]);
        for (body, param, says) in [
            (json!({"messages": user, "n": 2}), "n", "only n = 1"),
            (json!({"messages": []}), "messages", "at least one"),
            (json!({"messages": user, "temperature": 3}), "temperature", "between 0 and 2"),
            (json!({"messages": user, "top_p": 0}), "top_p", "(0, 1]"),
            (json!({"messages": user, "max_tokens": 0}), "max_tokens", "at least 1"),
            (json!({"messages": user, "stop": ["a", "b", "c", "d", "e"]}), "stop", "at most 4"),
            (
                json!({"messages": [{"role": "wizard", "content": "x"}]}),
                "messages[0].role",
                "unknown variant",
            ),
            (json!({"messages": "hello"}), "messages", "expected a sequence"),
            (
                json!({"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {}}]}]}),
                "messages",
                "image_url",
            ),
        ] {
            let e = call("/v1/chat/completions", body.clone()).unwrap_err();
            assert_eq!((e.status(), e.kind()), (400, "invalid_request_error"), "{body}");
            assert_eq!(e.param(), Some(param), "{body}: {e}");
            assert!(e.to_string().contains(says), "{body}: {e}");
        }
        let e = call("/v1/completions", json!({"prompt": [[1, 2]]})).unwrap_err();
        assert_eq!(e.param(), Some("prompt"));
        let e = call("/v1/embeddings", json!({})).unwrap_err();
        assert_eq!(e.status(), 404);
        let e = call("/v1/chat/completions", json!([1])).unwrap_err();
        assert_eq!(e.status(), 400);
        assert_eq!(e.clone().into_output()["error"]["code"], 400);
    }

    #[test]
    fn streamed_chat_is_sse_with_role_first_usage_last_and_done() {
        let req = call(
            "/v1/chat/completions",
            json!({"messages": [{"role": "user", "content": "x"}], "stream": true,
                   "stream_options": {"include_usage": true}}),
        )
        .unwrap();
        let mut r = Responder::new(&req, "m", "j1");
        assert!(r.is_streaming());
        assert_eq!(r.piece(""), None);
        let first = r.piece("Hel").unwrap();
        let second = r.piece("lo").unwrap();
        let Reply::Stream(tail) = r.finish(FinishReason::Length, Usage::new(5, 2)) else { panic!() };
        let events: Vec<Value> = [first, second, tail]
            .concat()
            .split("\n\n")
            .filter(|e| !e.is_empty())
            .map(|e| e.strip_prefix("data: ").unwrap())
            .filter(|d| *d != "[DONE]")
            .map(|d| serde_json::from_str(d).unwrap())
            .collect();
        assert_eq!(events.len(), 4);
        assert_eq!(events[0]["choices"][0]["delta"], json!({"role": "assistant", "content": "Hel"}));
        assert_eq!(events[1]["choices"][0]["delta"], json!({"content": "lo"}));
        assert_eq!(events[2]["choices"][0]["finish_reason"], "length");
        assert_eq!(events[3]["choices"], json!([]));
        assert_eq!(
            events[3]["usage"],
            json!({"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7})
        );
        assert!(events.iter().all(|e| e["id"] == "chatcmpl-j1" && e["object"] == "chat.completion.chunk"));
    }

    #[test]
    fn completion_response_and_model_list() {
        let req = call("/v1/completions", json!({"prompt": "p"})).unwrap();
        let mut r = Responder::new(&req, "m", "j2");
        assert_eq!(r.piece("a"), None);
        r.piece("b");
        let Reply::Response(v) = r.finish(FinishReason::Stop, Usage::new(1, 2)) else { panic!() };
        assert_eq!((v["object"].as_str(), v["id"].as_str()), (Some("text_completion"), Some("cmpl-j2")));
        assert_eq!(v["choices"][0]["text"], "ab");
        assert_eq!(v["choices"][0]["finish_reason"], "stop");
        let list = model_list(&["a", "b"]);
        assert_eq!(list["data"][1]["id"], "b");
        assert_eq!(list["data"][0]["object"], "model");
    }
}

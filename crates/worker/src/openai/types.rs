//! The requests of the OpenAI route as plain wire types, and what this module can serve of
//! them (their checks).

use super::{Error, CHAT_COMPLETIONS_ROUTE, COMPLETIONS_ROUTE, MAX_STOP, MAX_STOP_BYTES, MODELS_ROUTE};
use serde::de::{DeserializeOwned, Deserializer};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// A job's input: an OpenAI call (the `openai_route` / `openai_input` envelope), or the
/// handler's own input `T`.
///
/// Decoding never fails on a bad OpenAI request: it becomes `OpenAi(Err(_))`, a `400` for the
/// client, so the handler answers it in OpenAI's error shape. Anything without the envelope's
/// keys decodes as `T` (a mismatch fails the job as usual, naming the field).
#[derive(Debug, Clone)]
#[expect(
    clippy::large_enum_variant,
    reason = "decoded once per job and matched by value (`Input::OpenAi(Ok(Request::Chat(r)))`): a Box would only cost an allocation"
)]
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

    /// The model the client asked for (`None` for `/v1/models`, or a request naming none).
    pub fn model(&self) -> Option<&str> {
        match self {
            Request::Chat(r) => r.common.model.as_deref(),
            Request::Completion(r) => r.common.model.as_deref(),
            Request::Models => None,
        }
    }

    /// Refuses a request for a model not in `served` (what `/v1/models` lists) with
    /// [`Error::model_not_found`], as OpenAI and vLLM do; a request naming no model is served
    /// by the worker's model. A worker that answers whatever name it is given does not call
    /// this (and its `/v1/models` lists the names it prefers).
    pub fn check_model(&self, served: &[&str]) -> Result<(), Error> {
        match self.model() {
            Some(m) if !served.contains(&m) => Err(Error::model_not_found(m)),
            _ => Ok(()),
        }
    }

    /// True when the client asked for a stream (`"stream": true`).
    pub fn stream(&self) -> bool {
        match self {
            Request::Chat(r) => r.common.stream,
            Request::Completion(r) => r.common.stream,
            Request::Models => false,
        }
    }
}

/// Decodes a request body. The shared fields are decoded on their own first: inside the
/// request, `#[serde(flatten)]` hides which of them failed, and the error must name it.
fn decode_body<T: DeserializeOwned>(body: Value) -> Result<T, Error> {
    if !body.is_object() {
        return Err(Error::invalid_request("the request body must be a JSON object"));
    }
    serde_path_to_error::deserialize::<_, Common>(&body).map_err(path_error)?;
    serde_path_to_error::deserialize(body).map_err(path_error)
}

/// A decoding error as an OpenAI `400` naming the parameter at fault.
fn path_error(e: serde_path_to_error::Error<serde_json::Error>) -> Error {
    let path = e.path().to_string();
    let inner = e.into_inner().to_string();
    if path == "." {
        Error::invalid_request(inner)
    } else {
        Error::invalid(&path, format!("'{path}': {inner}"))
    }
}

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

/// What both kinds of request carry: the model, the limit, sampling and streaming, each
/// decoded and checked once ([`Common::check`]).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Common {
    /// The model asked for.
    #[serde(default)]
    pub model: Option<String>,
    /// Most new tokens (for chat, the older name of `max_completion_tokens`).
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
}

/// The body of `POST /v1/chat/completions`, as the official clients send it. Fields this
/// module does not know are ignored; the known ones a text model cannot honour are refused
/// by [`ChatCompletionRequest::validate`].
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct ChatCompletionRequest {
    /// The fields every request has (`model`, `max_tokens`, sampling, `stream`).
    #[serde(flatten)]
    pub common: Common,
    /// The conversation so far.
    pub messages: Vec<ChatMessage>,
    /// Most new tokens (newer name; wins over `max_tokens`).
    #[serde(default)]
    pub max_completion_tokens: Option<u32>,
    /// Log probabilities: not served.
    #[serde(default)]
    pub logprobs: Option<bool>,
    /// Tools the model may call: not served.
    #[serde(default)]
    pub tools: Option<Vec<Value>>,
    /// The shape the answer must take, as sent (read by [`ChatCompletionRequest::response_format`]).
    #[serde(default)]
    pub response_format: Option<Value>,
}

/// `response_format` of a chat request: what the answer must be.
#[derive(Debug, Clone, PartialEq)]
pub enum ResponseFormat {
    /// Free text (`{"type": "text"}`, or no `response_format`).
    Text,
    /// Any JSON object (`{"type": "json_object"}`).
    JsonObject,
    /// A JSON value valid against a schema (`{"type": "json_schema", "json_schema": {"name",
    /// "schema", "strict"}}`).
    JsonSchema {
        /// `json_schema.name`.
        name: String,
        /// `json_schema.schema` (a schema that allows anything when absent).
        schema: Value,
    },
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
    /// The fields every request has (`model`, `max_tokens`, sampling, `stream`).
    #[serde(flatten)]
    pub common: Common,
    /// The text to continue.
    pub prompt: Prompt,
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

impl Common {
    /// Refuses out-of-range values, naming the parameter: `n` other than 1, temperature outside
    /// [0, 2], `top_p` outside (0, 1], a limit of 0 new tokens (`max_tokens`, the limit the
    /// request kind reads, is named `limit_name`), more than 4 stop sequences or one over 256
    /// bytes.
    fn check(&self, max_tokens: Option<u32>, limit_name: &str) -> Result<(), Error> {
        if let Some(n) = self.n.filter(|&n| n != 1) {
            return Err(Error::invalid("n", format!("only n = 1 is supported, got n = {n}")));
        }
        if let Some(t) = self.temperature.filter(|t| !(t.is_finite() && (0.0..=2.0).contains(t))) {
            return Err(Error::invalid(
                "temperature",
                format!("temperature must be between 0 and 2, got {t}"),
            ));
        }
        if let Some(p) = self.top_p.filter(|p| !(*p > 0.0 && *p <= 1.0)) {
            return Err(Error::invalid("top_p", format!("top_p must be in (0, 1], got {p}")));
        }
        if max_tokens == Some(0) {
            return Err(Error::invalid(limit_name, format!("{limit_name} must be at least 1")));
        }
        let list = self.stops();
        if list.len() > MAX_STOP {
            return Err(Error::invalid(
                "stop",
                format!("at most {MAX_STOP} stop sequences, got {}", list.len()),
            ));
        }
        if let Some(long) = list.iter().find(|s| s.len() > MAX_STOP_BYTES) {
            return Err(Error::invalid(
                "stop",
                format!("a stop sequence is at most {MAX_STOP_BYTES} bytes, got one of {} bytes", long.len()),
            ));
        }
        Ok(())
    }

    /// The stop sequences as given.
    fn stops(&self) -> &[String] {
        match &self.stop {
            None => &[],
            Some(Stop::One(s)) => std::slice::from_ref(s),
            Some(Stop::Many(list)) => list.as_slice(),
        }
    }

    /// The sampling settings, with the limit the request kind reads.
    fn sampling(&self, max_tokens: Option<u32>) -> Sampling {
        Sampling {
            max_tokens,
            temperature: self.temperature,
            top_p: self.top_p,
            seed: self.seed.map(|s| s as u64),
            stop: self.stops().iter().filter(|s| !s.is_empty()).cloned().collect(),
        }
    }

    /// True when the last chunk of a stream should carry `usage`.
    pub fn include_usage(&self) -> bool {
        self.stream_options.as_ref().is_some_and(|o| o.include_usage)
    }
}

impl ChatCompletionRequest {
    /// Refuses what this module cannot serve, naming the parameter: `n` other than 1, no
    /// messages, out-of-range sampling values (temperature outside [0, 2], `top_p` outside
    /// (0, 1]), more than 4 stop sequences or one over 256 bytes, log probabilities, tools,
    /// content that is not text, a `response_format` of another shape than OpenAI's.
    pub fn validate(&self) -> Result<(), Error> {
        if self.messages.is_empty() {
            return Err(Error::invalid("messages", "'messages' must hold at least one message"));
        }
        let name = if self.max_completion_tokens.is_some() { "max_completion_tokens" } else { "max_tokens" };
        self.common.check(self.max_tokens(), name)?;
        if self.logprobs == Some(true) {
            return Err(Error::invalid("logprobs", "logprobs are not supported"));
        }
        if self.tools.as_ref().is_some_and(|t| !t.is_empty()) {
            return Err(Error::invalid("tools", "tool calling is not supported by this model"));
        }
        for m in &self.messages {
            m.text()?;
        }
        self.response_format()?;
        Ok(())
    }

    /// `response_format`, read: a `400` naming `response_format` when it is not one of
    /// OpenAI's three shapes.
    pub fn response_format(&self) -> Result<ResponseFormat, Error> {
        let bad = |m: &str| Error::invalid("response_format", m.to_owned());
        let Some(f) = &self.response_format else { return Ok(ResponseFormat::Text) };
        let f = f.as_object().ok_or_else(|| bad("response_format must be an object with a `type`"))?;
        match f.get("type").and_then(Value::as_str) {
            Some("text") => Ok(ResponseFormat::Text),
            Some("json_object") => Ok(ResponseFormat::JsonObject),
            Some("json_schema") => {
                let js = f.get("json_schema").and_then(Value::as_object).ok_or_else(|| {
                    bad("response_format of type json_schema needs a `json_schema` object (name, schema)")
                })?;
                let name = match js.get("name") {
                    None => "response".to_owned(),
                    Some(Value::String(n)) if !n.is_empty() && n.len() <= 64 => n.clone(),
                    Some(_) => return Err(bad("json_schema.name must be a string of 1 to 64 characters")),
                };
                let schema = match js.get("schema") {
                    None => Value::Bool(true),
                    Some(s @ (Value::Object(_) | Value::Bool(_))) => s.clone(),
                    Some(_) => return Err(bad("json_schema.schema must be a JSON Schema object")),
                };
                Ok(ResponseFormat::JsonSchema { name, schema })
            }
            Some(other) => Err(bad(&format!(
                "response_format type must be text, json_object or json_schema, got {other:?}"
            ))),
            None => Err(bad("response_format must be an object with a `type`")),
        }
    }

    /// `max_completion_tokens`, else `max_tokens`.
    pub fn max_tokens(&self) -> Option<u32> {
        self.max_completion_tokens.or(self.common.max_tokens)
    }

    /// The sampling settings.
    pub fn sampling(&self) -> Sampling {
        self.common.sampling(self.max_tokens())
    }
}

impl CompletionRequest {
    /// Refuses what this module cannot serve, naming the parameter: several prompts or token
    /// ids, `n` or `best_of` other than 1, `echo`, `suffix`, log probabilities, out-of-range
    /// sampling values, more than 4 stop sequences or one over 256 bytes.
    pub fn validate(&self) -> Result<(), Error> {
        self.prompt_text()?;
        self.common.check(self.common.max_tokens, "max_tokens")?;
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
        self.common.sampling(Some(self.common.max_tokens.unwrap_or(16)))
    }
}

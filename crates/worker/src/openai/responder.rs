//! Answers of the OpenAI route: the response object, or its stream chunks as Server-Sent
//! Events, built by a [`Responder`]; the model list.

use super::sse::{sse_event, SSE_DONE};
use super::Request;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use std::time::{SystemTime, UNIX_EPOCH};

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
            Request::Chat(r) => (Kind::Chat, r.common.stream, r.common.include_usage()),
            Request::Completion(r) => (Kind::Completion, r.common.stream, r.common.include_usage()),
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

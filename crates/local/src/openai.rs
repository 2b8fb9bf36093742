//! The OpenAI-compatible route: `/v2/{ep}/openai/v1/chat/completions`, `/completions` and
//! `/models`, each call a job `{"openai_route", "openai_input"}` for the worker, answered as
//! JSON or relayed as Server-Sent Events while the worker streams (see `docs/openai.md`).

use crate::error::ApiError;
use crate::jobs::{deadline, Entry, Jobs, Origin};
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use runpod_protocol::{JobRequest, JobStatus};
use serde_json::{json, Value};
use std::convert::Infallible;
use std::time::Duration;

/// The response header that carries the job id (OpenAI's request-id header: the official
/// clients show it as `_request_id`).
pub(crate) const REQUEST_ID_HEADER: &str = "x-request-id";

/// The end of every relayed stream.
const DONE: &str = "data: [DONE]\n\n";

/// True for paths under `/v2/{ep}/openai/`: their errors are answered in OpenAI's shape.
pub(crate) fn is_openai_path(path: &str) -> bool {
    path.trim_start_matches('/').split('/').nth(2) == Some("openai")
}

/// An error in OpenAI's shape: `{"error": {"message", "type", "param", "code"}}`.
fn error_response(status: StatusCode, kind: &str, message: &str, code: Value) -> Response {
    let body = json!({"error": {"message": message, "type": kind, "param": null, "code": code}});
    (status, axum::Json(body)).into_response()
}

/// An [`ApiError`] of any route check (key, endpoint, size, queue), in OpenAI's shape.
pub(crate) fn api_error(e: ApiError) -> Response {
    let (kind, code) = match &e {
        ApiError::Unauthorized(_) => ("invalid_request_error", json!("invalid_api_key")),
        ApiError::TooManyRequests { .. } => ("rate_limit_error", json!("rate_limit_exceeded")),
        ApiError::NotFound(_) => ("invalid_request_error", json!("not_found")),
        _ => ("invalid_request_error", Value::Null),
    };
    error_response(e.status(), kind, &e.to_string(), code)
}

/// `POST /v2/{ep}/openai/v1/chat/completions`.
pub(crate) async fn chat_completions(State(jobs): State<Jobs>, body: Body) -> Response {
    call(jobs, "/v1/chat/completions", Some(body)).await
}

/// `POST /v2/{ep}/openai/v1/completions`.
pub(crate) async fn completions(State(jobs): State<Jobs>, body: Body) -> Response {
    call(jobs, "/v1/completions", Some(body)).await
}

/// `GET /v2/{ep}/openai/v1/models`.
pub(crate) async fn models(State(jobs): State<Jobs>) -> Response {
    call(jobs, "/v1/models", None).await
}

/// Any other path under `/openai/`.
pub(crate) async fn unknown(req: axum::extract::Request) -> Response {
    let msg = format!("no OpenAI route {} {} on this endpoint", req.method(), req.uri().path());
    error_response(StatusCode::NOT_FOUND, "invalid_request_error", &msg, json!("not_found"))
}

/// `405` for a known OpenAI route asked with the wrong method, in OpenAI's error shape.
pub(crate) fn wrong_method(req: &axum::extract::Request) -> Response {
    let msg = format!("method {} is not allowed on {}", req.method(), req.uri().path());
    error_response(StatusCode::METHOD_NOT_ALLOWED, "invalid_request_error", &msg, json!("method_not_allowed"))
}

/// Cancels the job when dropped: the client went away (a dropped request future or response
/// body) before it ended. A job that already ended is left as it is.
struct CancelOnDrop {
    jobs: Jobs,
    id: String,
}

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.jobs.cancel_detached(&self.id, "OpenAI client disconnected");
    }
}

async fn call(jobs: Jobs, route: &str, body: Option<Body>) -> Response {
    let (input, bytes) = match body {
        None => (json!({}), 2),
        Some(body) => match read_body(&jobs, body).await {
            Ok(v) => v,
            Err(e) => return api_error(e),
        },
    };
    let stream = input.get("stream") == Some(&Value::Bool(true));
    let request = JobRequest::new(json!({"openai_route": route, "openai_input": input}));
    let id = match jobs.submit(request, bytes, Origin::RunSync).await {
        Ok(id) => id,
        Err(e) => return api_error(e),
    };
    tracing::debug!(job = %id, route, stream, "OpenAI call queued");
    let guard = CancelOnDrop { jobs, id: id.clone() };
    let mut response = if stream { relay(guard).await } else { answer(guard).await };
    if let Ok(v) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(REQUEST_ID_HEADER, v);
    }
    response
}

/// The body as a JSON object, and its size (the size limit and body timeout of `/runsync`).
async fn read_body(jobs: &Jobs, body: Body) -> Result<(Value, usize), ApiError> {
    let cfg = jobs.cfg();
    let (value, bytes): (Value, usize) =
        crate::request::read_json(body, cfg.max_runsync_bytes, cfg.body_timeout).await?;
    if !value.is_object() {
        return Err(ApiError::BadRequest("request body must be a JSON object".into()));
    }
    Ok((value, bytes))
}

/// What the job left: status, output, error and streamed chunks from `from` on.
struct Snapshot {
    status: JobStatus,
    output: Option<Value>,
    error: Option<String>,
    chunks: Vec<Value>,
    /// The absolute index after the last chunk.
    next: u64,
}

fn snapshot(jobs: &Jobs, id: &str, from: u64) -> Option<Snapshot> {
    let v = jobs.view(id, from)?;
    Some(Snapshot {
        status: v.status.status,
        output: v.status.output,
        error: v.status.error,
        chunks: v.chunks,
        next: v.next,
    })
}

/// Waits until job `id` ends or has more than `seen` chunks; false on shutdown.
async fn wait_for(jobs: &Jobs, id: &str, seen: u64) -> bool {
    let far = deadline(Duration::from_secs(100 * 365 * 86_400));
    let ready =
        |e: Option<&Entry>| e.is_none_or(|e| e.status().is_final() || !e.stream_from(seen).0.is_empty());
    jobs.wait_job(id, far, ready).await;
    !jobs.is_shutting_down()
}

fn shutting_down() -> Response {
    error_response(
        StatusCode::SERVICE_UNAVAILABLE,
        "server_error",
        "the endpoint is shutting down",
        Value::Null,
    )
}

/// A non-streamed call: waits for the job to end and answers with its output.
async fn answer(guard: CancelOnDrop) -> Response {
    let (jobs, id) = (guard.jobs.clone(), guard.id.clone());
    loop {
        if !wait_for(&jobs, &id, u64::MAX).await {
            return shutting_down();
        }
        match snapshot(&jobs, &id, 0) {
            None => return job_gone(&id),
            Some(s) if s.status.is_final() => {
                return match outcome(s) {
                    Ok(body) => (StatusCode::OK, axum::Json(body)).into_response(),
                    Err(e) => refusal_response(e),
                }
            }
            Some(_) => continue,
        }
    }
}

fn job_gone(id: &str) -> Response {
    refusal_response(failure(format!("job '{id}' is gone")))
}

/// An error to answer: its status and its inner object (`message`, `type`, `param`, `code`).
type Refusal = (StatusCode, Value);

fn refusal_response((status, e): Refusal) -> Response {
    (status, axum::Json(json!({"error": e}))).into_response()
}

/// The answer of an ended job: its output (a one-element list unwrapped, or the one streamed
/// chunk when the output is empty), or its error in OpenAI's shape with a fitting status.
fn outcome(s: Snapshot) -> Result<Value, Refusal> {
    match s.status {
        JobStatus::Completed => {
            let empty = |v: &Value| v.is_null() || v.as_array().is_some_and(|a| a.is_empty());
            let body = match s.output {
                Some(v) if !empty(&v) => v,
                _ if s.chunks.len() == 1 => s.chunks.into_iter().next().unwrap_or_default(),
                _ => return Err(failure("the worker answered with no output".into())),
            };
            let body = match body {
                Value::Array(mut a) if a.len() == 1 => a.swap_remove(0),
                other => other,
            };
            match error_object(&body) {
                Some(e) => Err(refusal(e)),
                None => Ok(body),
            }
        }
        JobStatus::Failed => {
            let text = s.error.unwrap_or_default();
            Err(match failed_error(&text) {
                Ok(e) => refusal(e),
                Err(message) => failure(message),
            })
        }
        other => Err(failure(format!("the job ended {other}"))),
    }
}

fn failure(message: String) -> Refusal {
    let e = json!({"message": message, "type": "server_error", "param": null, "code": null});
    (StatusCode::INTERNAL_SERVER_ERROR, e)
}

/// An OpenAI-like error object in `v`: `{"error": {"message", ...}}` or vLLM's
/// `{"object": "error", "message", ...}`; the inner object.
fn error_object(v: &Value) -> Option<Value> {
    match v.get("error") {
        Some(e @ Value::Object(o)) if o.contains_key("message") => return Some(e.clone()),
        Some(Value::String(s)) => return Some(json!({"message": s, "type": "server_error"})),
        _ => {}
    }
    if v.get("object").and_then(Value::as_str) == Some("error") && v.get("message").is_some() {
        let mut e = v.clone();
        if let Some(o) = e.as_object_mut() {
            o.remove("object");
        }
        return Some(e);
    }
    None
}

/// A failed job's error text: an OpenAI error object (as the runtime reports a handler's
/// returned `{"error": {...}}`, possibly inside the SDK's error report), else the message.
fn failed_error(text: &str) -> Result<Value, String> {
    let parsed: Option<Value> = serde_json::from_str(text).ok();
    let Some(v) = parsed else { return Err(text.to_owned()) };
    if let Some(msg) = v.get("error_message").and_then(Value::as_str) {
        // The SDK's error report around the handler's own error text.
        return match serde_json::from_str::<Value>(msg).ok().and_then(|m| as_error_body(&m)) {
            Some(e) => Ok(e),
            None => Err(msg.to_owned()),
        };
    }
    as_error_body(&v).ok_or_else(|| text.to_owned())
}

fn as_error_body(v: &Value) -> Option<Value> {
    if v.get("message").is_some_and(Value::is_string) && v.get("error").is_none() {
        return Some(v.clone());
    }
    error_object(v)
}

/// The HTTP status an error object stands for: its numeric `code` (vLLM's convention), else
/// its `type`.
fn error_status(e: &Value) -> StatusCode {
    if let Some(code) = e.get("code").and_then(Value::as_u64) {
        if let Some(s) = u16::try_from(code).ok().and_then(|c| StatusCode::from_u16(c).ok()) {
            if s.is_client_error() || s.is_server_error() {
                return s;
            }
        }
    }
    match e.get("type").and_then(Value::as_str).unwrap_or_default() {
        "invalid_request_error" | "BadRequestError" | "BadRequest" => StatusCode::BAD_REQUEST,
        "authentication_error" => StatusCode::UNAUTHORIZED,
        "not_found_error" | "NotFoundError" => StatusCode::NOT_FOUND,
        "rate_limit_error" => StatusCode::TOO_MANY_REQUESTS,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

fn refusal(mut e: Value) -> Refusal {
    let status = error_status(&e);
    if let Some(o) = e.as_object_mut() {
        o.entry("type").or_insert_with(|| json!("server_error"));
        o.entry("param").or_insert(Value::Null);
        o.entry("code").or_insert(Value::Null);
    }
    (status, e)
}

/// One chunk as SSE text: a string as the worker wrote it (raw events), else `data: <JSON>`.
fn sse_text(chunk: &Value) -> String {
    match chunk {
        Value::String(s) => s.clone(),
        other => format!("data: {other}\n\n"),
    }
}

/// A streamed call: once the worker streams its first chunk, answers `text/event-stream`
/// and relays every chunk as it arrives; a job that ends before streaming anything is
/// answered as a non-streamed call would be (an error status, usually).
async fn relay(guard: CancelOnDrop) -> Response {
    let (jobs, id) = (guard.jobs.clone(), guard.id.clone());
    if !wait_for(&jobs, &id, 0).await {
        return shutting_down();
    }
    let Some(first) = snapshot(&jobs, &id, 0) else { return job_gone(&id) };
    if first.chunks.is_empty() {
        // Ended without a chunk: an error, or a worker that answered in one piece.
        return match outcome(first) {
            Ok(body) => sse_response(Body::from(format!("{}{DONE}", sse_text(&body)))),
            Err(e) => refusal_response(e),
        };
    }
    let state = Relay { guard, seen: 0, finished: false, done_sent: false };
    let body = futures::stream::unfold(state, |mut st| async move {
        if st.finished {
            return None;
        }
        let bytes = st.next().await;
        Some((Ok::<_, Infallible>(Bytes::from(bytes)), st))
    });
    sse_response(Body::from_stream(body))
}

fn sse_response(body: Body) -> Response {
    let mut r = Response::new(body);
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
    r.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    r
}

/// The state of one relayed stream; its guard cancels the job when the body is dropped
/// (the client disconnected).
struct Relay {
    guard: CancelOnDrop,
    seen: u64,
    finished: bool,
    done_sent: bool,
}

impl Relay {
    /// The next piece of the body: the chunks that arrived, or the end of the stream.
    async fn next(&mut self) -> String {
        let (jobs, id) = (&self.guard.jobs, self.guard.id.as_str());
        if !wait_for(jobs, id, self.seen).await {
            self.finished = true;
            return String::from("data: {\"error\": {\"message\": \"the endpoint is shutting down\", \"type\": \"server_error\", \"param\": null, \"code\": 503}}\n\n");
        }
        let Some(s) = snapshot(jobs, id, self.seen) else {
            self.finished = true;
            return DONE.to_owned();
        };
        let mut out = String::new();
        for chunk in &s.chunks {
            let text = sse_text(chunk);
            self.done_sent = text.trim_end().ends_with("data: [DONE]");
            out.push_str(&text);
        }
        self.seen = s.next;
        if s.status.is_final() {
            self.finished = true;
            if !self.done_sent {
                // A job that failed, was cancelled or timed out mid-stream: say so before the end.
                if s.status != JobStatus::Completed {
                    if let Err((_, e)) = outcome(Snapshot { chunks: vec![], output: None, ..s }) {
                        out.push_str(&format!("data: {}\n\n", json!({"error": e})));
                    }
                }
                out.push_str(DONE);
            }
        }
        out
    }
}

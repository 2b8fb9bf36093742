//! A typed [`Handler`] served on one route: each request one handler call ([`invoke`]), its
//! answer JSON, or NDJSON once the handler streams.

use crate::invoke::{invoke, Answer};
use crate::load_balancing::server::error;
use crate::scope::WorkerScope;
use crate::sink::{JobSink, StreamError};
use crate::{Failure, Handler, Job, JobContext};
use axum::body::{Body, Bytes};
use axum::extract::DefaultBodyLimit;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use futures::future::BoxFuture;
use runpod_protocol::limits::MAX_LOAD_BALANCER_PAYLOAD_BYTES;
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

/// A router with one route, `POST path`, that runs `handler` on each request: the body is
/// the handler's `Input` as JSON, the answer its `Output` as JSON (`200`).
///
/// - A body that is not JSON or does not fit `Input` gets `400` naming the field
///   (`{"error": "..."}`); an `Err` or a panic of the handler gets `500` with the
///   [`Failure`](crate::Failure)'s `{"error": message, "error_type": type}`.
/// - Chunks the handler streams (`ctx.stream`) turn the answer into
///   `application/x-ndjson`: one line per chunk as it comes, then a line with the output
///   unless it is `null` or `[]` (what a [`stream_fn`](crate::stream_fn) returns), or
///   `{"error": ...}` when the handler fails after streaming.
/// - A client that goes away cancels the job (`ctx.cancellation_token()` fires).
/// - The request id is the `X-Request-Id` header when sent, else a random one; log lines of
///   the request carry it. Progress updates are logged at DEBUG.
/// - `ctx.worker_id()` is `RUNPOD_POD_ID` as it was when the router was made (`local` when
///   unset).
/// - Bodies up to 30 MB, the platform's limit for load-balancing endpoints.
pub fn handler_router<H: Handler>(path: &str, handler: H) -> Router {
    let worker_id = std::env::var("RUNPOD_POD_ID").unwrap_or_else(|_| "local".into());
    route(path, handler, worker_id, None)
}

/// [`handler_router`] for a worker whose id is `worker_id`, checking each body against `schema`
/// when given.
pub(crate) fn route<H: Handler>(
    path: &str,
    handler: H,
    worker_id: String,
    schema: Option<Arc<runpod_protocol::WorkerSchema>>,
) -> Router {
    let handler = Arc::new(handler);
    let worker = Arc::new(Serving { worker_id, scope: WorkerScope::from_env(), schema });
    Router::new()
        .route(
            path,
            post(move |headers: HeaderMap, body: Bytes| {
                let (handler, worker) = (handler.clone(), worker.clone());
                async move { run_request(handler, &worker, &headers, body).await }
            }),
        )
        .layer(DefaultBodyLimit::max(MAX_LOAD_BALANCER_PAYLOAD_BYTES))
}

/// What every request of the route shares, made once with the route.
struct Serving {
    worker_id: String,
    scope: WorkerScope,
    /// The worker's schema, if any.
    schema: Option<Arc<runpod_protocol::WorkerSchema>>,
}

/// A chunk on its way to the answer, and who waits for its delivery.
type Chunk = (Value, oneshot::Sender<Result<(), StreamError>>);

/// A request's [`JobSink`]: progress is logged at DEBUG, chunks go to the answer.
struct RequestSink(mpsc::UnboundedSender<Chunk>);

impl JobSink for RequestSink {
    fn progress(&self, value: Value, span: &tracing::Span) {
        tracing::debug!(parent: span, "progress: {value}");
    }

    fn chunk(&self, value: Value, _span: &tracing::Span) -> BoxFuture<'static, Result<(), StreamError>> {
        let (ack, delivered) = oneshot::channel();
        let queued = self.0.send((value, ack)).is_ok();
        Box::pin(async move {
            if !queued {
                return Err(StreamError::Closed);
            }
            delivered.await.unwrap_or(Err(StreamError::Closed))
        })
    }
}

/// Aborts the handler task when the request is dropped (the client went away).
struct AbortOnDrop<T>(JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The handler call's answer, or why its task did not return one.
fn answer_of(r: Result<(Answer, Option<crate::debugger::Timings>), tokio::task::JoinError>) -> Answer {
    match r {
        Ok((answer, _)) => answer,
        Err(e) => Answer::Failed(Failure::new("JoinError", format!("the handler task failed: {e}"))),
    }
}

async fn run_request<H: Handler>(
    handler: Arc<H>,
    worker: &Serving,
    headers: &HeaderMap,
    body: Bytes,
) -> Response {
    let id = headers
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|s| !s.is_empty() && s.len() <= 200)
        .map(str::to_owned)
        .unwrap_or_else(|| format!("lb-{:016x}", rand::random::<u64>()));
    let span = tracing::info_span!("job", job_id = %id);
    let input: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => return error(StatusCode::BAD_REQUEST, format!("the request body is not JSON: {e}")),
    };
    let (tx, mut chunks) = mpsc::unbounded_channel();
    let token = CancellationToken::new();
    let ctx = JobContext::new(
        id.clone(),
        worker.worker_id.clone(),
        Arc::new(RequestSink(tx)),
        token.clone(),
        MAX_LOAD_BALANCER_PAYLOAD_BYTES,
        None,
        span.clone(),
        worker.scope.clone(),
    );
    let started = Instant::now();
    let mut task = AbortOnDrop(tokio::spawn(
        invoke(handler, Job::new(id, input), ctx, worker.schema.clone(), None).instrument(span.clone()),
    ));
    let cancel_on_drop = token.drop_guard();
    tokio::select! {
        chunk = chunks.recv() => match chunk {
            Some(first) => streamed(first, chunks, task, cancel_on_drop, span, started),
            // Every sink is gone: the handler is done.
            None => {
                let answer = answer_of((&mut task.0).await);
                cancel_on_drop.disarm();
                final_answer(answer, &span, started)
            }
        },
        r = &mut task.0 => {
            cancel_on_drop.disarm();
            final_answer(answer_of(r), &span, started)
        }
    }
}

/// The answer when the handler returned before streaming anything.
fn final_answer(answer: Answer, span: &tracing::Span, started: Instant) -> Response {
    let elapsed_ms = started.elapsed().as_millis() as u64;
    match answer {
        Answer::Output(out) => match serde_json::to_vec(&out) {
            Ok(body) => {
                tracing::info!(parent: span, elapsed_ms, "request completed");
                ([(header::CONTENT_TYPE, HeaderValue::from_static("application/json"))], body).into_response()
            }
            Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, format!("the output does not encode: {e}")),
        },
        Answer::BadInput(e) => {
            tracing::warn!(parent: span, "{e}");
            error(StatusCode::BAD_REQUEST, e.to_string())
        }
        Answer::Failed(f) => {
            tracing::error!(parent: span, elapsed_ms, kind = %f.error_type, "request failed: {}", f.error_message);
            (StatusCode::INTERNAL_SERVER_ERROR, Json(failure_body(&f))).into_response()
        }
    }
}

/// `{"error": message, "error_type": type}`.
fn failure_body(f: &Failure) -> Value {
    json!({"error": f.error_message, "error_type": f.error_type})
}

/// Switches to an NDJSON answer at the first chunk and pumps the rest into it.
fn streamed(
    first: Chunk,
    mut chunks: mpsc::UnboundedReceiver<Chunk>,
    mut task: AbortOnDrop<(Answer, Option<crate::debugger::Timings>)>,
    cancel_on_drop: tokio_util::sync::DropGuard,
    span: tracing::Span,
    started: Instant,
) -> Response {
    let (out, mut lines) = mpsc::channel::<Bytes>(16);
    let line = |v: &Value| Bytes::from(format!("{v}\n"));
    let pump = async move {
        // Dropped when the pump ends early (the client went away): the job is cancelled.
        let cancel_on_drop = cancel_on_drop;
        let mut open = true;
        let mut next = Some(first);
        loop {
            if let Some((v, ack)) = next.take() {
                let delivered = out.send(line(&v)).await.is_ok();
                let _ = ack.send(if delivered { Ok(()) } else { Err(StreamError::Closed) });
                if !delivered {
                    return;
                }
            }
            tokio::select! {
                chunk = chunks.recv(), if open => match chunk {
                    Some(c) => next = Some(c),
                    None => open = false,
                },
                r = &mut task.0 => {
                    let elapsed_ms = started.elapsed().as_millis() as u64;
                    let last = match answer_of(r) {
                        Answer::Output(Value::Null) => None,
                        Answer::Output(Value::Array(a)) if a.is_empty() => None,
                        Answer::Output(v) => Some(v),
                        Answer::Failed(f) => Some(failure_body(&f)),
                        Answer::BadInput(e) => Some(json!({"error": e.to_string()})),
                    };
                    match last.as_ref().and_then(|v| v.get("error")) {
                        Some(e) => tracing::error!(elapsed_ms, "streamed request failed: {e}"),
                        None => tracing::info!(elapsed_ms, "streamed request completed"),
                    }
                    if let Some(v) = last {
                        let _ = out.send(line(&v)).await;
                    }
                    cancel_on_drop.disarm();
                    return;
                }
                _ = out.closed() => return,
            }
        }
    };
    tokio::spawn(pump.instrument(span));
    let body = Body::from_stream(futures::stream::poll_fn(move |cx| {
        lines.poll_recv(cx).map(|b| b.map(Ok::<_, std::convert::Infallible>))
    }));
    ([(header::CONTENT_TYPE, HeaderValue::from_static("application/x-ndjson"))], body).into_response()
}

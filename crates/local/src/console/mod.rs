//! The console: a web page at `/` to send requests and watch jobs, as the request tab of
//! Runpod's console does, and the few routes only it uses.
//!
//! The page (`console/` next to this crate's `src/`) is plain HTML, CSS and one script, embedded
//! in the binary; it loads nothing from elsewhere. It talks to the client API like any other
//! client (`/run`, `/runsync`, `/cancel`, `/retry`) and adds, under `/console/api/` and behind the
//! API key like every API route:
//! - `GET request`: the request to start from (`test_input.json` of the working directory);
//! - `POST check`: checks a request body with the very code `/run` uses, without queueing it
//!   (with the worker's schema, every field that breaks it);
//! - `GET jobs`: the newest jobs (status and times only) and the endpoint's health, polled;
//! - `GET jobs/{id}/events`: one job as it changes (status, progress, every chunk, its log
//!   lines), as server-sent events; reading it takes nothing from `/stream`.
//!
//! Only the page, its files and `GET /console/info` (the endpoint id, whether a key is needed,
//! and the worker's input schema for the form) are served without the key.

mod logs;
mod watch;

pub use logs::JobLogs;
pub(crate) use logs::LogBook;

use crate::error::ApiError;
use crate::jobs::{check_request, Jobs};
use axum::body::Body;
use axum::extract::{FromRef, State};
use axum::http::header::{CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, X_CONTENT_TYPE_OPTIONS};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use runpod_protocol::JobRequest;
use serde_json::{json, Value};
use std::sync::Arc;
use tokio::time::Instant;

/// The request the editor starts with, read from the working directory when there.
const TEST_INPUT_FILE: &str = "test_input.json";
/// The editor's request when there is no `test_input.json`.
const EMPTY_REQUEST: &str = "{\n  \"input\": {}\n}\n";
/// Schema violations `check` lists at most.
const MAX_VIOLATIONS: usize = 50;
/// Jobs the requests list shows, newest first.
const LISTED_JOBS: usize = 50;

const INDEX_HTML: &str = include_str!("../../console/index.html");
const APP_JS: &str = include_str!("../../console/app.js");
const FORM_JS: &str = include_str!("../../console/form.js");
const APP_CSS: &str = include_str!("../../console/app.css");

/// Only this origin's files and requests, no inline script or style, no framing.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   connect-src 'self'; form-action 'none'; frame-ancestors 'none'; base-uri 'none'";

/// The page and its files: served without the API key (they hold no data).
pub(crate) fn public_routes<S>() -> Router<S>
where
    S: Clone + Send + Sync + 'static,
    Jobs: FromRef<S>,
    Arc<LogBook>: FromRef<S>,
{
    Router::new()
        .route("/", get(|| async { asset("text/html; charset=utf-8", INDEX_HTML) }))
        .route("/console/app.js", get(|| async { asset("text/javascript; charset=utf-8", APP_JS) }))
        .route("/console/form.js", get(|| async { asset("text/javascript; charset=utf-8", FORM_JS) }))
        .route("/console/app.css", get(|| async { asset("text/css; charset=utf-8", APP_CSS) }))
        .route("/console/info", get(info))
}

/// The page's own API: mounted with the client API, behind the same key check.
pub(crate) fn api_routes<S>() -> Router<S>
where
    S: Clone + Send + Sync + 'static,
    Jobs: FromRef<S>,
    Arc<LogBook>: FromRef<S>,
{
    Router::new()
        .route("/console/api/request", get(start_request))
        .route("/console/api/check", post(check))
        .route("/console/api/jobs", get(jobs))
        .route("/console/api/jobs/{id}/events", get(watch::events))
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    let headers = [
        (CONTENT_TYPE, content_type),
        (CACHE_CONTROL, "no-cache"),
        (CONTENT_SECURITY_POLICY, CSP),
        (X_CONTENT_TYPE_OPTIONS, "nosniff"),
    ];
    (headers, body).into_response()
}

/// `GET /console/info`: what the page needs before it can call the API.
async fn info(State(jobs): State<Jobs>, State(logs): State<Arc<LogBook>>) -> Json<Value> {
    Json(json!({
        "endpointId": jobs.cfg().endpoint_id,
        "keyRequired": jobs.cfg().api_key.is_some(),
        "logs": logs.enabled(),
        // The worker's input schema, for the request tab's form (null: none known).
        "inputSchema": jobs.cfg().schema.as_ref().map(|s| s.input.clone()),
    }))
}

/// `GET /console/api/request`: `{"text", "source"}`, the editor's first request: the text of
/// `test_input.json` (`source` names it) or `{"input": {}}` (`source` null). Read on each call,
/// so a reload picks up an edited file.
async fn start_request(State(jobs): State<Jobs>) -> Json<Value> {
    let max_run_bytes = jobs.cfg().max_run_bytes;
    let empty = |note: Option<String>| json!({"text": EMPTY_REQUEST, "source": null, "note": note});
    let answer = match tokio::fs::read(TEST_INPUT_FILE).await {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => empty(None),
        Err(e) => empty(Some(format!("cannot read {TEST_INPUT_FILE}: {e}"))),
        Ok(bytes) if bytes.len() > max_run_bytes => {
            empty(Some(format!("{TEST_INPUT_FILE} is larger than the /run limit of {max_run_bytes} bytes")))
        }
        Ok(bytes) => match String::from_utf8(bytes) {
            Ok(text) => json!({"text": text, "source": TEST_INPUT_FILE, "note": null}),
            Err(_) => empty(Some(format!("{TEST_INPUT_FILE} is not UTF-8 text"))),
        },
    };
    Json(answer)
}

/// `POST /console/api/check`: `{"ok": true}` when `/run` would accept this body (queue room
/// and rate limits aside), else the very `400` `/run` would answer; when the input breaks the
/// worker's schema, that `400` also lists each violation (`violations: [{path, message}]`),
/// for the form to show next to its field.
async fn check(State(jobs): State<Jobs>, body: Body) -> Result<Response, ApiError> {
    let cfg = jobs.cfg();
    let (req, _): (JobRequest, usize) =
        crate::request::read_json(body, cfg.max_run_bytes, cfg.body_timeout).await?;
    if let Some(schema) = &cfg.schema {
        let found = schema.input_violations(&req.input, MAX_VIOLATIONS);
        if let Some(first) = found.first() {
            let violations: Vec<Value> =
                found.iter().map(|v| json!({"path": v.path, "message": v.message})).collect();
            let body = json!({"error": first.to_string(), "violations": violations});
            return Ok((axum::http::StatusCode::BAD_REQUEST, Json(body)).into_response());
        }
    }
    check_request(cfg, &req)?;
    req.validate().map_err(|e| ApiError::BadRequest(e.to_string()))?;
    Ok(Json(json!({"ok": true})).into_response())
}

/// `GET /console/api/jobs`: `{"jobs": [...], "health": {...}}`, the newest jobs first, each
/// with its id, status, times and worker, never its input, webhook or `s3Config`.
async fn jobs(State(jobs): State<Jobs>) -> Json<Value> {
    let now = Instant::now();
    let (rows, total, health) = jobs.list(LISTED_JOBS);
    let jobs: Vec<Value> = rows
        .into_iter()
        .map(|(s, submitted_at)| {
            json!({
                "id": s.id,
                "status": s.status,
                "ageMs": now.saturating_duration_since(submitted_at).as_millis() as u64,
                "delayTime": s.delay_time,
                "executionTime": s.execution_time,
                "workerId": s.worker_id,
            })
        })
        .collect();
    Json(json!({"jobs": jobs, "total": total, "health": health}))
}

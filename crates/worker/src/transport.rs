//! The worker API over HTTP: job-take, job-stop, job-done, job-stream.

use crate::config::{with_query, Config};
use runpod_protocol::{Job as WireJob, JobDone, JobsToStop, StreamPost};
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;

/// The version reported in pings and error reports.
pub(crate) const VERSION: &str = concat!("runpod-rs/", env!("CARGO_PKG_VERSION"));

/// How long a long poll (job-take, job-stop) may be held before the worker asks again.
const LONG_POLL_TIMEOUT: Duration = Duration::from_secs(100);
/// How long one post may take.
const POST_TIMEOUT: Duration = Duration::from_secs(60);

/// What a job-take returned.
#[derive(Debug)]
pub(crate) enum Take {
    /// Jobs to run; `bad` are ids of jobs that came without `input` (to be failed).
    Jobs { jobs: Vec<WireJob>, bad: Vec<(String, String)> },
    /// No job (204, 400, or an empty answer).
    Empty,
    /// 429: back off.
    TooMany,
}

/// A failed worker-API call.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub(crate) struct ApiError {
    /// The HTTP status, when there was an answer.
    pub(crate) status: Option<u16>,
    pub(crate) message: String,
}

impl ApiError {
    /// Whether trying again may succeed: no answer, 408, 429 or 5xx.
    pub(crate) fn retryable(&self) -> bool {
        match self.status {
            None => true,
            Some(s) => s == 408 || s == 429 || s >= 500,
        }
    }

    fn from_reqwest(e: reqwest::Error) -> ApiError {
        // reqwest's Display can include the URL; our URLs carry no secrets (the key is a header).
        let mut message = e.to_string();
        let mut source = std::error::Error::source(&e);
        while let Some(s) = source {
            message.push_str(": ");
            message.push_str(&s.to_string());
            source = s.source();
        }
        ApiError { status: e.status().map(|s| s.as_u16()), message }
    }
}

/// An HTTP client builder for the worker API. When no worker URL is `https` (a local
/// endpoint), the system's CA bundle is not loaded: parsing it was 95 % of start-up
/// (callgrind: 25.8 M of 27 M instructions to the first job-take, for two clients).
pub(crate) fn client_builder(cfg: &Config) -> reqwest::ClientBuilder {
    let builder = reqwest::Client::builder().user_agent(concat!("runpod-worker/", env!("CARGO_PKG_VERSION")));
    let urls = [&cfg.job_take_url, &cfg.job_done_url, &cfg.job_stream_url, &cfg.ping_url];
    if urls.iter().any(|u| u.get(..6).is_some_and(|s| s.eq_ignore_ascii_case("https:"))) {
        builder
    } else {
        builder.tls_certs_only(std::iter::empty())
    }
}

/// A client for one worker's part of the worker API.
#[derive(Clone)]
pub(crate) struct Api {
    client: reqwest::Client,
    cfg: Arc<Config>,
}

impl Api {
    pub(crate) fn new(cfg: Arc<Config>) -> Api {
        let client = client_builder(&cfg)
            .connect_timeout(Duration::from_secs(10))
            .build()
            .expect("a reqwest client with no custom TLS builds");
        Api { client, cfg }
    }

    fn auth(&self, req: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match &self.cfg.api_key {
            Some(k) => req.header(reqwest::header::AUTHORIZATION, k.expose()),
            None => req,
        }
    }

    /// Asks for up to `n` jobs (the batch route when `n > 1`), holding a long poll.
    pub(crate) async fn take(&self, n: usize, job_in_progress: bool) -> Result<Take, ApiError> {
        let in_progress = if job_in_progress { "1" } else { "0" };
        let url = if n > 1 {
            let batch = n.to_string();
            let base = self.cfg.job_take_url.replace("/job-take/", "/job-take-batch/");
            with_query(&base, &[("batch_size", &batch), ("job_in_progress", in_progress)])
        } else {
            with_query(&self.cfg.job_take_url, &[("job_in_progress", in_progress)])
        };
        let resp = self
            .auth(self.client.get(&url))
            .timeout(LONG_POLL_TIMEOUT)
            .send()
            .await
            .map_err(ApiError::from_reqwest)?;
        match resp.status().as_u16() {
            204 | 400 => return Ok(Take::Empty),
            429 => return Ok(Take::TooMany),
            s if !(200..300).contains(&s) => {
                let body = resp.text().await.unwrap_or_default();
                return Err(ApiError {
                    status: Some(s),
                    message: format!("job-take answered {s}: {}", clip(&body)),
                });
            }
            _ => {}
        }
        let bytes = resp.bytes().await.map_err(ApiError::from_reqwest)?;
        if bytes.iter().all(|b| b.is_ascii_whitespace()) {
            return Ok(Take::Empty);
        }
        let value: Value = serde_json::from_slice(&bytes).map_err(|e| ApiError {
            status: None,
            message: format!("job-take answer is not JSON ({e}): {}", clip(&String::from_utf8_lossy(&bytes))),
        })?;
        Ok(parse_jobs(value))
    }

    /// Long-polls the stop channel; `Ok(None)` on 429.
    pub(crate) async fn stop_signals(&self, url: &str) -> Result<Option<Vec<String>>, ApiError> {
        let resp = self
            .auth(self.client.get(url))
            .timeout(LONG_POLL_TIMEOUT)
            .send()
            .await
            .map_err(ApiError::from_reqwest)?;
        match resp.status().as_u16() {
            204 => Ok(Some(Vec::new())),
            429 => Ok(None),
            s if !(200..300).contains(&s) => {
                Err(ApiError { status: Some(s), message: format!("job-stop answered {s}") })
            }
            _ => {
                let body: JobsToStop = resp.json().await.map_err(ApiError::from_reqwest)?;
                Ok(Some(body.jobs_to_stop))
            }
        }
    }

    /// Posts a progress update or a final result to job-done.
    pub(crate) async fn post_done(
        &self,
        job_id: &str,
        body: &JobDone,
        is_stream: bool,
    ) -> Result<(), ApiError> {
        let url =
            with_query(&self.cfg.job_done_url.replace("$ID", job_id), &[("isStream", bool_str(is_stream))]);
        self.post(&url, job_id, body).await
    }

    /// Posts one streamed chunk to job-stream.
    pub(crate) async fn post_stream(&self, job_id: &str, body: &StreamPost) -> Result<(), ApiError> {
        let url = with_query(&self.cfg.job_stream_url.replace("$ID", job_id), &[("isStream", "false")]);
        self.post(&url, job_id, body).await
    }

    async fn post(&self, url: &str, job_id: &str, body: &impl serde::Serialize) -> Result<(), ApiError> {
        let resp = self
            .auth(self.client.post(url))
            .header("X-Request-ID", job_id)
            .timeout(POST_TIMEOUT)
            .json(body)
            .send()
            .await
            .map_err(ApiError::from_reqwest)?;
        let s = resp.status().as_u16();
        if (200..300).contains(&s) {
            return Ok(());
        }
        let text = resp.text().await.unwrap_or_default();
        Err(ApiError { status: Some(s), message: format!("answered {s}: {}", clip(&text)) })
    }
}

fn bool_str(b: bool) -> &'static str {
    if b {
        "true"
    } else {
        "false"
    }
}

fn clip(s: &str) -> String {
    let s = s.trim();
    match s.char_indices().nth(300) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_owned(),
    }
}

/// Splits a job-take answer (one job object, or an array of them) into usable jobs and
/// malformed ones that still have an id (so they can be failed rather than lost).
pub(crate) fn parse_jobs(value: Value) -> Take {
    let items = match value {
        Value::Array(items) => items,
        Value::Null => return Take::Empty,
        other => vec![other],
    };
    let (mut jobs, mut bad) = (Vec::new(), Vec::new());
    for item in items {
        let id = item.get("id").and_then(Value::as_str).map(str::to_owned);
        match (id, serde_json::from_value::<WireJob>(item.clone())) {
            (Some(_), Ok(job)) => jobs.push(job),
            (Some(id), Err(e)) => bad.push((id, format!("malformed job from job-take: {e}"))),
            (None, _) => {
                tracing::error!("job-take returned a job without an id, dropped: {}", clip(&item.to_string()))
            }
        }
    }
    if jobs.is_empty() && bad.is_empty() {
        Take::Empty
    } else {
        Take::Jobs { jobs, bad }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parses_single_batch_and_malformed_jobs() {
        let Take::Jobs { jobs, bad } = parse_jobs(json!({"id": "a", "input": 1})) else { panic!() };
        assert_eq!((jobs.len(), bad.len()), (1, 0));
        let Take::Jobs { jobs, bad } = parse_jobs(
            json!([{"id": "a", "input": 1}, {"id": "b"}, {"input": 2}, {"id": "c", "input": null}]),
        ) else {
            panic!()
        };
        assert_eq!(jobs.iter().map(|j| j.id.as_str()).collect::<Vec<_>>(), ["a", "c"]);
        assert_eq!(bad.len(), 1);
        assert_eq!(bad[0].0, "b");
        assert!(bad[0].1.contains("input"), "{}", bad[0].1);
        assert!(matches!(parse_jobs(json!([])), Take::Empty));
    }

    #[test]
    fn retryable_statuses() {
        let e = |s| ApiError { status: s, message: String::new() };
        assert!(e(None).retryable() && e(Some(503)).retryable() && e(Some(429)).retryable());
        assert!(!e(Some(404)).retryable() && !e(Some(400)).retryable() && !e(Some(413)).retryable());
    }
}

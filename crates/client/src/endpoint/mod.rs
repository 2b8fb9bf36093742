//! [`Endpoint`]: one serverless endpoint, its routes, and how requests are sent and retried.

mod job;
mod stream;

pub use job::JobHandle;

use crate::retry::parse_retry_after;
use crate::state::decode_body;
use crate::{Error, JobState, Request, RetryPolicy};
use bytes::{Bytes, BytesMut};
use reqwest::header::{HeaderValue, AUTHORIZATION, CONTENT_TYPE, LOCATION, RETRY_AFTER};
use reqwest::Method;
use runpod_protocol::limits::{
    DEFAULT_RUNSYNC_WAIT_MS, MAX_RUNSYNC_PAYLOAD_BYTES, MAX_RUNSYNC_WAIT_MS, MAX_RUN_PAYLOAD_BYTES,
    MIN_RUNSYNC_WAIT_MS,
};
use runpod_protocol::{Health, PurgeResponse, RunResponse, Secret, StatusResponse, StreamResponse};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};
use url::Url;

/// The platform's client API base.
pub const PLATFORM_BASE_URL: &str = "https://api.runpod.ai/v2";

/// Environment variable the API key is read from when none is given.
pub const API_KEY_ENV: &str = "RUNPOD_API_KEY";

/// Largest success answer read by default: 64 MiB, three times the largest the platform sends
/// (a `/runsync` answer with a 20 MB output). See [`Endpoint::with_max_answer_bytes`].
pub const DEFAULT_MAX_ANSWER_BYTES: usize = 64 * 1024 * 1024;

/// How much of an error answer's body is read (its message is cut to 500 characters anyway).
const MAX_ERROR_BODY_BYTES: usize = 64 * 1024;

/// A serverless endpoint: where to send requests, with which key, and how to retry.
///
/// Cheap to clone (the HTTP connection pool is shared). `Debug` shows the URL, never the key.
#[derive(Clone)]
pub struct Endpoint {
    inner: Arc<Inner>,
}

#[derive(Clone)]
struct Inner {
    http: reqwest::Client,
    base: Url,
    endpoint_id: String,
    api_key: Secret,
    retry: RetryPolicy,
    request_timeout: Duration,
    wait_timeout: Duration,
    runsync_wait: Duration,
    poll_min: Duration,
    poll_max: Duration,
    max_answer_bytes: usize,
}

impl fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Endpoint")
            .field("base_url", &self.inner.base.as_str())
            .field("endpoint_id", &self.inner.endpoint_id)
            .field("api_key", &self.inner.api_key)
            .field("retry", &self.inner.retry)
            .field("request_timeout", &self.inner.request_timeout)
            .finish()
    }
}

/// Whether sending a request twice could do something twice.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Safety {
    /// Repeating it changes nothing more: retry on 429, 5xx, timeouts and network errors.
    Idempotent,
    /// It queues a job: retry only when the server cannot have queued it (429, connect failure).
    QueuesJob,
}

impl Endpoint {
    /// The platform endpoint `endpoint_id` (`https://api.runpod.ai/v2/{endpoint_id}`).
    ///
    /// `api_key` `None` reads `RUNPOD_API_KEY`; [`Error::MissingApiKey`] when neither is there.
    /// [`Error::InvalidRequest`] when the id is empty or holds characters other than
    /// letters, digits, `-`, `_` and `.`.
    pub fn new(endpoint_id: impl Into<String>, api_key: Option<&str>) -> Result<Self, Error> {
        let endpoint_id = endpoint_id.into();
        if endpoint_id.is_empty()
            || !endpoint_id.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
            || endpoint_id.starts_with('.')
        {
            return Err(Error::InvalidRequest(format!("endpoint id {endpoint_id:?} is not valid")));
        }
        let api_key = match api_key {
            Some(k) => k.to_owned(),
            None => std::env::var(API_KEY_ENV).map_err(|_| Error::MissingApiKey)?,
        };
        if api_key.trim().is_empty() {
            return Err(Error::MissingApiKey);
        }
        // Redirects are not followed: the API never sends one, and following it would re-send the
        // key elsewhere or turn a POST /run into a GET; a 3xx is reported as `Error::Http`.
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("runpod-rs-client/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(Error::Network)?;
        Ok(Endpoint {
            inner: Arc::new(Inner {
                http,
                base: Url::parse(PLATFORM_BASE_URL).expect("constant URL"),
                endpoint_id,
                api_key: Secret::new(api_key),
                retry: RetryPolicy::default(),
                request_timeout: Duration::from_secs(30),
                wait_timeout: Duration::from_secs(600),
                runsync_wait: Duration::from_millis(DEFAULT_RUNSYNC_WAIT_MS),
                poll_min: Duration::from_millis(100),
                poll_max: Duration::from_secs(1),
                max_answer_bytes: DEFAULT_MAX_ANSWER_BYTES,
            }),
        })
    }

    /// Sends requests to `base_url` instead of the platform: the URL under which
    /// `{endpoint_id}/run` lives, e.g. `https://proxy.example/v2`. A URL with no path (such
    /// as `runpod_local::LocalEndpoint::base_url()`, `http://127.0.0.1:PORT`) gets `/v2` added.
    pub fn with_base_url(self, base_url: &str) -> Result<Self, Error> {
        let mut base = Url::parse(base_url.trim_end_matches('/'))
            .map_err(|e| Error::InvalidRequest(format!("base URL {base_url:?}: {e}")))?;
        if !matches!(base.scheme(), "http" | "https") || base.host().is_none() {
            return Err(Error::InvalidRequest(format!("base URL {base_url:?} must be http(s) with a host")));
        }
        if base.path() == "/" || base.path().is_empty() {
            base.set_path("/v2");
        }
        base.set_query(None);
        Ok(self.map(|i| i.base = base))
    }

    /// Replaces the retry policy (default: [`RetryPolicy::default`]).
    #[must_use]
    pub fn with_retry(self, retry: RetryPolicy) -> Self {
        self.map(|i| i.retry = retry)
    }

    /// Timeout of one HTTP request (default 30 s; `/runsync` gets its `wait` on top).
    #[must_use]
    pub fn with_request_timeout(self, d: Duration) -> Self {
        self.map(|i| i.request_timeout = d)
    }

    /// How long [`run_sync`](Self::run_sync) and [`JobHandle::wait`] wait by default (10 min).
    #[must_use]
    pub fn with_wait_timeout(self, d: Duration) -> Self {
        self.map(|i| i.wait_timeout = d)
    }

    /// Longest `?wait=` asked of `/runsync` (default 90 s, the platform's default; clamped
    /// to 1 s..300 s). A job not done by then is followed with `/status` polls.
    #[must_use]
    pub fn with_runsync_wait(self, d: Duration) -> Self {
        self.map(|i| i.runsync_wait = d)
    }

    /// Polling interval of `status`/`stream` while waiting: starts at `min`, grows by half
    /// each empty poll up to `max` (defaults 100 ms and 1 s).
    #[must_use]
    pub fn with_poll_interval(self, min: Duration, max: Duration) -> Self {
        self.map(|i| {
            i.poll_min = min;
            i.poll_max = max.max(min);
        })
    }

    /// Largest success answer read (default [`DEFAULT_MAX_ANSWER_BYTES`]); a larger one fails
    /// with [`Error::AnswerTooLarge`] as soon as its `Content-Length` says so, or once that
    /// many bytes arrived, so a wrong or hostile server cannot make the client hold more.
    #[must_use]
    pub fn with_max_answer_bytes(self, bytes: usize) -> Self {
        self.map(|i| i.max_answer_bytes = bytes)
    }

    fn map(self, f: impl FnOnce(&mut Inner)) -> Self {
        let mut inner = Arc::unwrap_or_clone(self.inner);
        f(&mut inner);
        Endpoint { inner: Arc::new(inner) }
    }

    /// The endpoint id.
    pub fn endpoint_id(&self) -> &str {
        &self.inner.endpoint_id
    }

    /// The endpoint's URL, e.g. `https://api.runpod.ai/v2/abc123`.
    pub fn url(&self) -> String {
        self.route(&[]).to_string()
    }

    /// The default wait of [`run_sync`](Self::run_sync) and [`JobHandle::wait`].
    pub fn wait_timeout(&self) -> Duration {
        self.inner.wait_timeout
    }

    /// Queues a job (`POST /run`) and returns its handle at once.
    ///
    /// Retried only on `429` and connection failures, so a job is never queued twice.
    pub async fn run<I: Serialize>(&self, request: &Request<I>) -> Result<JobHandle, Error> {
        let body = request.to_body(MAX_RUN_PAYLOAD_BYTES)?;
        let url = self.route(&["run"]);
        let answer =
            self.call(Method::POST, url, Some(body), self.inner.request_timeout, Safety::QueuesJob).await?;
        let r: RunResponse = decode_body(&answer, "run answer")?;
        Ok(JobHandle::new(self.clone(), r.id, r.status))
    }

    /// Queues a job and waits for it to end (`POST /runsync`, then `/status` polls when the
    /// server answers before the job is done), up to [`wait_timeout`](Self::wait_timeout).
    ///
    /// The answer is the final state: check `status`, or call [`JobState::into_output`].
    /// [`Error::WaitTimeout`] (with the job id) when it has not ended in time.
    pub async fn run_sync<I: Serialize, O: DeserializeOwned>(
        &self,
        request: &Request<I>,
    ) -> Result<JobState<O>, Error> {
        self.run_sync_timeout(request, self.inner.wait_timeout).await
    }

    /// [`run_sync`](Self::run_sync) with its own wait.
    pub async fn run_sync_timeout<I: Serialize, O: DeserializeOwned>(
        &self,
        request: &Request<I>,
        timeout: Duration,
    ) -> Result<JobState<O>, Error> {
        self.run_sync_with(request, timeout, |_| {}).await
    }

    /// [`run_sync_timeout`](Self::run_sync_timeout), calling `on_poll` with the `/runsync`
    /// answer and each `/status` poll after it (for a progress display).
    pub async fn run_sync_with<I: Serialize, O: DeserializeOwned>(
        &self,
        request: &Request<I>,
        timeout: Duration,
        mut on_poll: impl FnMut(&JobState<Value>),
    ) -> Result<JobState<O>, Error> {
        let started = Instant::now();
        let body = request.to_body(MAX_RUNSYNC_PAYLOAD_BYTES)?;
        let wait = timeout.min(self.inner.runsync_wait);
        let wait_ms = u64::try_from(wait.as_millis())
            .unwrap_or(u64::MAX)
            .clamp(MIN_RUNSYNC_WAIT_MS, MAX_RUNSYNC_WAIT_MS);
        let mut url = self.route(&["runsync"]);
        url.query_pairs_mut().append_pair("wait", &wait_ms.to_string());
        let http_timeout = Duration::from_millis(wait_ms) + self.inner.request_timeout;
        let answer = self.call(Method::POST, url, Some(body), http_timeout, Safety::QueuesJob).await?;
        let state = JobState::from_wire(decode_body::<StatusResponse>(&answer, "runsync answer")?);
        on_poll(&state);
        if state.status.is_final() {
            return state.decode();
        }
        let id = state.id.clone();
        self.wait_from(&id, started, timeout, Some(state), &mut on_poll).await
    }

    /// The job's current state (`GET /status/{id}`).
    pub async fn status<O: DeserializeOwned>(&self, job_id: &str) -> Result<JobState<O>, Error> {
        self.status_value(job_id).await?.decode()
    }

    async fn status_value(&self, job_id: &str) -> Result<JobState<Value>, Error> {
        let url = self.route(&["status", job_id]);
        let answer =
            self.call(Method::GET, url, None, self.inner.request_timeout, Safety::Idempotent).await?;
        Ok(JobState::from_wire(decode_body(&answer, "status answer")?))
    }

    /// Polls `/status/{id}` until the job ends or `timeout` passes ([`Error::WaitTimeout`],
    /// with the last status seen). Once a status is known, a poll still unanswered when the
    /// time is up ends the wait too; the first poll is bounded by the request timeout.
    pub async fn wait<O: DeserializeOwned>(
        &self,
        job_id: &str,
        timeout: Duration,
    ) -> Result<JobState<O>, Error> {
        self.wait_with(job_id, timeout, |_| {}).await
    }

    /// [`wait`](Self::wait), calling `on_poll` with each state seen (for a progress display).
    pub async fn wait_with<O: DeserializeOwned>(
        &self,
        job_id: &str,
        timeout: Duration,
        mut on_poll: impl FnMut(&JobState<Value>),
    ) -> Result<JobState<O>, Error> {
        self.wait_from(job_id, Instant::now(), timeout, None, &mut on_poll).await
    }

    async fn wait_from<O: DeserializeOwned>(
        &self,
        job_id: &str,
        started: Instant,
        timeout: Duration,
        mut last: Option<JobState<Value>>,
        on_poll: &mut dyn FnMut(&JobState<Value>),
    ) -> Result<JobState<O>, Error> {
        let mut interval = self.inner.poll_min;
        loop {
            if let Some(state) = &last {
                let elapsed = started.elapsed();
                if elapsed >= timeout {
                    return Err(Error::WaitTimeout {
                        id: job_id.to_owned(),
                        status: state.status,
                        waited: elapsed,
                    });
                }
                tokio::time::sleep(interval.min(timeout - elapsed)).await;
                interval = (interval * 3 / 2).min(self.inner.poll_max);
            }
            let state = match &last {
                Some(seen) => {
                    match tokio::time::timeout_at((started + timeout).into(), self.status_value(job_id)).await
                    {
                        Ok(polled) => polled?,
                        Err(_) => {
                            return Err(Error::WaitTimeout {
                                id: job_id.to_owned(),
                                status: seen.status,
                                waited: started.elapsed(),
                            })
                        }
                    }
                }
                None => self.status_value(job_id).await?,
            };
            on_poll(&state);
            if state.status.is_final() {
                return state.decode();
            }
            last = Some(state);
        }
    }

    /// One `GET /stream/{id}`: the chunks produced since the previous call, and the status.
    pub async fn stream_once(&self, job_id: &str) -> Result<StreamResponse, Error> {
        let url = self.route(&["stream", job_id]);
        let answer =
            self.call(Method::GET, url, None, self.inner.request_timeout, Safety::Idempotent).await?;
        decode_body(&answer, "stream answer")
    }

    /// The job's streamed chunks, each decoded into `T`, in order, until the job ends.
    ///
    /// The stream ends after the last chunk of a `COMPLETED` job; a job that ends `FAILED`,
    /// `CANCELLED` or `TIMED_OUT` yields [`Error::JobEnded`] last. A chunk that does not decode
    /// yields [`Error::Decode`] and the stream goes on; a request error ends it.
    pub fn stream<T: DeserializeOwned + Send + 'static>(
        &self,
        job_id: &str,
    ) -> impl futures::Stream<Item = Result<T, Error>> + Send + 'static {
        stream::chunks(self.clone(), job_id.to_owned(), self.inner.poll_min, self.inner.poll_max)
    }

    /// Cancels a queued or running job (`POST /cancel/{id}`); the answer is its new state.
    pub async fn cancel(&self, job_id: &str) -> Result<JobState<Value>, Error> {
        self.post_state("cancel", job_id).await
    }

    /// Re-queues a `FAILED` or `TIMED_OUT` job under the same id (`POST /retry/{id}`).
    pub async fn retry(&self, job_id: &str) -> Result<JobState<Value>, Error> {
        self.post_state("retry", job_id).await
    }

    async fn post_state(&self, route: &str, job_id: &str) -> Result<JobState<Value>, Error> {
        let url = self.route(&[route, job_id]);
        let answer =
            self.call(Method::POST, url, None, self.inner.request_timeout, Safety::Idempotent).await?;
        Ok(JobState::from_wire(decode_body(&answer, &format!("{route} answer"))?))
    }

    /// Drops every queued (not running) job (`POST /purge-queue`).
    pub async fn purge_queue(&self) -> Result<PurgeResponse, Error> {
        let url = self.route(&["purge-queue"]);
        let answer =
            self.call(Method::POST, url, None, self.inner.request_timeout, Safety::Idempotent).await?;
        decode_body(&answer, "purge-queue answer")
    }

    /// Job and worker counters (`GET /health`).
    pub async fn health(&self) -> Result<Health, Error> {
        let url = self.route(&["health"]);
        let answer =
            self.call(Method::GET, url, None, self.inner.request_timeout, Safety::Idempotent).await?;
        decode_body(&answer, "health answer")
    }

    /// `{base}/{endpoint_id}/{segments...}`, each segment percent-encoded.
    fn route(&self, segments: &[&str]) -> Url {
        let mut url = self.inner.base.clone();
        url.path_segments_mut()
            .expect("http(s) base URL")
            .pop_if_empty()
            .push(&self.inner.endpoint_id)
            .extend(segments);
        url
    }

    /// Sends a request, retrying as `safety` and the retry policy allow.
    async fn call(
        &self,
        method: Method,
        url: Url,
        body: Option<Vec<u8>>,
        timeout: Duration,
        safety: Safety,
    ) -> Result<Bytes, Error> {
        let body = body.map(Bytes::from);
        let mut attempt = 0;
        loop {
            let result = self.send_once(method.clone(), url.clone(), body.clone(), timeout).await;
            let err = match result {
                Ok(b) => return Ok(b),
                Err(e) => e,
            };
            let retryable = match (&err, safety) {
                (Error::RateLimited { .. }, _) => true,
                (Error::Network(e), Safety::QueuesJob) => e.is_connect(),
                (Error::Server { .. } | Error::RequestTimeout(_) | Error::Network(_), Safety::Idempotent) => {
                    true
                }
                _ => false,
            };
            if !retryable || attempt >= self.inner.retry.max_retries {
                return Err(err);
            }
            let retry_after = match &err {
                Error::RateLimited { retry_after, .. } => *retry_after,
                _ => None,
            };
            let Some(delay) = self.inner.retry.delay(attempt, retry_after) else {
                return Err(err);
            };
            let error = crate::error::with_sources(&err);
            tracing::debug!(%method, path = url.path(), attempt, ?delay, %error, "retrying");
            tokio::time::sleep(delay).await;
            attempt += 1;
        }
    }

    async fn send_once(
        &self,
        method: Method,
        url: Url,
        body: Option<Bytes>,
        timeout: Duration,
    ) -> Result<Bytes, Error> {
        let mut auth =
            HeaderValue::from_str(&format!("Bearer {}", self.inner.api_key.expose())).map_err(|_| {
                Error::InvalidRequest("the API key holds characters not allowed in a header".into())
            })?;
        auth.set_sensitive(true);
        let mut req = self.inner.http.request(method, url).header(AUTHORIZATION, auth).timeout(timeout);
        if let Some(b) = body {
            req = req.header(CONTENT_TYPE, "application/json").body(b);
        }
        let resp = req.send().await.map_err(Error::from_transport)?;
        let status = resp.status().as_u16();
        if (300..400).contains(&status) {
            let location = resp.headers().get(LOCATION).and_then(|v| v.to_str().ok());
            return Err(Error::redirect(status, location));
        }
        let retry_after =
            resp.headers().get(RETRY_AFTER).and_then(|v| v.to_str().ok()).and_then(parse_retry_after);
        if (200..300).contains(&status) {
            read_body(resp, self.inner.max_answer_bytes, Overflow::Fail).await
        } else {
            let body = read_body(resp, MAX_ERROR_BODY_BYTES, Overflow::Cut).await?;
            Err(Error::from_answer(status, &body, retry_after))
        }
    }
}

/// What [`read_body`] does with a body over its limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Overflow {
    /// Fail with [`Error::AnswerTooLarge`].
    Fail,
    /// Keep the first `limit` bytes.
    Cut,
}

/// Reads a body, never holding more than `limit` bytes of it.
async fn read_body(mut resp: reqwest::Response, limit: usize, overflow: Overflow) -> Result<Bytes, Error> {
    if overflow == Overflow::Fail && resp.content_length().is_some_and(|n| n > limit as u64) {
        return Err(Error::AnswerTooLarge { limit });
    }
    let mut body = BytesMut::new();
    while let Some(chunk) = resp.chunk().await.map_err(Error::from_transport)? {
        let room = limit - body.len();
        if chunk.len() > room {
            if overflow == Overflow::Fail {
                return Err(Error::AnswerTooLarge { limit });
            }
            body.extend_from_slice(&chunk[..room]);
            break;
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_and_debug() {
        let ep = Endpoint::new("abc-123", Some("sk_live_SECRET")).unwrap();
        assert_eq!(ep.url(), "https://api.runpod.ai/v2/abc-123");
        assert_eq!(
            ep.route(&["status", "a b/c"]).as_str(),
            "https://api.runpod.ai/v2/abc-123/status/a%20b%2Fc"
        );
        let dbg = format!("{ep:?}");
        assert!(!dbg.contains("SECRET") && dbg.contains("redacted"), "{dbg}");

        let local = ep.clone().with_base_url("http://127.0.0.1:8080").unwrap();
        assert_eq!(local.url(), "http://127.0.0.1:8080/v2/abc-123");
        let proxy = ep.with_base_url("https://proxy.example/runpod/v2/").unwrap();
        assert_eq!(proxy.url(), "https://proxy.example/runpod/v2/abc-123");
        assert!(proxy.clone().with_base_url("ftp://x").is_err());
        assert!(proxy.with_base_url("nonsense").is_err());
    }

    #[test]
    fn bad_ids_and_keys_are_refused() {
        assert!(matches!(Endpoint::new("", Some("k")), Err(Error::InvalidRequest(_))));
        assert!(matches!(Endpoint::new("a/b", Some("k")), Err(Error::InvalidRequest(_))));
        assert!(matches!(Endpoint::new("..", Some("k")), Err(Error::InvalidRequest(_))));
        assert!(matches!(Endpoint::new("ok", Some(" ")), Err(Error::MissingApiKey)));
    }
}

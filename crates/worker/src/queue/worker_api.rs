//! The worker's side of the worker API over HTTP (runpod-local's `worker_api` is the
//! endpoint's side): job-take, job-stop, job-done, job-stream.

use crate::config::{with_query, Config};
use crate::queue::http::{self, Request, Response};
use runpod_protocol::{Job as WireJob, JobDone, JobsToStop, StreamPost};
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;
use url::Url;

use crate::version::SDK_VERSION;

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
    /// Never worth retrying (the request could not even be built).
    pub(crate) permanent: bool,
    pub(crate) message: String,
}

impl ApiError {
    /// Whether trying again may succeed: no answer, 408, 429 or 5xx.
    pub(crate) fn retryable(&self) -> bool {
        if self.permanent {
            return false;
        }
        match self.status {
            None => true,
            Some(s) => s == 408 || s == 429 || s >= 500,
        }
    }
}

impl From<http::SendError> for ApiError {
    fn from(e: http::SendError) -> ApiError {
        ApiError { status: None, permanent: e.permanent, message: e.message }
    }
}

/// A client for one worker's part of the worker API.
#[derive(Clone)]
pub(crate) struct Api {
    client: http::Client,
    cfg: Arc<Config>,
    urls: Arc<Urls>,
}

/// The worker-API URLs, parsed once: a full URL parse per request was a fifth of the
/// worker's instructions per job (callgrind).
struct Urls {
    /// `job-take` with `job_in_progress=0` and `=1`.
    take: [Option<Url>; 2],
    /// `job-take-batch`, and its query before `batch_size`.
    take_batch: Option<(Url, String)>,
    done: JobUrl,
    stream: JobUrl,
}

impl Api {
    pub(crate) fn new(cfg: Arc<Config>) -> Api {
        let client = http::Client::new(&cfg);
        let take =
            ["0", "1"].map(|p| Url::parse(&with_query(&cfg.job_take_url, &[("job_in_progress", p)])).ok());
        let batch = cfg.job_take_url.replace("/job-take/", "/job-take-batch/");
        let take_batch = Url::parse(&batch).ok().map(|u| {
            let query = u.query().map(|q| format!("{q}&")).unwrap_or_default();
            (u, query)
        });
        let urls = Urls {
            take,
            take_batch,
            done: JobUrl::new(&cfg.job_done_url, ["isStream=false", "isStream=true"]),
            stream: JobUrl::new(&cfg.job_stream_url, ["isStream=false", "isStream=false"]),
        };
        Api { client, cfg, urls: Arc::new(urls) }
    }

    /// Sends a GET (or a POST when `json` is given) with the API key.
    async fn send(
        &self,
        url: &Url,
        json: Option<Vec<u8>>,
        request_id: Option<&str>,
        timeout: Duration,
    ) -> Result<Response, ApiError> {
        let auth = self.cfg.api_key.as_ref().map(|k| k.expose());
        Ok(self.client.send(Request { url, json, auth, request_id, timeout }).await?)
    }

    /// Asks for up to `n` jobs (the batch route when `n > 1`), holding a long poll.
    pub(crate) async fn take(&self, n: usize, job_in_progress: bool) -> Result<Take, ApiError> {
        let in_progress = if job_in_progress { "1" } else { "0" };
        let url = match (&self.urls.take[usize::from(job_in_progress)], &self.urls.take_batch) {
            (Some(url), _) if n <= 1 => std::borrow::Cow::Borrowed(url),
            (_, Some((base, query))) if n > 1 => {
                let mut url = base.clone();
                url.set_query(Some(&format!("{query}batch_size={n}&job_in_progress={in_progress}")));
                std::borrow::Cow::Owned(url)
            }
            _ => {
                let raw = if n <= 1 {
                    with_query(&self.cfg.job_take_url, &[("job_in_progress", in_progress)])
                } else {
                    let base = self.cfg.job_take_url.replace("/job-take/", "/job-take-batch/");
                    with_query(&base, &[("batch_size", &n.to_string()), ("job_in_progress", in_progress)])
                };
                std::borrow::Cow::Owned(Url::parse(&raw).map_err(|e| ApiError {
                    status: None,
                    permanent: true,
                    message: format!("bad job-take URL: {e}"),
                })?)
            }
        };
        let resp = self.send(&url, None, None, LONG_POLL_TIMEOUT).await?;
        match resp.status {
            204 | 400 => return Ok(Take::Empty),
            429 => return Ok(Take::TooMany),
            s if !(200..300).contains(&s) => {
                return Err(ApiError {
                    status: Some(s),
                    permanent: false,
                    message: format!("job-take answered {s}: {}", clip(&String::from_utf8_lossy(&resp.body))),
                });
            }
            _ => {}
        }
        let bytes = resp.body;
        if bytes.iter().all(|b| b.is_ascii_whitespace()) {
            return Ok(Take::Empty);
        }
        let value: Value = serde_json::from_slice(&bytes).map_err(|e| ApiError {
            status: None,
            permanent: false,
            message: format!("job-take answer is not JSON ({e}): {}", clip(&String::from_utf8_lossy(&bytes))),
        })?;
        Ok(parse_jobs(value))
    }

    /// Long-polls the stop channel; `Ok(None)` on 429.
    pub(crate) async fn stop_signals(&self, url: &str) -> Result<Option<Vec<String>>, ApiError> {
        let url = Url::parse(url).map_err(|e| ApiError {
            status: None,
            permanent: true,
            message: format!("bad job-stop URL: {e}"),
        })?;
        let resp = self.send(&url, None, None, LONG_POLL_TIMEOUT).await?;
        match resp.status {
            204 => Ok(Some(Vec::new())),
            429 => Ok(None),
            s if !(200..300).contains(&s) => {
                Err(ApiError { status: Some(s), permanent: false, message: format!("job-stop answered {s}") })
            }
            _ => {
                let body: JobsToStop = serde_json::from_slice(&resp.body).map_err(|e| ApiError {
                    status: None,
                    permanent: false,
                    message: format!("job-stop answer is not the expected JSON: {e}"),
                })?;
                Ok(Some(body.jobs_to_stop))
            }
        }
    }

    /// Tells the platform this worker failed a fitness check, as the Python SDK 1.12 does: one
    /// GET of the ping URL with `status=unhealthy`, the check's name and its reason (cut to
    /// 256 characters), within 2 s. Best effort: a failure is only logged.
    pub(crate) async fn report_unhealthy(&self, failure: &crate::fitness::FitnessFailure) {
        let Ok(mut url) = Url::parse(&self.cfg.ping_url) else { return };
        let reason: String = failure.reason.chars().take(256).collect();
        url.query_pairs_mut()
            .append_pair("status", "unhealthy")
            .append_pair("check", &failure.check)
            .append_pair("reason", &reason)
            .append_pair("runpod_version", SDK_VERSION);
        match self.send(&url, None, None, Duration::from_secs(2)).await {
            Ok(r) if (200..300).contains(&r.status) => tracing::info!("reported unhealthy to the platform"),
            Ok(r) => tracing::warn!("the unhealthy report answered {}", r.status),
            Err(e) => tracing::warn!("the unhealthy report was not sent: {e}"),
        }
    }

    /// Posts a progress update or a final result to job-done.
    pub(crate) async fn post_done(
        &self,
        job_id: &str,
        body: &JobDone,
        is_stream: bool,
    ) -> Result<(), ApiError> {
        let url = self.urls.done.for_job(job_id, is_stream)?;
        self.post(url, job_id, body).await
    }

    /// Posts one streamed chunk to job-stream.
    pub(crate) async fn post_stream(&self, job_id: &str, body: &StreamPost) -> Result<(), ApiError> {
        let url = self.urls.stream.for_job(job_id, false)?;
        self.post(url, job_id, body).await
    }

    async fn post(&self, url: Url, job_id: &str, body: &impl serde::Serialize) -> Result<(), ApiError> {
        let json = serde_json::to_vec(body).map_err(|e| ApiError {
            status: None,
            permanent: true,
            message: format!("cannot serialize the post for job {:?}: {e}", encode_id(job_id)),
        })?;
        // Percent-encoded like the URL: a header value cannot hold every id as it is.
        let id = encode_id(job_id);
        let resp = self.send(&url, Some(json), Some(&id), POST_TIMEOUT).await?;
        let s = resp.status;
        if (200..300).contains(&s) {
            return Ok(());
        }
        let text = String::from_utf8_lossy(&resp.body);
        Err(ApiError { status: Some(s), permanent: false, message: format!("answered {s}: {}", clip(&text)) })
    }
}

/// A job URL template (`.../job-done/w1/$ID?gpu=..`): when `$ID` is its last path segment
/// (always, on the platform and with runpod-local), the part before it is parsed once and each
/// job's URL is that, plus the encoded id, plus a prepared query.
struct JobUrl {
    template: String,
    /// The URL up to `$ID`, and the full query for `is_stream` false and true.
    fast: Option<(Url, [String; 2])>,
    /// What is appended to the query (`isStream=...`) for false and true.
    extra: [&'static str; 2],
}

impl JobUrl {
    fn new(template: &str, extra: [&'static str; 2]) -> JobUrl {
        let fast = template.split_once("$ID").and_then(|(prefix, suffix)| {
            let query = match suffix.strip_prefix('?') {
                Some(q) if !q.contains("$ID") && !q.contains('#') => q,
                None if suffix.is_empty() => "",
                _ => return None,
            };
            let base = Url::parse(prefix).ok().filter(|u| {
                prefix.ends_with('/')
                    && u.query().is_none()
                    && u.fragment().is_none()
                    && !u.cannot_be_a_base()
            })?;
            let full = |e: &str| if query.is_empty() { e.to_owned() } else { format!("{query}&{e}") };
            Some((base, [full(extra[0]), full(extra[1])]))
        });
        JobUrl { template: template.to_owned(), fast, extra }
    }

    /// The URL for job `id`, percent-encoded as one path segment. `.` and `..` cannot be
    /// (URL parsers resolve them, even encoded), so they are refused for good.
    fn for_job(&self, id: &str, is_stream: bool) -> Result<Url, ApiError> {
        if matches!(id, "." | "..") {
            return Err(ApiError {
                status: None,
                permanent: true,
                message: format!("job id {id:?} cannot be sent in a URL path"),
            });
        }
        let i = usize::from(is_stream);
        if let Some((base, queries)) = &self.fast {
            let mut url = base.clone();
            if let Ok(mut segments) = url.path_segments_mut() {
                // Encodes `/`, `?`, `#`, `%`, spaces, controls and non-ASCII.
                segments.pop_if_empty().push(id);
            }
            url.set_query(Some(&queries[i]));
            return Ok(url);
        }
        let raw = self.template.replace("$ID", &encode_id(id));
        let sep = if raw.contains('?') { '&' } else { '?' };
        Url::parse(&format!("{raw}{sep}{}", self.extra[i])).map_err(|e| ApiError {
            status: None,
            permanent: true,
            message: format!("cannot build the URL for job {:?}: {e}", encode_id(id)),
        })
    }
}

/// Percent-encodes everything in `id` but ASCII letters, digits and `-._~` (ids the platform
/// makes, UUIDs, come out unchanged).
pub(crate) fn encode_id(id: &str) -> std::borrow::Cow<'_, str> {
    let keep = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~');
    if id.bytes().all(keep) {
        return std::borrow::Cow::Borrowed(id);
    }
    let mut out = String::with_capacity(id.len() * 3);
    for b in id.bytes() {
        if keep(b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    std::borrow::Cow::Owned(out)
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
    fn job_urls_encode_the_id() {
        let t = JobUrl::new("http://h:1/v2/ep/job-done/w1/$ID?gpu=x", ["isStream=false", "isStream=true"]);
        assert!(t.fast.is_some());
        let u = t.for_job("abc-1", true).unwrap();
        assert_eq!(u.as_str(), "http://h:1/v2/ep/job-done/w1/abc-1?gpu=x&isStream=true");
        let u = t.for_job("a/b?c#d% é", false).unwrap();
        assert_eq!(u.path(), "/v2/ep/job-done/w1/a%2Fb%3Fc%23d%25%20%C3%A9");
        assert_eq!(u.query(), Some("gpu=x&isStream=false"));
        assert_eq!(u.fragment(), None);
        // A template where $ID is not the last segment takes the slow path, same encoding.
        let t = JobUrl::new("http://h/done/$ID/x", ["isStream=false", "isStream=true"]);
        assert!(t.fast.is_none());
        let u = t.for_job("a/b", true).unwrap();
        assert_eq!(u.as_str(), "http://h/done/a%2Fb/x?isStream=true");
        assert!(!t.for_job("..", false).unwrap_err().retryable());
        assert_eq!(encode_id("sync-0f3c_A.~"), "sync-0f3c_A.~");
        assert_eq!(encode_id("é\\n"), "%C3%A9%5Cn");
    }

    #[test]
    fn retryable_statuses() {
        let e = |s| ApiError { status: s, permanent: false, message: String::new() };
        assert!(e(None).retryable() && e(Some(503)).retryable() && e(Some(429)).retryable());
        assert!(!e(Some(404)).retryable() && !e(Some(400)).retryable() && !e(Some(413)).retryable());
    }
}

//! How a handler's result becomes a job-done body (the Python SDK's rules), error reports,
//! and the platform's size limits.

use crate::version::SDK_VERSION;
use crate::Failure;
use runpod_protocol::limits::{MAX_RUNSYNC_PAYLOAD_BYTES, MAX_RUN_PAYLOAD_BYTES};
use runpod_protocol::{ErrorReport, JobDone};
use serde_json::Value;

/// Who reports an error: fills the `hostname` and `worker_id` of error reports.
#[derive(Debug, Clone)]
pub(crate) struct Reporter {
    pub(crate) hostname: String,
    pub(crate) worker_id: String,
}

impl Reporter {
    /// A failed job-done whose `error` is the SDK's JSON error report of `failure`.
    pub(crate) fn failure(&self, failure: Failure) -> JobDone {
        let Failure { error_type, error_message, error_traceback } = failure;
        let report = ErrorReport {
            error_type,
            error_message,
            error_traceback: error_traceback.unwrap_or_default(),
            hostname: self.hostname.clone(),
            worker_id: self.worker_id.clone(),
            runpod_version: SDK_VERSION.to_owned(),
        };
        let text = serde_json::to_string(&report).unwrap_or_else(|_| report.error_message.clone());
        JobDone::error(text)
    }
}

/// Maps a handler's output as the Python SDK does: in an object, `error` fails the job and
/// `refresh_worker: true` sets `stopPod`; the rest is the output, and an empty object is
/// dropped. Any other value is the output as is.
pub(crate) fn map_output(value: Value) -> JobDone {
    match value {
        Value::Object(mut map) => {
            let error = map.remove("error");
            let refresh = map.remove("refresh_worker");
            let mut done = JobDone::default();
            if !map.is_empty() {
                done.output = Some(Value::Object(map));
            }
            if let Some(e) = error.filter(truthy) {
                done.error = Some(match e {
                    Value::String(s) => s,
                    other => other.to_string(),
                });
            }
            if refresh.is_some_and(|r| truthy(&r)) {
                done.stop_pod = Some(true);
            }
            done
        }
        other => JobDone::output(other),
    }
}

fn truthy(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64() != Some(0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
    }
}

/// The largest result body for a job: 20 MB for `/runsync` jobs (ids `sync-…`), else 10 MB.
pub(crate) fn result_limit(job_id: &str, configured: Option<usize>) -> usize {
    configured.unwrap_or(if job_id.starts_with("sync-") {
        MAX_RUNSYNC_PAYLOAD_BYTES
    } else {
        MAX_RUN_PAYLOAD_BYTES
    })
}

/// Replaces a result over `limit` bytes by a clear failure (it would be rejected or dropped).
pub(crate) fn enforce_size(done: JobDone, limit: usize, reporter: &Reporter) -> JobDone {
    let size = serde_json::to_vec(&done).map(|v| v.len()).unwrap_or(0);
    if size <= limit {
        return done;
    }
    let message = format!(
        "the job's result is {size} bytes, over the platform's {limit}-byte limit; \
         upload large outputs to a bucket (s3Config) and return their URL instead"
    );
    tracing::error!("{message}");
    let mut failed = reporter.failure(Failure::new("OutputTooLarge", message));
    failed.stop_pod = done.stop_pod;
    failed
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn maps_like_the_python_sdk() {
        assert_eq!(map_output(json!(5)), JobDone::output(json!(5)));
        assert_eq!(map_output(json!([1])), JobDone::output(json!([1])));
        assert_eq!(map_output(json!({"a": 1})), JobDone::output(json!({"a": 1})));
        let d = map_output(json!({"error": "bad thing", "refresh_worker": true}));
        assert_eq!(d.error.as_deref(), Some("bad thing"));
        assert_eq!(d.output, None);
        assert_eq!(d.stop_pod, Some(true));
        let d = map_output(json!({"error": null, "refresh_worker": false, "x": 1}));
        assert_eq!(d, JobDone::output(json!({"x": 1})));
        assert_eq!(map_output(json!({})), JobDone::default());
    }

    #[test]
    fn limits_result_size() {
        let r = Reporter { hostname: "h".into(), worker_id: "w".into() };
        assert_eq!(result_limit("sync-1", None), 20 * 1024 * 1024);
        assert_eq!(result_limit("abc", None), 10 * 1024 * 1024);
        let big = JobDone::output(json!("x".repeat(100)));
        let d = enforce_size(big.clone(), 50, &r);
        let report: ErrorReport = serde_json::from_str(d.error.as_deref().unwrap()).unwrap();
        assert_eq!(report.error_type, "OutputTooLarge");
        assert!(report.error_message.contains("50-byte limit"), "{}", report.error_message);
        assert_eq!(enforce_size(big.clone(), 1000, &r), big);
    }
}

//! The platform's `RUNPOD_*` environment, read and checked once at start-up.

use runpod_protocol::limits::DEFAULT_PING_INTERVAL_MS;
use runpod_protocol::Secret;
use std::time::Duration;

/// Where the worker API lives and who this worker is (docs/worker-api.md, "The environment").
///
/// URLs are kept with the worker id already filled in; `$ID` in the job-done and job-stream
/// URLs stays, to be replaced by each job's id. `Debug` never shows the API key.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Config {
    /// `RUNPOD_POD_ID`: this worker's id.
    pub worker_id: String,
    /// `RUNPOD_WEBHOOK_GET_JOB` with `$ID` replaced by the worker id.
    pub job_take_url: String,
    /// `RUNPOD_WEBHOOK_POST_OUTPUT` with `$RUNPOD_POD_ID` replaced; `$ID` is the job id.
    pub job_done_url: String,
    /// `RUNPOD_WEBHOOK_POST_STREAM` with `$RUNPOD_POD_ID` replaced; `$ID` is the job id.
    pub job_stream_url: String,
    /// `RUNPOD_WEBHOOK_PING` with `$RUNPOD_POD_ID` replaced.
    pub ping_url: String,
    /// `RUNPOD_PING_INTERVAL` (ms): the heartbeat period.
    pub ping_interval: Duration,
    /// `RUNPOD_AI_API_KEY`: sent as the raw `Authorization` header of every worker call.
    pub api_key: Option<Secret>,
    /// `RUNPOD_ENDPOINT_ID`, when set (on the platform it always is).
    pub endpoint_id: Option<String>,
    /// `RUNPOD_POD_HOSTNAME`, reported in error reports.
    pub hostname: Option<String>,
}

/// A `RUNPOD_*` variable that is missing or malformed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// A required variable is not set.
    #[error("environment variable {var} is not set (it is set by the Runpod platform; locally use --test-input or --serve-api)")]
    Missing {
        /// The variable's name.
        var: &'static str,
    },
    /// A variable is set but its value is unusable.
    #[error("environment variable {var} is invalid: {reason}")]
    Invalid {
        /// The variable's name.
        var: &'static str,
        /// What is wrong with it.
        reason: String,
    },
}

impl Config {
    /// Reads the process environment.
    pub fn from_env() -> Result<Config, ConfigError> {
        Config::from_vars(std::env::vars())
    }

    /// Reads the given `(name, value)` pairs as if they were the environment, e.g. the
    /// pairs of `runpod_local::LocalEndpoint::worker_env`.
    pub fn from_vars<I, K, V>(vars: I) -> Result<Config, ConfigError>
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<str>,
        V: Into<String>,
    {
        let mut get_job = None;
        let mut post_output = None;
        let mut post_stream = None;
        let mut ping = None;
        let mut interval = None;
        let mut api_key = None;
        let mut pod_id = None;
        let mut endpoint_id = None;
        let mut hostname = None;
        for (k, v) in vars {
            let slot = match k.as_ref() {
                "RUNPOD_WEBHOOK_GET_JOB" => &mut get_job,
                "RUNPOD_WEBHOOK_POST_OUTPUT" => &mut post_output,
                "RUNPOD_WEBHOOK_POST_STREAM" => &mut post_stream,
                "RUNPOD_WEBHOOK_PING" => &mut ping,
                "RUNPOD_PING_INTERVAL" => &mut interval,
                "RUNPOD_AI_API_KEY" => &mut api_key,
                "RUNPOD_POD_ID" => &mut pod_id,
                "RUNPOD_ENDPOINT_ID" => &mut endpoint_id,
                "RUNPOD_POD_HOSTNAME" => &mut hostname,
                _ => continue,
            };
            let v: String = v.into();
            *slot = if v.trim().is_empty() { None } else { Some(v.trim().to_owned()) };
        }

        let get_job = get_job.ok_or(ConfigError::Missing { var: "RUNPOD_WEBHOOK_GET_JOB" })?;
        let worker_id = pod_id.ok_or(ConfigError::Missing { var: "RUNPOD_POD_ID" })?;
        let post_output = post_output.ok_or(ConfigError::Missing { var: "RUNPOD_WEBHOOK_POST_OUTPUT" })?;
        let ping = ping.ok_or(ConfigError::Missing { var: "RUNPOD_WEBHOOK_PING" })?;

        let job_take_url = get_job.replace("$ID", &worker_id);
        check_url("RUNPOD_WEBHOOK_GET_JOB", &job_take_url)?;
        let job_done_url = post_output.replace("$RUNPOD_POD_ID", &worker_id);
        check_job_url("RUNPOD_WEBHOOK_POST_OUTPUT", &job_done_url)?;
        // The platform always sets the stream URL; when absent, derive it from job-done.
        let job_stream_url = match post_stream {
            Some(s) => s.replace("$RUNPOD_POD_ID", &worker_id),
            None => job_done_url.replace("/job-done/", "/job-stream/"),
        };
        check_job_url("RUNPOD_WEBHOOK_POST_STREAM", &job_stream_url)?;
        let ping_url = ping.replace("$RUNPOD_POD_ID", &worker_id);
        check_url("RUNPOD_WEBHOOK_PING", &ping_url)?;

        let ping_interval = match interval {
            None => Duration::from_millis(DEFAULT_PING_INTERVAL_MS),
            Some(s) => match s.parse::<u64>() {
                Ok(ms) if ms > 0 => Duration::from_millis(ms),
                _ => {
                    return Err(ConfigError::Invalid {
                        var: "RUNPOD_PING_INTERVAL",
                        reason: format!("expected a positive number of milliseconds, got {s:?}"),
                    })
                }
            },
        };

        Ok(Config {
            worker_id,
            job_take_url,
            job_done_url,
            job_stream_url,
            ping_url,
            ping_interval,
            api_key: api_key.map(Secret::new),
            endpoint_id,
            hostname,
        })
    }

    /// The stop channel (`job-stop`), derived from the job-take URL as the Python SDK does;
    /// `None` when that URL does not contain `/job-take/`.
    pub fn job_stop_url(&self) -> Option<String> {
        self.job_take_url
            .contains("/job-take/")
            .then(|| self.job_take_url.replace("/job-take/", "/job-stop/"))
    }
}

/// Appends `key=value` to a URL that may or may not already carry a query string.
pub(crate) fn with_query(url: &str, pairs: &[(&str, &str)]) -> String {
    let mut out = url.to_owned();
    for (k, v) in pairs {
        out.push(if out.contains('?') { '&' } else { '?' });
        out.push_str(k);
        out.push('=');
        out.push_str(v);
    }
    out
}

fn check_url(var: &'static str, url: &str) -> Result<(), ConfigError> {
    match url::Url::parse(url) {
        Ok(u) if matches!(u.scheme(), "http" | "https") => Ok(()),
        Ok(u) => Err(ConfigError::Invalid { var, reason: format!("scheme {:?} is not http(s)", u.scheme()) }),
        Err(e) => Err(ConfigError::Invalid { var, reason: format!("not a URL ({e})") }),
    }
}

fn check_job_url(var: &'static str, url: &str) -> Result<(), ConfigError> {
    if !url.contains("$ID") {
        return Err(ConfigError::Invalid { var, reason: "the URL template has no $ID placeholder".into() });
    }
    check_url(var, &url.replace("$ID", "job"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn platform() -> Vec<(&'static str, &'static str)> {
        vec![
            ("RUNPOD_WEBHOOK_GET_JOB", "http://h/v2/ep/job-take/$ID?gpu=A100"),
            ("RUNPOD_WEBHOOK_POST_OUTPUT", "http://h/v2/ep/job-done/$RUNPOD_POD_ID/$ID?gpu=A100"),
            ("RUNPOD_WEBHOOK_POST_STREAM", "http://h/v2/ep/job-stream/$RUNPOD_POD_ID/$ID?gpu=A100"),
            ("RUNPOD_WEBHOOK_PING", "http://h/v2/ep/ping/$RUNPOD_POD_ID"),
            ("RUNPOD_PING_INTERVAL", "2500"),
            ("RUNPOD_AI_API_KEY", "sekrit-key"),
            ("RUNPOD_POD_ID", "w1"),
            ("RUNPOD_ENDPOINT_ID", "ep"),
        ]
    }

    #[test]
    fn reads_the_platform_templates() {
        let c = Config::from_vars(platform()).unwrap();
        assert_eq!(c.job_take_url, "http://h/v2/ep/job-take/w1?gpu=A100");
        assert_eq!(c.job_done_url, "http://h/v2/ep/job-done/w1/$ID?gpu=A100");
        assert_eq!(c.ping_url, "http://h/v2/ep/ping/w1");
        assert_eq!(c.ping_interval, Duration::from_millis(2500));
        assert_eq!(c.job_stop_url().unwrap(), "http://h/v2/ep/job-stop/w1?gpu=A100");
        assert!(!format!("{c:?}").contains("sekrit"));
        assert_eq!(with_query(&c.ping_url, &[("a", "1"), ("b", "2")]), "http://h/v2/ep/ping/w1?a=1&b=2");
    }

    #[test]
    fn names_the_missing_or_bad_variable() {
        let without = |var: &str| platform().into_iter().filter(|(k, _)| *k != var).collect::<Vec<_>>();
        let e = Config::from_vars(without("RUNPOD_WEBHOOK_GET_JOB")).unwrap_err();
        assert_eq!(e, ConfigError::Missing { var: "RUNPOD_WEBHOOK_GET_JOB" });
        assert!(e.to_string().contains("RUNPOD_WEBHOOK_GET_JOB"));
        let e = Config::from_vars(without("RUNPOD_POD_ID")).unwrap_err();
        assert!(e.to_string().contains("RUNPOD_POD_ID"));

        let mut bad = platform();
        bad.push(("RUNPOD_PING_INTERVAL", "ten"));
        let e = Config::from_vars(bad).unwrap_err();
        assert!(matches!(e, ConfigError::Invalid { var: "RUNPOD_PING_INTERVAL", .. }), "{e}");

        let mut bad = platform();
        bad.push(("RUNPOD_WEBHOOK_POST_OUTPUT", "http://h/v2/ep/job-done/w1"));
        let e = Config::from_vars(bad).unwrap_err();
        assert!(e.to_string().contains("RUNPOD_WEBHOOK_POST_OUTPUT") && e.to_string().contains("$ID"), "{e}");

        let mut bad = platform();
        bad.push(("RUNPOD_WEBHOOK_PING", "not a url"));
        let e = Config::from_vars(bad).unwrap_err();
        assert!(matches!(e, ConfigError::Invalid { var: "RUNPOD_WEBHOOK_PING", .. }), "{e}");
    }

    #[test]
    fn stream_url_falls_back_to_job_done() {
        let vars = platform().into_iter().filter(|(k, _)| *k != "RUNPOD_WEBHOOK_POST_STREAM");
        let c = Config::from_vars(vars).unwrap();
        assert_eq!(c.job_stream_url, "http://h/v2/ep/job-stream/w1/$ID?gpu=A100");
    }
}

//! Running a listing's `tests.json` cases as the Hub does: a worker started with the listing's
//! environment against a local endpoint, each case's input sent to `/runsync`, and a case
//! passing when the endpoint answers 200 and the job completes within the case's timeout.

use super::report::Report;
use super::rules;
use super::tests_file::{input_default, DEFAULT_TIMEOUT_MS};
use super::Listing;
use crate::LocalEndpoint;
use runpod_protocol::limits::{MAX_RUNSYNC_WAIT_MS, MIN_RUNSYNC_WAIT_MS};
use serde_json::{json, Value};
use std::collections::VecDeque;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::{Child, Command};

/// The worker's id at the endpoint.
const WORKER_ID: &str = "hub-test";
/// Lines of the worker's output kept for a failure's message.
const LOG_LINES: usize = 40;
/// How long a stopped worker gets to drain and exit before it is killed.
const STOP_GRACE: Duration = Duration::from_secs(10);

/// Why the cases could not run at all (a case that fails is a [`CaseResult`], not this).
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// `hub.json` or `tests.json` breaks a rule.
    #[error("the listing does not pass the check:\n{0}")]
    Invalid(Report),
    /// A variable `hub.json` marks required has no value from it, `tests.json` or the caller.
    #[error("{0} is required by hub.json and has no default; set it in tests.json's config.env (or --env for a local run)")]
    MissingVariable(String),
    /// A load-balancing listing (`endpointType: "LB"`): its workers serve HTTP routes, not
    /// queue jobs, and the Hub documents no test format for them.
    #[error("hub.json's endpointType is \"LB\" (a load-balancing worker): hub run sends queue jobs only; test its routes through `runpod-local load-balance`")]
    LoadBalancing,
    /// `tests.json` has no case, or none of the names [`HubRun::case`] gave.
    #[error("no case to run: tests.json has none, or --case names none of its cases")]
    NoCase,
    /// The local endpoint did not start.
    #[error("cannot start the local endpoint: {0}")]
    Endpoint(#[source] std::io::Error),
    /// The worker command did not start.
    #[error("cannot start the worker: {0}")]
    Spawn(#[source] std::io::Error),
    /// The worker exited before it took a job.
    #[error("the worker exited ({status}) before it was ready; its last lines:\n{log}")]
    WorkerExited {
        /// Its exit status.
        status: String,
        /// Its last output lines.
        log: String,
    },
    /// The worker did not reach the endpoint in time.
    #[error("the worker did not reach the endpoint within {} s; its last lines:\n{log}", waited.as_secs())]
    NotReady {
        /// How long it was given.
        waited: Duration,
        /// Its last output lines.
        log: String,
    },
}

/// One case's outcome.
#[derive(Debug, Clone)]
pub struct CaseResult {
    /// The case's `name`.
    pub name: String,
    /// The HTTP status `/runsync` answered, if it answered.
    pub http_status: Option<u16>,
    /// The job's last status (`COMPLETED`, `FAILED`, `IN_PROGRESS`, ...).
    pub job_status: Option<String>,
    /// From sending the input to the job's end (or the timeout).
    pub elapsed: Duration,
    /// The job's output when it completed.
    pub output: Option<Value>,
    /// Why the case failed; `None` when it passed.
    pub failure: Option<String>,
}

impl CaseResult {
    /// HTTP 200 and `COMPLETED` within the timeout.
    pub fn passed(&self) -> bool {
        self.failure.is_none()
    }
}

impl std::fmt::Display for CaseResult {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let secs = self.elapsed.as_secs_f64();
        match &self.failure {
            None => write!(f, "PASS {} ({secs:.2} s)", self.name),
            Some(why) => write!(f, "FAIL {} ({secs:.2} s): {why}", self.name),
        }
    }
}

type Callback = Box<dyn FnMut(&CaseResult) + Send>;

/// Runs a listing's cases against a worker command (see the module's docs).
pub struct HubRun {
    listing: Listing,
    worker: Command,
    env: Vec<(String, String)>,
    only: Vec<String>,
    start_timeout: Duration,
    echo_log: bool,
    on_case: Option<Callback>,
}

impl std::fmt::Debug for HubRun {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The variables may hold secrets: their names only.
        f.debug_struct("HubRun")
            .field("dir", &self.listing.dir)
            .field("worker", &self.worker.as_std().get_program())
            .field("env", &self.env.iter().map(|(k, _)| k).collect::<Vec<_>>())
            .field("only", &self.only)
            .finish_non_exhaustive()
    }
}

impl HubRun {
    /// The cases of `listing` against the worker `worker` starts (its own environment plus the
    /// listing's and the endpoint's `RUNPOD_*` variables).
    pub fn new(listing: Listing, worker: Command) -> Self {
        HubRun {
            listing,
            worker,
            env: Vec::new(),
            only: Vec::new(),
            start_timeout: Duration::from_secs(300),
            echo_log: false,
            on_case: None,
        }
    }

    /// Sets a variable for the worker over the listing's own (a local model path, a bucket).
    #[must_use]
    pub fn env(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.env.push((key.into(), value.into()));
        self
    }

    /// Runs only the case named `name` (repeatable); all by default.
    #[must_use]
    pub fn case(mut self, name: impl Into<String>) -> Self {
        self.only.push(name.into());
        self
    }

    /// How long the worker may take to reach the endpoint (default 300 s).
    #[must_use]
    pub fn start_timeout(mut self, timeout: Duration) -> Self {
        self.start_timeout = timeout;
        self
    }

    /// Copies the worker's output lines to stderr as they come (default: kept, shown on failure).
    #[must_use]
    pub fn echo_worker_log(mut self, echo: bool) -> Self {
        self.echo_log = echo;
        self
    }

    /// Called with each case's result as it ends.
    #[must_use]
    pub fn on_case(mut self, f: impl FnMut(&CaseResult) + Send + 'static) -> Self {
        self.on_case = Some(Box::new(f));
        self
    }

    /// The worker's variables from the listing: `hub.json`'s fixed values and input defaults,
    /// then `tests.json`'s `config.env`, then [`HubRun::env`]'s.
    pub fn listing_env(&self) -> Result<Vec<(String, String)>, RunError> {
        let mut vars: Vec<(String, String)> = Vec::new();
        let set = |vars: &mut Vec<(String, String)>, k: &str, v: String| match vars
            .iter_mut()
            .find(|(key, _)| key == k)
        {
            Some(slot) => slot.1 = v,
            None => vars.push((k.to_owned(), v)),
        };
        let mut required: Vec<String> = Vec::new();
        for entry in self.listing.hub.pointer("/config/env").and_then(Value::as_array).into_iter().flatten() {
            let Some(key) = entry.get("key").and_then(Value::as_str) else { continue };
            if let Some(v) = entry.get("value").and_then(Value::as_str) {
                set(&mut vars, key, v.to_owned());
            } else if let Some(input) = entry.get("input") {
                match input_default(input) {
                    Some(v) => set(&mut vars, key, v),
                    None if input.get("required") == Some(&Value::Bool(true)) => {
                        required.push(key.to_owned())
                    }
                    None => {}
                }
            }
        }
        for entry in self.listing.tests.pointer("/config/env").and_then(Value::as_array).into_iter().flatten()
        {
            if let (Some(k), Some(v)) =
                (entry.get("key").and_then(Value::as_str), entry.get("value").and_then(Value::as_str))
            {
                set(&mut vars, k, v.to_owned());
            }
        }
        for (k, v) in &self.env {
            set(&mut vars, k, v.clone());
        }
        if let Some(missing) = required.into_iter().find(|k| !vars.iter().any(|(key, _)| key == k)) {
            return Err(RunError::MissingVariable(missing));
        }
        Ok(vars)
    }

    /// Checks the listing, starts a local endpoint and the worker, runs the cases in order and
    /// stops both. Each case is a [`CaseResult`]; an `Err` means none could run.
    pub async fn run(mut self) -> Result<Vec<CaseResult>, RunError> {
        let hub_file = self.listing.dir.join(".runpod/hub.json");
        let tests_file = self.listing.dir.join(".runpod/tests.json");
        let mut report = rules::check_hub(&self.listing.hub, &hub_file);
        report.extend(rules::check_tests(&self.listing.tests, Some(&self.listing.hub), &tests_file));
        if !report.passed() {
            return Err(RunError::Invalid(report));
        }
        if self.listing.hub.pointer("/config/endpointType").and_then(Value::as_str) == Some("LB") {
            return Err(RunError::LoadBalancing);
        }
        let vars = self.listing_env()?;
        let cases: Vec<Value> = self.listing.tests["tests"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|c| {
                self.only.is_empty() || self.only.iter().any(|n| Some(n.as_str()) == c["name"].as_str())
            })
            .cloned()
            .collect();
        if cases.is_empty() {
            return Err(RunError::NoCase);
        }

        let key = uuid::Uuid::new_v4().simple().to_string();
        let ep =
            LocalEndpoint::builder().api_key(&key).bind("127.0.0.1:0").await.map_err(RunError::Endpoint)?;
        self.worker
            .envs(vars)
            .envs(ep.worker_env(WORKER_ID))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .kill_on_drop(true);
        let child = self.worker.spawn().map_err(RunError::Spawn)?;
        let mut worker = WorkerProcess::new(child, self.echo_log);

        let started = Instant::now();
        loop {
            if let Some(status) = worker.exited() {
                return Err(RunError::WorkerExited { status, log: worker.final_log().await });
            }
            let health = ep.jobs.health();
            if health.workers.idle + health.workers.running > 0 {
                break;
            }
            if started.elapsed() > self.start_timeout {
                return Err(RunError::NotReady { waited: self.start_timeout, log: worker.log() });
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }

        // The endpoint is on 127.0.0.1: never through a proxy of the environment.
        let http = reqwest::Client::builder().no_proxy().build().unwrap_or_default();
        let mut results = Vec::new();
        for case in &cases {
            let result = run_case(&http, &ep.endpoint_url(), &key, case, &mut worker).await;
            if let Some(f) = self.on_case.as_mut() {
                f(&result);
            }
            results.push(result);
        }
        worker.stop().await;
        ep.shutdown().await;
        Ok(results)
    }
}

/// Sends one case and follows its job to the end or the timeout.
async fn run_case(
    http: &reqwest::Client,
    api: &str,
    key: &str,
    case: &Value,
    worker: &mut WorkerProcess,
) -> CaseResult {
    let name = case["name"].as_str().unwrap_or_default().to_owned();
    let timeout = Duration::from_millis(case["timeout"].as_u64().unwrap_or(DEFAULT_TIMEOUT_MS));
    let wait_ms = (timeout.as_millis() as u64).clamp(MIN_RUNSYNC_WAIT_MS, MAX_RUNSYNC_WAIT_MS);
    let started = Instant::now();
    let mut result = CaseResult {
        name,
        http_status: None,
        job_status: None,
        elapsed: Duration::ZERO,
        output: None,
        failure: None,
    };
    let fail = |mut r: CaseResult, why: String, worker: &WorkerProcess| {
        r.elapsed = started.elapsed();
        let log = worker.log();
        r.failure =
            Some(if log.is_empty() { why } else { format!("{why}\nthe worker's last lines:\n{log}") });
        r
    };

    let sent = http
        .post(format!("{api}/runsync?wait={wait_ms}"))
        .bearer_auth(key)
        .json(&json!({"input": case["input"]}))
        .timeout(Duration::from_millis(wait_ms) + Duration::from_secs(30))
        .send()
        .await;
    let answer = match sent {
        Ok(a) => a,
        Err(e) => return fail(result, format!("POST /runsync failed: {e}"), worker),
    };
    let code = answer.status().as_u16();
    result.http_status = Some(code);
    let body = answer.text().await.unwrap_or_default();
    if code != 200 {
        return fail(result, format!("POST /runsync answered HTTP {code}: {}", short(&body)), worker);
    }
    let mut job: Value = match serde_json::from_str(&body) {
        Ok(v) => v,
        Err(e) => {
            return fail(
                result,
                format!("POST /runsync answered 200 with no JSON ({e}): {}", short(&body)),
                worker,
            )
        }
    };
    let id = job["id"].as_str().unwrap_or_default().to_owned();
    loop {
        let status = job["status"].as_str().unwrap_or_default().to_owned();
        result.job_status = Some(status.clone());
        match status.as_str() {
            "COMPLETED" => {
                result.output = job.get("output").cloned();
                if started.elapsed() > timeout {
                    let why = format!("completed after the case's timeout of {} ms", timeout.as_millis());
                    return fail(result, why, worker);
                }
                result.elapsed = started.elapsed();
                return result;
            }
            "FAILED" | "CANCELLED" | "TIMED_OUT" => {
                let error =
                    job.get("error").map(|e| e.as_str().map(str::to_owned).unwrap_or_else(|| e.to_string()));
                let why = format!("the job ended {status}: {}", error.as_deref().unwrap_or("(no error)"));
                return fail(result, why, worker);
            }
            _ => {}
        }
        if let Some(exit) = worker.exited() {
            worker.final_log().await;
            return fail(result, format!("the worker exited ({exit}) with the job {status}"), worker);
        }
        if started.elapsed() >= timeout {
            let _ = http.post(format!("{api}/cancel/{id}")).bearer_auth(key).send().await;
            let why = format!(
                "no result within the case's timeout of {} ms (the job was {status})",
                timeout.as_millis()
            );
            return fail(result, why, worker);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        match http.get(format!("{api}/status/{id}")).bearer_auth(key).send().await {
            Ok(a) if a.status().is_success() => match a.json().await {
                Ok(v) => job = v,
                Err(e) => return fail(result, format!("GET /status answered no JSON: {e}"), worker),
            },
            Ok(a) => {
                return fail(result, format!("GET /status answered HTTP {}", a.status().as_u16()), worker)
            }
            Err(e) => return fail(result, format!("GET /status failed: {e}"), worker),
        }
    }
}

fn short(text: &str) -> String {
    const MAX: usize = 500;
    match text.char_indices().nth(MAX) {
        Some((i, _)) => format!("{}...", &text[..i]),
        None => text.to_owned(),
    }
}

/// The worker's process (its own process group), its last output lines, and its stop.
struct WorkerProcess {
    child: Child,
    pgid: Option<u32>,
    log: Arc<Mutex<VecDeque<String>>>,
    readers: Vec<tokio::task::JoinHandle<()>>,
    exit: Option<String>,
}

impl WorkerProcess {
    fn new(mut child: Child, echo: bool) -> Self {
        let log = Arc::new(Mutex::new(VecDeque::with_capacity(LOG_LINES)));
        let mut readers = Vec::new();
        if let Some(out) = child.stdout.take() {
            readers.push(tokio::spawn(keep_lines(out, log.clone(), echo)));
        }
        if let Some(err) = child.stderr.take() {
            readers.push(tokio::spawn(keep_lines(err, log.clone(), echo)));
        }
        WorkerProcess { pgid: child.id(), child, log, readers, exit: None }
    }

    /// Its exit status once it has exited.
    fn exited(&mut self) -> Option<String> {
        if self.exit.is_none() {
            if let Ok(Some(status)) = self.child.try_wait() {
                self.exit = Some(status.to_string());
            }
        }
        self.exit.clone()
    }

    /// Its last lines once it has exited: what it wrote just before is read first (for at most
    /// 2 s, in case something it started holds its output open).
    async fn final_log(&mut self) -> String {
        for reader in self.readers.drain(..) {
            let _ = tokio::time::timeout(Duration::from_secs(2), reader).await;
        }
        self.log()
    }

    fn log(&self) -> String {
        let lines = self.log.lock().unwrap_or_else(|e| e.into_inner());
        lines.iter().map(String::as_str).collect::<Vec<_>>().join("\n")
    }

    /// SIGTERM (the worker drains and exits), then SIGKILL to its group after the grace period.
    async fn stop(&mut self) {
        if self.exited().is_none() {
            self.signal(libc::SIGTERM);
            if tokio::time::timeout(STOP_GRACE, self.child.wait()).await.is_err() {
                let _ = self.child.start_kill();
                let _ = self.child.wait().await;
            }
        }
        // Whatever it started in its group goes too.
        self.signal(libc::SIGKILL);
        self.pgid = None;
    }

    fn signal(&self, sig: libc::c_int) {
        if let Some(pgid) = self.pgid.and_then(|p| i32::try_from(p).ok()).filter(|p| *p > 1) {
            kill_group(pgid, sig);
        }
    }
}

impl Drop for WorkerProcess {
    fn drop(&mut self) {
        // A run dropped midway (an error, Ctrl-C) leaves no worker behind.
        self.signal(libc::SIGKILL);
    }
}

/// Sends `sig` to the process group `pgid` (the worker was started as its leader).
#[allow(unsafe_code, reason = "kill(2): libc has no safe wrapper and std none for a process group")]
fn kill_group(pgid: i32, sig: libc::c_int) {
    // SAFETY: kill(2) takes two integers and touches no memory of this process; a group that
    // is gone makes it return ESRCH, which is ignored.
    unsafe {
        libc::kill(-pgid, sig);
    }
}

async fn keep_lines(stream: impl AsyncRead + Unpin, log: Arc<Mutex<VecDeque<String>>>, echo: bool) {
    let mut lines = BufReader::new(stream).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        if echo {
            eprintln!("worker: {line}");
        }
        let mut kept = log.lock().unwrap_or_else(|e| e.into_inner());
        if kept.len() == LOG_LINES {
            kept.pop_front();
        }
        kept.push_back(line);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listing(hub_env: Value, tests_env: Value) -> Listing {
        Listing {
            dir: ".".into(),
            hub: json!({"config": {"env": hub_env}}),
            tests: json!({"tests": [], "config": {"env": tests_env}}),
        }
    }

    #[test]
    fn the_workers_variables_layer_hub_tests_and_local_values() {
        let hub_env = json!([
            {"key": "FIXED", "value": "f"},
            {"key": "MODEL", "input": {"name": "M", "type": "string", "default": "hub-default"}},
            {"key": "FLAG", "input": {"name": "F", "type": "boolean", "default": false, "trueValue": "on", "falseValue": "off"}},
            {"key": "OPTIONAL", "input": {"name": "O", "type": "string"}}
        ]);
        let tests_env = json!([{"key": "MODEL", "value": "from-tests"}, {"key": "EXTRA", "value": "x"}]);
        let run = HubRun::new(listing(hub_env, tests_env), Command::new("true")).env("EXTRA", "local");
        let vars = run.listing_env().unwrap();
        let expected: Vec<(String, String)> =
            [("FIXED", "f"), ("MODEL", "from-tests"), ("FLAG", "off"), ("EXTRA", "local")]
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
        assert_eq!(vars, expected);
    }

    #[test]
    fn a_required_variable_without_a_value_is_refused() {
        let hub_env =
            json!([{"key": "MODEL_ID", "input": {"name": "M", "type": "huggingface", "required": true}}]);
        let run = HubRun::new(listing(hub_env.clone(), json!([])), Command::new("true"));
        let err = run.listing_env().unwrap_err();
        assert!(err.to_string().starts_with("MODEL_ID is required by hub.json"), "{err}");
        let run =
            HubRun::new(listing(hub_env, json!([{"key": "MODEL_ID", "value": "o/m"}])), Command::new("true"));
        assert_eq!(run.listing_env().unwrap(), [("MODEL_ID".to_owned(), "o/m".to_owned())]);
    }

    #[tokio::test]
    async fn load_balancing_listings_and_empty_case_lists_are_refused_before_any_start() {
        let hub = json!({"title": "T", "description": "D", "type": "serverless", "category": "language",
                         "config": {"runsOn": "CPU", "cpuFlavor": "cpu3c", "containerDiskInGb": 5, "endpointType": "LB"}});
        let tests = json!({"tests": [{"name": "a", "input": {}}], "config": {"cpuFlavor": "cpu3c"}});
        let listing = Listing { dir: ".".into(), hub, tests };
        // The worker command does not exist: an error about it would mean it was started.
        let missing = || Command::new("/nonexistent/worker");
        let err = HubRun::new(listing.clone(), missing()).run().await.unwrap_err();
        assert!(matches!(err, RunError::LoadBalancing), "{err}");
        let mut queue = listing;
        queue.hub["config"].as_object_mut().unwrap().remove("endpointType");
        let err = HubRun::new(queue.clone(), missing()).case("b").run().await.unwrap_err();
        assert!(matches!(err, RunError::NoCase), "{err}");
        let err = HubRun::new(queue, missing()).run().await.unwrap_err();
        assert!(matches!(err, RunError::Spawn(_)), "{err}");
    }

    #[test]
    fn results_print_one_line() {
        let mut r = CaseResult {
            name: "basic".into(),
            http_status: Some(200),
            job_status: Some("COMPLETED".into()),
            elapsed: Duration::from_millis(1234),
            output: None,
            failure: None,
        };
        assert_eq!(r.to_string(), "PASS basic (1.23 s)");
        r.failure = Some("the job ended FAILED: boom".into());
        assert!(!r.passed());
        assert_eq!(r.to_string(), "FAIL basic (1.23 s): the job ended FAILED: boom");
    }
}

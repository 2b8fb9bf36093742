//! Our requests next to the Python SDK's, field by field. One recording platform (an HTTP
//! server on 127.0.0.1 that records the method, path, query, headers and body of every request
//! and hands out a fixed list of jobs) serves, in turn, the official SDK's worker
//! (`runpod==1.12.0`, `tests/python/wire_worker.py`) and runpod-worker with the same handlers,
//! the same environment and the same jobs. Every difference found must be one that
//! docs/worker-api.md ("On the wire, like the Python SDK") lists with its reason.
//!
//! The virtualenv comes from `scripts/test.d/20-python.sh` (`RUNPOD_TEST_PYTHON`). Without it
//! the test prints `SKIPPED` (and fails when `CI` is set).

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use futures::stream;
use runpod_worker::{handler_fn, stream_fn, Config, Failure, Handler, Job, JobContext, Worker};
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const WORKER: &str = "w-wire";
const KEY: &str = "wire-key";

/// One request as the recording platform saw it.
#[derive(Debug, Clone)]
struct Seen {
    method: String,
    path: String,
    query: Vec<(String, String)>,
    /// Lower-case names; repeated headers joined with `, `.
    headers: BTreeMap<String, String>,
    body: Vec<u8>,
}

impl Seen {
    /// take, stop, ping, stream, progress or result.
    fn kind(&self) -> &'static str {
        let p = &self.path;
        if p.contains("/job-take") {
            "take"
        } else if p.contains("/job-stop/") {
            "stop"
        } else if p.contains("/ping/") {
            "ping"
        } else if p.contains("/job-stream/") {
            "stream"
        } else if self.json()["status"] == "IN_PROGRESS" {
            "progress"
        } else {
            "result"
        }
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }

    fn job(&self) -> String {
        self.path.rsplit('/').next().unwrap_or_default().to_owned()
    }

    fn query(&self, key: &str) -> Option<&str> {
        self.query.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }
}

/// The recording platform's state: what it saw, and the jobs still to hand out.
struct Platform {
    seen: Mutex<Vec<Seen>>,
    jobs: Mutex<VecDeque<Value>>,
}

async fn record(State(p): State<Arc<Platform>>, req: axum::extract::Request) -> Response {
    let (parts, body) = req.into_parts();
    let body = axum::body::to_bytes(body, 1 << 20).await.map(|b| b.to_vec()).unwrap_or_default();
    let query =
        url::form_urlencoded::parse(parts.uri.query().unwrap_or("").as_bytes()).into_owned().collect();
    let mut headers = BTreeMap::new();
    for (name, value) in &parts.headers {
        let v = String::from_utf8_lossy(value.as_bytes()).into_owned();
        headers
            .entry(name.as_str().to_owned())
            .and_modify(|old: &mut String| *old = format!("{old}, {v}"))
            .or_insert(v);
    }
    let seen =
        Seen { method: parts.method.to_string(), path: parts.uri.path().to_owned(), query, headers, body };
    let kind = seen.kind();
    p.seen.lock().unwrap().push(seen);
    match kind {
        "take" => {
            let job = p.jobs.lock().unwrap().pop_front();
            match job {
                Some(job) => axum::Json(job).into_response(),
                None => {
                    // A held long poll that ends empty (the SDK asks again at once).
                    tokio::time::sleep(Duration::from_millis(300)).await;
                    axum::http::StatusCode::NO_CONTENT.into_response()
                }
            }
        }
        "stop" => {
            tokio::time::sleep(Duration::from_millis(300)).await;
            axum::http::StatusCode::NO_CONTENT.into_response()
        }
        _ => axum::http::StatusCode::OK.into_response(),
    }
}

/// Starts a recording platform that hands out `jobs`; returns it and its base URL.
async fn platform(jobs: &[Value]) -> (Arc<Platform>, String) {
    let p = Arc::new(Platform { seen: Mutex::default(), jobs: Mutex::new(jobs.iter().cloned().collect()) });
    let app = axum::Router::new().fallback(record).with_state(p.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (p, base)
}

/// The worker environment of the platform at `base`, the same for both workers.
fn env(base: &str) -> Vec<(String, String)> {
    let ep = format!("{base}/v2/ep-wire");
    [
        ("RUNPOD_WEBHOOK_GET_JOB", format!("{ep}/job-take/$ID?gpu=RTX4090")),
        ("RUNPOD_WEBHOOK_POST_OUTPUT", format!("{ep}/job-done/$RUNPOD_POD_ID/$ID?gpu=RTX4090")),
        ("RUNPOD_WEBHOOK_POST_STREAM", format!("{ep}/job-stream/$RUNPOD_POD_ID/$ID?gpu=RTX4090")),
        ("RUNPOD_WEBHOOK_PING", format!("{ep}/ping/$RUNPOD_POD_ID?gpu=RTX4090")),
        ("RUNPOD_PING_INTERVAL", "1000".into()),
        ("RUNPOD_AI_API_KEY", KEY.into()),
        ("RUNPOD_POD_ID", WORKER.into()),
        ("RUNPOD_POD_HOSTNAME", "host-wire".into()),
        ("RUNPOD_ENDPOINT_ID", "ep-wire".into()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}

/// Waits until `p` has seen a result for each of `jobs` and at least two pings.
async fn wait_done(p: &Platform, jobs: &[Value], who: &str) {
    let until = Instant::now() + Duration::from_secs(60);
    loop {
        let (results, pings) = {
            let seen = p.seen.lock().unwrap();
            let results: BTreeSet<String> =
                seen.iter().filter(|s| s.kind() == "result").map(Seen::job).collect();
            (results, seen.iter().filter(|s| s.kind() == "ping").count())
        };
        if jobs.iter().all(|j| results.contains(j["id"].as_str().unwrap())) && pings >= 2 {
            return;
        }
        assert!(Instant::now() < until, "{who}: results for {results:?} and {pings} ping(s) after 60 s");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The Python SDK's worker in `mode` against a fresh platform: what it sent.
async fn sdk(python: &PathBuf, mode: &str, jobs: &[Value]) -> Vec<Seen> {
    let (p, base) = platform(jobs).await;
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/python/wire_worker.py");
    let log = std::env::temp_dir().join(format!("wire-sdk-{mode}-{}.log", std::process::id()));
    let out = std::fs::File::create(&log).unwrap();
    let mut cmd = Command::new(python);
    for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("RUNPOD_") || k.starts_with("BUCKET_")) {
        cmd.env_remove(k);
    }
    let mut child = cmd
        .arg(script)
        .envs(env(&base))
        .env("WORKER_MODE", mode)
        .env("PYTHONUNBUFFERED", "1")
        // Its start-up fitness check exits when the disk has under 10 % free (a full dev disk).
        .env("RUNPOD_MIN_DISK_PERCENT", "1")
        .process_group(0)
        .stdin(Stdio::null())
        .stdout(out.try_clone().unwrap())
        .stderr(out)
        .spawn()
        .unwrap();
    let done = tokio::time::timeout(Duration::from_secs(90), wait_done(&p, jobs, "the SDK")).await;
    // The SDK forks its heartbeat: end the whole process group.
    let _ = Command::new("kill").args(["-KILL", "--", &format!("-{}", child.id())]).status();
    let _ = child.wait();
    if done.is_err() {
        panic!("the SDK worker did not finish: {}", std::fs::read_to_string(&log).unwrap_or_default());
    }
    let _ = std::fs::remove_file(&log);
    let seen = p.seen.lock().unwrap().clone();
    seen
}

/// runpod-worker with `handler` against a fresh platform: what it sent.
async fn ours<H: Handler>(handler: H, jobs: &[Value]) -> Vec<Seen> {
    let (p, base) = platform(jobs).await;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let worker =
        Worker::new(handler).config(Config::from_vars(env(&base)).unwrap()).shutdown_on(async move {
            let _ = stopped.await;
        });
    let running = tokio::spawn(worker.run());
    wait_done(&p, jobs, "runpod-worker").await;
    stop.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(30), running).await.unwrap().unwrap().unwrap();
    let seen = p.seen.lock().unwrap().clone();
    seen
}

#[derive(serde::Deserialize)]
struct Input {
    #[serde(default)]
    message: String,
    #[serde(default)]
    fail: bool,
}

async fn plain(job: Job<Input>, ctx: JobContext) -> Result<Value, Failure> {
    if job.input.fail {
        return Err(Failure::new("ValueError", "bad input"));
    }
    ctx.progress(json!({"done": 1}));
    tokio::time::sleep(Duration::from_millis(500)).await;
    Ok(json!({"echo": job.input.message}))
}

fn chunks(job: Job<Input>, _ctx: JobContext) -> impl futures::Stream<Item = Result<&'static str, Failure>> {
    let items =
        if job.input.fail { vec![Err(Failure::new("ValueError", "boom"))] } else { vec![Ok("a"), Ok("b")] };
    stream::iter(items)
}

/// Compares one request of the SDK with ours; each difference is pushed as `what: sdk | ours`.
fn compare(kind: &str, sdk: &Seen, ours: &Seen, diffs: &mut BTreeSet<String>) {
    let mut differ = |what: &str, a: &str, b: &str| {
        if a != b {
            diffs.insert(format!("{kind} {what}: {a} | {b}"));
        }
    };
    differ("method", &sdk.method, &ours.method);
    differ("path", &sdk.path, &ours.path);
    // `job_id` is in a ping only while a job is held: timing, compared below.
    let keys =
        |s: &Seen| s.query.iter().map(|(k, _)| k.clone()).filter(|k| k != "job_id").collect::<BTreeSet<_>>();
    differ("query keys", &format!("{:?}", keys(sdk)), &format!("{:?}", keys(ours)));
    for (k, v) in &sdk.query {
        // Which jobs a ping lists, and whether a take is made with one held, depend on timing.
        if !matches!(k.as_str(), "job_id" | "job_in_progress") {
            differ(&format!("query {k}"), v, ours.query(k).unwrap_or("(none)"));
        }
    }
    let names: BTreeSet<&String> = sdk.headers.keys().chain(ours.headers.keys()).collect();
    for name in names {
        // Transport framing, not the worker's choice.
        if matches!(name.as_str(), "host" | "content-length" | "connection") {
            continue;
        }
        let a = sdk.headers.get(name).map_or("(none)", String::as_str);
        let b = ours.headers.get(name).map_or("(none)", String::as_str);
        match name.as_str() {
            // Both name themselves; compared below by their product names only.
            "user-agent" => differ(
                "header user-agent product",
                a.split('/').next().unwrap_or(a),
                b.split('/').next().unwrap_or(b),
            ),
            _ => differ(&format!("header {name}"), a, b),
        }
    }
    if sdk.method == "POST" || ours.method == "POST" {
        let (a, b) = (sdk.json(), ours.json());
        if a == b {
            return;
        }
        // Error reports: the same fields and values but for the type's spelling and the trace.
        let report = |v: &Value| v["error"].as_str().and_then(|t| serde_json::from_str::<Value>(t).ok());
        match (report(&a), report(&b)) {
            (Some(ra), Some(rb)) => {
                for field in ["error_message", "hostname", "worker_id", "runpod_version"] {
                    differ(&format!("error report {field}"), &ra[field].to_string(), &rb[field].to_string());
                }
                let fields = |r: &Value| r.as_object().map(|o| o.keys().cloned().collect::<Vec<_>>());
                differ("error report fields", &format!("{:?}", fields(&ra)), &format!("{:?}", fields(&rb)));
                differ(
                    "error report error_type",
                    &ra["error_type"].to_string(),
                    &rb["error_type"].to_string(),
                );
            }
            (None, Some(_)) if a["error"].is_string() => {
                differ("body error", "plain text", "JSON error report");
            }
            _ => differ("body", &a.to_string(), &b.to_string()),
        }
    }
}

/// The first request of each kind (and job, for posts; each chunk for streams), side by side.
fn side_by_side(sdk: &[Seen], ours: &[Seen], diffs: &mut BTreeSet<String>) {
    let groups = |seen: &[Seen]| {
        let mut g: BTreeMap<(String, String), Vec<Seen>> = BTreeMap::new();
        for s in seen {
            let job = if s.method == "POST" { s.job() } else { String::new() };
            g.entry((s.kind().to_owned(), job)).or_default().push(s.clone());
        }
        g
    };
    let (a, b) = (groups(sdk), groups(ours));
    for (key, list) in &a {
        let Some(other) = b.get(key) else {
            diffs.insert(format!("{} {}: sent by the SDK only", key.0, key.1));
            continue;
        };
        // Every chunk of a stream, in order; the first request of any other kind.
        let n = if key.0 == "stream" { list.len().max(other.len()) } else { 1 };
        for i in 0..n {
            match (list.get(i), other.get(i)) {
                (Some(x), Some(y)) => compare(&key.0, x, y, diffs),
                _ => {
                    diffs.insert(format!("{} {}: {} vs {} requests", key.0, key.1, list.len(), other.len()));
                }
            }
        }
    }
    for key in b.keys().filter(|k| !a.contains_key(*k)) {
        diffs.insert(format!("{} {}: sent by runpod-worker only", key.0, key.1));
    }
}

/// The differences docs/worker-api.md lists, with their reasons there.
const DOCUMENTED: &[&str] = &[
    // The SDK's aiohttp session labels every request (GETs too) `Content-Type: application/json`;
    // a GET has no body to label.
    "take header content-type: application/json | (none)",
    "stop header content-type: application/json | (none)",
    // aiohttp's and requests' defaults; runpod-worker accepts any media type and does not
    // decompress bodies.
    "take header accept: */* | (none)",
    "stop header accept: */* | (none)",
    "progress header accept: */* | (none)",
    "stream header accept: */* | (none)",
    "result header accept: */* | (none)",
    // A stray header of the SDK's posts, not an HTTP header any server reads.
    "progress header charset: utf-8 | (none)",
    "stream header charset: utf-8 | (none)",
    "result header charset: utf-8 | (none)",
    // Each names itself (runpod_version carries the SDK version in both).
    "take header user-agent product: RunPod-Python-SDK | runpod-rs",
    "stop header user-agent product: RunPod-Python-SDK | runpod-rs",
    "progress header user-agent product: RunPod-Python-SDK | runpod-rs",
    "stream header user-agent product: RunPod-Python-SDK | runpod-rs",
    "result header user-agent product: RunPod-Python-SDK | runpod-rs",
    "ping header user-agent product: python-requests | runpod-rs",
    // Python's `str(type(err))` is `<class 'ValueError'>`; a Rust failure names its kind.
    "result error report error_type: \"<class 'ValueError'>\" | \"ValueError\"",
    // A streaming handler's failure gets the same JSON error report as any other failure.
    "result body error: plain text | JSON error report",
];

/// Whether `d` is documented. The SDK's X-Request-ID stays on its shared HTTP session after a
/// job's post, so its later takes and stop polls carry the last job's id; ours carry none.
fn documented(d: &str) -> bool {
    DOCUMENTED.contains(&d)
        // aiohttp's and requests' defaults (`gzip, deflate`, plus `br, zstd` when requests finds
        // those decoders installed).
        || (d.contains(" header accept-encoding: ") && d.ends_with(" | (none)"))
        || ((d.starts_with("take header x-request-id: ") || d.starts_with("stop header x-request-id: "))
            && d.ends_with(" | (none)"))
        // The traceback is the language's own.
        || d.starts_with("result error report error_traceback")
}

fn python() -> Option<PathBuf> {
    let path = match std::env::var_os("RUNPOD_TEST_PYTHON") {
        Some(p) => PathBuf::from(p),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../.cache/venv-runpod-1.12.0/bin/python"),
    };
    if path.exists() {
        return Some(path);
    }
    let why = format!("no Python with runpod==1.12.0 at {} (run ./scripts/test.sh)", path.display());
    if std::env::var_os("CI").is_some() {
        panic!("{why}");
    }
    eprintln!("SKIPPED: {why}");
    None
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_requests_match_the_python_sdks_but_for_documented_differences() {
    let Some(python) = python() else { return };
    let plain_jobs = [
        json!({"id": "job-ok", "input": {"message": "hi"}}),
        json!({"id": "job-fail", "input": {"fail": true}}),
    ];
    let stream_jobs =
        [json!({"id": "job-stream", "input": {}}), json!({"id": "job-stream-fail", "input": {"fail": true}})];
    let mut diffs = BTreeSet::new();
    let (a, b) = (sdk(&python, "plain", &plain_jobs).await, ours(handler_fn(plain), &plain_jobs).await);
    side_by_side(&a, &b, &mut diffs);
    let (c, d) = (sdk(&python, "generator", &stream_jobs).await, ours(stream_fn(chunks), &stream_jobs).await);
    side_by_side(&c, &d, &mut diffs);

    // The points of issue 23, checked directly as well.
    let result = |seen: &[Seen], job: &str| {
        seen.iter().find(|s| s.kind() == "result" && s.job() == job).cloned().unwrap()
    };
    for job in ["job-stream", "job-stream-fail"] {
        assert_eq!(result(&d, job).query("isStream"), Some("true"), "{job}");
        assert_eq!(result(&c, job).query("isStream"), Some("true"), "{job}");
    }
    assert_eq!(result(&d, "job-stream").json(), json!({"output": []}));
    assert_eq!(result(&b, "job-ok").headers["content-type"], "application/x-www-form-urlencoded");
    let ping = b.iter().find(|s| s.kind() == "ping").unwrap();
    assert_eq!(
        ping.query("runpod_version"),
        c.iter().find(|s| s.kind() == "ping").unwrap().query("runpod_version")
    );
    assert!(ping.headers["user-agent"].starts_with("runpod-rs/"), "{ping:?}");
    // A ping that lists jobs names them alone, comma separated, in both.
    let job_ids = ["job-ok", "job-fail", "job-stream", "job-stream-fail"];
    for s in a.iter().chain(&b).chain(&c).chain(&d).filter(|s| s.kind() == "ping") {
        if let Some(ids) = s.query("job_id") {
            assert!(ids.split(',').all(|id| job_ids.contains(&id)), "{s:?}");
        }
    }

    let all: Vec<&String> = diffs.iter().collect();
    eprintln!("differences from the Python SDK on the wire: {all:#?}");
    let undocumented: Vec<&String> = diffs.iter().filter(|d| !documented(d)).collect();
    assert!(undocumented.is_empty(), "differences not in docs/worker-api.md: {undocumented:#?}");
}

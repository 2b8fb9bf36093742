//! Helpers shared by the fault tests: real processes, a tiny HTTP server, log capture, secrets.
#![allow(dead_code, reason = "each test file uses a part of the helpers")]

pub(crate) mod endpoint_process;
pub(crate) mod http;

use runpod_local::{LocalEndpoint, LocalEndpointBuilder, RateLimits};
use serde_json::{json, Value};
use std::io::Write;
use std::process::Stdio;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};
use tokio::io::AsyncReadExt;
use tokio::process::{Child, Command};

/// Everything secret the tests hand out; every log and answer is searched for these.
pub(crate) struct Secrets {
    /// The client and worker API key.
    pub(crate) api_key: String,
    /// `s3Config.accessId` of the jobs.
    pub(crate) access_id: String,
    /// `s3Config.accessSecret` of the jobs.
    pub(crate) access_secret: String,
}

impl Secrets {
    /// Fresh, unguessable values (so a hit cannot be a coincidence).
    pub(crate) fn new() -> Secrets {
        let r = || format!("{:016x}", rand_u64());
        Secrets {
            api_key: format!("apikeysecret{}", r()),
            access_id: format!("AKIDSECRET{}", r()),
            access_secret: format!("s3secretkey{}", r()),
        }
    }

    /// The `s3Config` object carrying the secret keys.
    pub(crate) fn s3_config(&self) -> Value {
        json!({"accessId": self.access_id, "accessSecret": self.access_secret,
               "bucketName": "bucket", "endpointUrl": "http://127.0.0.1:9"})
    }

    /// [`Secrets::assert_absent`] for the worker's output (`what`: whose), the endpoint's log and
    /// every answer `client` got.
    pub(crate) fn assert_absent_everywhere(&self, what: &str, worker_output: &str, client: &Client) {
        self.assert_absent(what, worker_output);
        self.assert_absent("the endpoint's log", &captured_logs());
        self.assert_absent("a client answer", &client.all_answers());
    }

    /// Panics, naming the source, when any secret occurs in `text` (or `text` is empty, which
    /// would make the search prove nothing).
    pub(crate) fn assert_absent(&self, what: &str, text: &str) {
        assert!(!text.trim().is_empty(), "{what} is empty: nothing to search for secrets");
        for s in [&self.api_key, &self.access_id, &self.access_secret] {
            if let Some(at) = text.find(s.as_str()) {
                let from = at.saturating_sub(200);
                panic!("a secret leaked into {what}: ...{}...", &text[from..(at + s.len()).min(text.len())]);
            }
        }
    }
}

fn rand_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(Instant::now().elapsed().as_nanos() ^ std::process::id() as u128);
    h.finish()
}

/// The last 4,000 bytes of `s` (at a character boundary), for failure messages.
pub(crate) fn tail(s: &str) -> &str {
    let mut start = s.len().saturating_sub(4000);
    while !s.is_char_boundary(start) {
        start += 1;
    }
    &s[start..]
}

/// The log lines of this test process (the in-process endpoint's `tracing` output at trace level).
pub(crate) fn captured_logs() -> String {
    String::from_utf8_lossy(&log_buffer().lock().unwrap()).into_owned()
}

fn log_buffer() -> &'static Arc<Mutex<Vec<u8>>> {
    static LOGS: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    LOGS.get_or_init(|| {
        let buf = Arc::new(Mutex::new(Vec::new()));
        let writer = buf.clone();
        let _ = tracing_subscriber::fmt()
            .with_env_filter(
                "trace,hyper=info,hyper_util=info,reqwest=info,h2=info,rustls=info,tower=info,mio=info",
            )
            .with_ansi(false)
            .with_writer(move || LogWriter(writer.clone()))
            .try_init();
        buf
    })
}

struct LogWriter(Arc<Mutex<Vec<u8>>>);

impl Write for LogWriter {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// An endpoint builder with the test's key, no rate limits, and logs captured.
pub(crate) fn endpoint(secrets: &Secrets) -> LocalEndpointBuilder {
    log_buffer();
    LocalEndpoint::builder().api_key(&secrets.api_key).rate_limits(RateLimits::none())
}

/// A worker process (`runpod-bench-worker`) whose stdout and stderr are collected.
pub(crate) struct WorkerProcess {
    /// The process.
    pub(crate) child: Child,
    /// Its output so far.
    pub(crate) output: Arc<Mutex<String>>,
    /// Its `RUNPOD_POD_ID`.
    pub(crate) id: String,
}

impl WorkerProcess {
    /// Starts `runpod-bench-worker` with `env`, `concurrency` and debug logs. The S3 endpoint
    /// policy is the worker's default unless `env` sets `RUNPOD_ALLOW_PRIVATE_S3_ENDPOINTS`.
    pub(crate) fn spawn(env: Vec<(String, String)>, concurrency: usize) -> WorkerProcess {
        let id = env.iter().find(|(k, _)| k == "RUNPOD_POD_ID").map(|(_, v)| v.clone()).unwrap_or_default();
        let mut child = Command::new(env!("CARGO_BIN_EXE_runpod-bench-worker"))
            .env_remove("RUNPOD_ALLOW_PRIVATE_S3_ENDPOINTS")
            .envs(env)
            .env("BENCH_CONCURRENCY", concurrency.to_string())
            .env("RUNPOD_LOG_LEVEL", "TRACE")
            .env("RUNPOD_DEBUG_LEVEL", "TRACE")
            .env("RUST_LOG", "trace")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("spawn runpod-bench-worker");
        let output = Arc::new(Mutex::new(String::new()));
        for mut pipe in [
            Box::new(child.stdout.take().unwrap()) as Box<dyn tokio::io::AsyncRead + Unpin + Send>,
            Box::new(child.stderr.take().unwrap()),
        ] {
            let output = output.clone();
            tokio::spawn(async move {
                let mut buf = [0u8; 8192];
                while let Ok(n) = pipe.read(&mut buf).await {
                    if n == 0 {
                        break;
                    }
                    output.lock().unwrap().push_str(&String::from_utf8_lossy(&buf[..n]));
                }
            });
        }
        WorkerProcess { child, output, id }
    }

    /// The process id.
    pub(crate) fn pid(&self) -> u32 {
        self.child.id().expect("worker still running")
    }

    /// Sends a signal to the process.
    #[allow(unsafe_code, reason = "libc::kill has no safe wrapper in std")]
    pub(crate) fn signal(&self, sig: i32) {
        // SAFETY: kill(2) has no memory-safety preconditions.
        unsafe {
            libc::kill(self.pid() as i32, sig);
        }
    }

    /// True while the process has not exited.
    pub(crate) fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Its output so far.
    pub(crate) fn log(&self) -> String {
        self.output.lock().unwrap().clone()
    }
}

/// A client of the client API that keeps every answer body, for the secret grep.
#[derive(Clone)]
pub(crate) struct Client {
    /// The HTTP client.
    pub(crate) http: reqwest::Client,
    /// `{base}/v2/{endpoint_id}`.
    pub(crate) url: String,
    /// The API key.
    pub(crate) key: String,
    /// Every answer body received.
    pub(crate) answers: Arc<Mutex<Vec<String>>>,
}

impl Client {
    /// A client of `ep` with `key`.
    pub(crate) fn new(ep: &LocalEndpoint, key: &str) -> Client {
        Client {
            http: reqwest::Client::builder().timeout(Duration::from_secs(120)).build().unwrap(),
            url: ep.endpoint_url(),
            key: key.into(),
            answers: Default::default(),
        }
    }

    /// Sends a request; returns the status code and the body, parsed as JSON when it is.
    pub(crate) async fn send(&self, method: &str, path: &str, body: Option<String>) -> (u16, Value) {
        self.send_with(method, &format!("{}{path}", self.url), Some(&format!("Bearer {}", self.key)), body)
            .await
    }

    /// Sends a request to any URL with any `Authorization` (or none).
    pub(crate) async fn send_with(
        &self,
        method: &str,
        url: &str,
        auth: Option<&str>,
        body: Option<String>,
    ) -> (u16, Value) {
        let mut req = self.http.request(method.parse().unwrap(), url);
        if let Some(a) = auth {
            req = req.header("authorization", a);
        }
        if let Some(b) = body {
            req = req.header("content-type", "application/json").body(b);
        }
        let resp = req.send().await.unwrap_or_else(|e| panic!("{method} {url}: {e}"));
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap_or_default();
        self.answers.lock().unwrap().push(text.clone());
        (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
    }

    /// `POST /run` of `body`; returns the new job's id.
    pub(crate) async fn run(&self, body: Value) -> String {
        let (status, v) = self.send("POST", "/run", Some(body.to_string())).await;
        assert_eq!(status, 200, "/run answered {status}: {v}");
        v["id"].as_str().expect("id").to_string()
    }

    /// `GET /status/{id}`.
    pub(crate) async fn status(&self, id: &str) -> Value {
        let (status, v) = self.send("GET", &format!("/status/{id}"), None).await;
        assert_eq!(status, 200, "/status/{id} answered {status}: {v}");
        v
    }

    /// Polls `/status/{id}` until the job is final or `deadline` passes; returns the last answer.
    pub(crate) async fn wait_final(&self, id: &str, deadline: Instant) -> Value {
        loop {
            let v = self.status(id).await;
            let s = v["status"].as_str().unwrap_or("");
            if matches!(s, "COMPLETED" | "FAILED" | "CANCELLED" | "TIMED_OUT") || Instant::now() > deadline {
                return v;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// All answers received so far, joined.
    pub(crate) fn all_answers(&self) -> String {
        self.answers.lock().unwrap().join("\n")
    }
}

/// Polls `cond` every 20 ms until true or `timeout`; returns whether it became true.
pub(crate) async fn eventually<F, Fut>(timeout: Duration, mut cond: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let end = Instant::now() + timeout;
    while Instant::now() < end {
        if cond().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    false
}

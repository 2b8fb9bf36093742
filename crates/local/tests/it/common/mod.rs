//! Helpers shared by the integration tests: a small HTTP client for both APIs, and the
//! `runpod-local` binary started as a child process.
#![allow(dead_code, reason = "each test file uses a part of the helpers")]

use runpod_local::LocalEndpoint;
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

/// The `runpod-local` binary Cargo built for these tests.
pub(crate) const BIN: &str = env!("CARGO_BIN_EXE_runpod-local");

/// A running `runpod-local` process, killed on drop so a failed assertion leaves no server behind.
pub(crate) struct LocalProcess(std::process::Child);

impl LocalProcess {
    /// Sends `sig` to the process.
    #[allow(unsafe_code, reason = "libc::kill has no safe wrapper in std")]
    pub(crate) fn signal(&self, sig: i32) {
        // SAFETY: kill(2) has no memory-safety preconditions.
        unsafe {
            libc::kill(self.0.id() as i32, sig);
        }
    }

    /// SIGKILL, and waits for the exit.
    pub(crate) fn kill(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }

    /// Waits up to `timeout` for the process to exit; its status, or `None` if it still runs.
    pub(crate) fn wait(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let end = std::time::Instant::now() + timeout;
        while std::time::Instant::now() < end {
            if let Ok(Some(st)) = self.0.try_wait() {
                return Some(st);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }
}

impl Drop for LocalProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `runpod-local` with `args` and reads the first `lines` lines it prints (the address
/// it serves, ...); the rest of stdout is read and dropped on a thread of its own (a closed pipe
/// would fail the process's next print), stderr is discarded. The process runs until the
/// returned value is dropped.
pub(crate) async fn spawn_local(args: &[&str], lines: usize) -> (LocalProcess, Vec<String>) {
    let mut child = LocalProcess(
        Command::new(BIN).args(args).stdout(Stdio::piped()).stderr(Stdio::null()).spawn().unwrap(),
    );
    let stdout = child.0.stdout.take().unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::spawn(move || {
        let mut out = BufReader::new(stdout).lines();
        let first: Vec<String> = out.by_ref().take(lines).map(Result::unwrap).collect();
        let _ = tx.send(first);
        out.for_each(drop);
    });
    (child, rx.await.unwrap())
}

/// Talks to one endpoint: client routes with `Bearer KEY`, worker routes with the raw key and
/// the Python SDK's content type.
pub(crate) struct Api {
    pub(crate) http: reqwest::Client,
    pub(crate) url: String,
    pub(crate) key: Option<String>,
}

/// The status code and the JSON body (`Null` when empty).
pub(crate) type Answer = (u16, Value);

async fn answer(r: reqwest::Response) -> Answer {
    let status = r.status().as_u16();
    let text = r.text().await.expect("read body");
    let body = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or_else(|_| panic!("{status}: body is not JSON: {text}"))
    };
    (status, body)
}

impl Api {
    pub(crate) fn new(ep: &LocalEndpoint, key: Option<&str>) -> Self {
        let http = reqwest::Client::builder().timeout(Duration::from_secs(60)).build().unwrap();
        Api { http, url: ep.endpoint_url(), key: key.map(str::to_owned) }
    }

    fn client_req(&self, rb: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match &self.key {
            Some(k) => rb.bearer_auth(k),
            None => rb,
        }
    }

    fn worker_req(&self, rb: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match &self.key {
            Some(k) => rb.header("Authorization", k),
            None => rb,
        }
    }

    /// POST a JSON body to a client route.
    pub(crate) async fn post(&self, path: &str, body: &Value) -> Answer {
        let rb = self.http.post(format!("{}/{path}", self.url)).json(body);
        answer(self.client_req(rb).send().await.expect("send")).await
    }

    /// POST raw bytes to a client route.
    pub(crate) async fn post_raw(&self, path: &str, body: impl Into<reqwest::Body>) -> Answer {
        let rb = self.http.post(format!("{}/{path}", self.url)).body(body);
        answer(self.client_req(rb).send().await.expect("send")).await
    }

    /// GET a client route.
    pub(crate) async fn get(&self, path: &str) -> Answer {
        let rb = self.http.get(format!("{}/{path}", self.url));
        answer(self.client_req(rb).send().await.expect("send")).await
    }

    /// GET a worker route (raw key).
    pub(crate) async fn wget(&self, path: &str) -> Answer {
        let rb = self.http.get(format!("{}/{path}", self.url));
        answer(self.worker_req(rb).send().await.expect("send")).await
    }

    /// POST a JSON body to a worker route as the Python SDK does (form content type).
    pub(crate) async fn wpost(&self, path: &str, body: &Value) -> Answer {
        let rb = self
            .http
            .post(format!("{}/{path}", self.url))
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(body.to_string());
        answer(self.worker_req(rb).send().await.expect("send")).await
    }

    /// POST raw bytes to a worker route with the form content type.
    pub(crate) async fn wpost_raw(&self, path: &str, body: impl Into<reqwest::Body>) -> Answer {
        let rb = self
            .http
            .post(format!("{}/{path}", self.url))
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(body);
        answer(self.worker_req(rb).send().await.expect("send")).await
    }

    /// Queues `input` with `/run` and returns the job id.
    pub(crate) async fn run(&self, input: Value) -> String {
        let (code, body) = self.post("run", &serde_json::json!({ "input": input })).await;
        assert_eq!(code, 200, "{body}");
        assert_eq!(body["status"], "IN_QUEUE");
        body["id"].as_str().expect("id").to_owned()
    }

    /// `/status/{id}`.
    pub(crate) async fn status(&self, id: &str) -> Answer {
        self.get(&format!("status/{id}")).await
    }

    /// Polls `/status/{id}` until it reports `want` (or panics after 20 s).
    pub(crate) async fn wait_status(&self, id: &str, want: &str) -> Value {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            let (code, body) = self.status(id).await;
            if code == 200 && body["status"] == want {
                return body;
            }
            assert!(tokio::time::Instant::now() < deadline, "job {id} never reached {want}: {code} {body}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

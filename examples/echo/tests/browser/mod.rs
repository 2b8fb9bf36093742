//! A headless Chromium driven over WebDriver (Debian's `chromium` and `chromium-driver`, from
//! `scripts/test.d/50-browser.sh`): W3C WebDriver is plain HTTP and JSON, so `reqwest` is all
//! the test needs, and clicks and key presses are real input events.
//!
//! Without the browser the tests print `SKIPPED` (and fail when `CI` is set).
#![allow(dead_code, reason = "each test binary uses part of the browser helpers")]

use base64::Engine as _;
use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The flags that let Chromium run here: headless, no sandbox (root in a container), and no
/// background connections (the closed network refuses them and Chromium then stalls).
const CHROMIUM_FLAGS: &[&str] = &[
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1280,1000",
];

/// The key of an element reference in WebDriver answers.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// The browser and its driver's paths, or `None` (after saying why) when the test must skip.
fn binaries() -> Option<(PathBuf, PathBuf)> {
    let find = |var: &str, name: &str| -> Option<PathBuf> {
        if let Some(p) = std::env::var_os(var) {
            return Some(PathBuf::from(p));
        }
        let path = std::env::var_os("PATH")?;
        std::env::split_paths(&path).map(|d| d.join(name)).find(|p| p.is_file())
    };
    match (find("RUNPOD_TEST_CHROMIUM", "chromium"), find("RUNPOD_TEST_CHROMEDRIVER", "chromedriver")) {
        (Some(c), Some(d)) if c.is_file() && d.is_file() => Some((c, d)),
        _ => {
            let why = "no chromium and chromedriver (RUNPOD_TEST_CHROMIUM/RUNPOD_TEST_CHROMEDRIVER or PATH; \
                       ./scripts/test.sh installs them)";
            if std::env::var_os("CI").is_some() {
                panic!("{why}");
            }
            // Straight to stderr, past the test harness's capture, so that the skip is seen.
            let _ = writeln!(std::io::stderr(), "\n*** SKIPPED: the console's browser test: {why} ***\n");
            None
        }
    }
}

/// One browser session. Dropping it ends the session (Chromium quits) and stops the driver.
pub(crate) struct Browser {
    http: reqwest::Client,
    driver: Child,
    driver_addr: String,
    session: String,
    profile: PathBuf,
}

impl Drop for Browser {
    fn drop(&mut self) {
        // Blocking on purpose: a panicking test must not leave Chromium running.
        delete_session(&self.driver_addr, &self.session);
        let _ = self.driver.kill();
        let _ = self.driver.wait();
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

/// `DELETE /session/{id}` over a plain socket, so that it works inside `Drop`.
fn delete_session(addr: &str, session: &str) {
    let Ok(mut tcp) = std::net::TcpStream::connect(addr) else { return };
    let _ = tcp.set_read_timeout(Some(Duration::from_secs(20)));
    let req = format!(
        "DELETE /session/{session} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    );
    if tcp.write_all(req.as_bytes()).is_ok() {
        let _ = tcp.read_to_end(&mut Vec::new());
    }
}

impl Browser {
    /// Starts chromedriver and a headless Chromium with a new, empty profile; `None` when the
    /// browser is not installed (the test is then skipped, or fails under `CI`).
    pub(crate) async fn start() -> Option<Browser> {
        let (chromium, chromedriver) = binaries()?;
        // It prints "... started successfully on port N." on stdout (`--silent` would hide it).
        let mut driver = Command::new(&chromedriver)
            .arg("--port=0")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", chromedriver.display()));
        let stdout = driver.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            // Reads every line, so that the driver never blocks on a full pipe.
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(rest) = line.split("started successfully on port ").nth(1) {
                    let _ = tx.send(rest.trim_end_matches('.').parse::<u16>());
                }
            }
        });
        let port = match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(Ok(port)) => port,
            other => {
                let _ = driver.kill();
                panic!("chromedriver did not print its port: {other:?}");
            }
        };
        let driver_addr = format!("127.0.0.1:{port}");
        let profile =
            std::env::temp_dir().join(format!("runpod-console-chromium-{}-{port}", std::process::id()));
        let _ = std::fs::remove_dir_all(&profile);
        std::fs::create_dir_all(&profile).unwrap();
        let mut args: Vec<String> = CHROMIUM_FLAGS.iter().map(|s| s.to_string()).collect();
        args.push(format!("--user-data-dir={}", profile.display()));
        let http = reqwest::Client::builder().timeout(Duration::from_secs(60)).build().unwrap();
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {"binary": chromium, "args": args},
        }}});
        let answer: Value = http
            .post(format!("http://{driver_addr}/session"))
            .json(&caps)
            .send()
            .await
            .expect("chromedriver answers")
            .json()
            .await
            .unwrap();
        let session = answer["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no browser session: {answer}"))
            .to_owned();
        Some(Browser { http, driver, driver_addr, session, profile })
    }

    /// One WebDriver command; returns its `value`, panics with the driver's message on error.
    async fn command(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let url = format!("http://{}/session/{}{path}", self.driver_addr, self.session);
        let mut req = self.http.request(method, url);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let r = req.send().await.unwrap_or_else(|e| panic!("WebDriver {path}: {e}"));
        let ok = r.status().is_success();
        let mut v: Value = r.json().await.unwrap();
        if !ok {
            panic!("WebDriver {path}: {}: {}", v["value"]["error"], v["value"]["message"]);
        }
        v["value"].take()
    }

    async fn post(&self, path: &str, body: Value) -> Value {
        self.command(reqwest::Method::POST, path, Some(body)).await
    }

    /// Opens `url`.
    pub(crate) async fn goto(&self, url: &str) {
        self.post("/url", json!({"url": url})).await;
    }

    /// The element `css` selects (it must exist).
    async fn element(&self, css: &str) -> String {
        let v = self.post("/element", json!({"using": "css selector", "value": css})).await;
        v[ELEMENT].as_str().unwrap_or_else(|| panic!("no element {css}: {v}")).to_owned()
    }

    /// Clicks `css` as a user would.
    pub(crate) async fn click(&self, css: &str) {
        let el = self.element(css).await;
        self.post(&format!("/element/{el}/click"), json!({})).await;
    }

    /// Empties the field `css` and types `text` into it, key by key.
    pub(crate) async fn type_into(&self, css: &str, text: &str) {
        let el = self.element(css).await;
        self.post(&format!("/element/{el}/clear"), json!({})).await;
        self.post(&format!("/element/{el}/value"), json!({"text": text})).await;
    }

    /// Presses `keys` in the element `css` (WebDriver key codes: `\u{E009}` is Control,
    /// `\u{E007}` Enter; a modifier stays down until the end).
    pub(crate) async fn press(&self, css: &str, keys: &str) {
        let el = self.element(css).await;
        self.post(&format!("/element/{el}/value"), json!({"text": keys})).await;
    }

    /// Runs `script` (a function body; `arguments` holds `args`) in the page; returns its value.
    pub(crate) async fn eval(&self, script: &str, args: Value) -> Value {
        self.post("/execute/sync", json!({"script": script, "args": args})).await
    }

    /// Calls `probe` until it returns `Some`, at most `secs` seconds; panics naming `what`
    /// with the last value seen.
    pub(crate) async fn wait_for<T, F, Fut>(&self, what: &str, secs: u64, mut probe: F) -> T
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = (Option<T>, Value)>,
    {
        let until = Instant::now() + Duration::from_secs(secs);
        loop {
            let (found, seen) = probe().await;
            if let Some(t) = found {
                return t;
            }
            if Instant::now() > until {
                panic!("waited {secs} s for {what}; the page shows: {seen:#}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Saves a PNG of the window to `path`.
    pub(crate) async fn screenshot(&self, path: &Path) {
        let v = self.command(reqwest::Method::GET, "/screenshot", None).await;
        let png = base64::engine::general_purpose::STANDARD.decode(v.as_str().unwrap()).unwrap();
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, png).unwrap();
        eprintln!("screenshot: {}", path.display());
    }
}

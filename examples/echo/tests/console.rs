//! The console page of runpod-local in a real browser (headless Chromium over WebDriver): with an
//! API key and the echo worker, a user edits the request, runs it, watches it complete, stream
//! and fail, cancels a queued job, and opens past jobs from the requests list. Screenshots of
//! the page (idle, running, completed, failed) are saved under `target/tmp/console-screenshots/`.

mod browser;

use browser::Browser;
use serde_json::{json, Value};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

const KEY: &str = "console-key";

/// What the page shows, read from its DOM in one go.
const READ_PAGE: &str = r#"
const $ = (id) => document.getElementById(id);
const shown = (id) => !$(id).hidden;
const texts = (css) => [...document.querySelectorAll(css)].map((e) => e.textContent);
return {
  keyForm: shown('key-form'),
  keyError: shown('key-error') ? $('key-error').textContent : null,
  editor: $('editor').value,
  source: $('source').textContent,
  check: $('check').textContent,
  checkOk: $('check').classList.contains('ok'),
  checking: $('check').getAttribute('aria-busy') === 'true',
  jobId: $('job-id').textContent,
  status: shown('job-status') ? $('job-status').textContent : null,
  timeline: texts('#timeline .step'),
  chunks: texts('#chunks li'),
  output: shown('output-box') ? $('output').textContent : null,
  outputElements: $('output').children.length,
  error: shown('error-box') ? $('error-message').textContent : null,
  traceback: shown('traceback') ? $('traceback').textContent : null,
  delay: $('delay-time').textContent,
  execution: $('execution-time').textContent,
  worker: $('worker-id').textContent,
  message: $('job-message').textContent,
  cancel: !$('cancel').disabled,
  retry: !$('retry').disabled,
  logs: shown('logs-box') ? $('logs').textContent : null,
  health: Object.fromEntries([...document.querySelectorAll('#health li')]
    .map((li) => [li.dataset.name, li.querySelector('b').textContent])),
  jobs: [...document.querySelectorAll('#jobs tr')]
    .map((tr) => ({id: tr.dataset.id, status: tr.children[1].textContent})),
  text: document.body.innerText,
  pwned: window.pwned === true,
};
"#;

/// The page in the browser, read and waited on through [`READ_PAGE`].
struct Page(Browser);

impl Page {
    async fn read(&self) -> Value {
        self.0.eval(READ_PAGE, json!([])).await
    }

    /// Waits (up to 60 s) until `ready` holds for what the page shows; returns that.
    async fn wait(&self, what: &str, ready: impl Fn(&Value) -> bool) -> Value {
        self.0
            .wait_for(what, 60, || async {
                let seen = self.read().await;
                (ready(&seen).then(|| seen.clone()), seen)
            })
            .await
    }

    /// Types `request` into the editor and waits for the endpoint's verdict on it.
    async fn edit(&self, request: &str) -> Value {
        self.0.type_into("#editor", request).await;
        self.wait("the request check", |p| p["editor"] == request && p["checking"] == false).await
    }

    async fn run_and_wait(&self, button: &str, final_status: &str) -> Value {
        let before = self.read().await["jobId"].clone();
        self.0.click(button).await;
        self.wait(&format!("a new job {final_status}"), |p| {
            p["jobId"] != before && p["status"] == final_status
        })
        .await
    }
}

fn screenshots() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("console-screenshots")
}

/// The echo worker as a process working for `ep`; killed on drop.
struct EchoWorker(Child);

impl Drop for EchoWorker {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn echo_worker(ep: &runpod_local::LocalEndpoint) -> EchoWorker {
    let mut c = Command::new(env!("CARGO_BIN_EXE_echo"));
    for (k, _) in std::env::vars() {
        if k.starts_with("RUNPOD_") || k == "RUST_LOG" {
            c.env_remove(k);
        }
    }
    EchoWorker(c.envs(ep.worker_env("echo-1")).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_runs_streams_fails_and_cancels_jobs_in_a_browser() {
    let Some(browser) = Browser::start().await else { return };
    let page = Page(browser);
    let ep = runpod_local::LocalEndpoint::builder()
        .api_key(KEY)
        .ping_interval_ms(500)
        .bind("127.0.0.1:0")
        .await
        .unwrap();
    let http = reqwest::Client::new();
    let api = ep.endpoint_url();

    // The page asks for the key; a wrong one is refused with a clear message.
    page.0.goto(&ep.console_url()).await;
    let p = page.wait("the key form", |p| p["keyForm"] == true).await;
    assert_eq!(p["keyError"], Value::Null, "no error before a key is given: {p:#}");
    page.0.type_into("#key-input", "not-the-key").await;
    page.0.click("#key-form button[type=submit]").await;
    let p = page.wait("the wrong-key message", |p| p["keyError"].is_string()).await;
    let msg = p["keyError"].as_str().unwrap();
    assert!(msg.starts_with("Wrong API key") && msg.contains("--api-key"), "{msg}");

    // The right key: the editor gets the default request and the health shows.
    page.0.type_into("#key-input", KEY).await;
    page.0.click("#key-form button[type=submit]").await;
    let p = page
        .wait("the editor and the health", |p| p["keyForm"] == false && p["health"]["in queue"] == "0")
        .await;
    let start: Value = serde_json::from_str(p["editor"].as_str().unwrap()).unwrap();
    assert_eq!(start, json!({"input": {}}), "no test_input.json here: the empty request");
    assert_eq!(
        page.wait("the check", |p| p["checking"] == false && p["checkOk"] == true).await["check"],
        "Valid request"
    );
    page.0.screenshot(&screenshots().join("idle.png")).await;

    // Invalid requests are caught before anything is sent: bad JSON here, bounds by the API's
    // own check (the same message /run gives).
    let jobs_before = page.read().await["jobs"].as_array().unwrap().len();
    let p = page.edit(r#"{"input": {"message": "#).await;
    assert!(p["check"].as_str().unwrap().starts_with("Not valid JSON"), "{p:#}");
    page.0.click("#run").await;
    let p = page.edit(r#"{"input": {"message": "x"}, "policy": {"ttl": 5}}"#).await;
    assert_eq!(p["check"], "policy.ttl must be between 10000 and 604800000 ms, got 5");
    page.0.click("#run").await;
    let run_says: Value = http
        .post(format!("{api}/run"))
        .bearer_auth(KEY)
        .body(r#"{"input": {"message": "x"}, "policy": {"ttl": 5}}"#)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(run_says["error"], p["check"], "the page shows what /run answers");
    let p = page.edit(r#"{"input": {"message": "x"}}"#).await;
    assert_eq!(p["checkOk"], true, "{p:#}");
    page.0.click("#options summary").await;
    page.0.type_into("#ttl", "abc").await;
    page.0.type_into("#execution-timeout", "500").await;
    let p =
        page.wait("the policy check", |p| p["check"].as_str().unwrap().contains("executionTimeout")).await;
    assert!(p["check"].as_str().unwrap().contains("must be greater than"), "{p:#}");
    page.0.type_into("#execution-timeout", "").await;
    assert_eq!(
        page.wait("a valid request again", |p| p["checking"] == false && p["checkOk"] == true).await
            ["checkOk"],
        true
    );
    page.0.click("#options summary").await;
    assert_eq!(page.read().await["jobs"].as_array().unwrap().len(), jobs_before, "nothing invalid was sent");

    // No worker yet: a job stays queued, and Cancel cancels it.
    page.edit(r#"{"input": {"message": "never runs"}}"#).await;
    let p = page.run_and_wait("#run", "IN_QUEUE").await;
    let queued = p["jobId"].as_str().unwrap().to_owned();
    assert_eq!(p["cancel"], true);
    page.0.click("#cancel").await;
    page.wait("the cancelled job", |p| p["status"] == "CANCELLED" && p["cancel"] == false).await;
    let s: Value = http
        .get(format!("{api}/status/{queued}"))
        .bearer_auth(KEY)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(s["status"], "CANCELLED", "{s}");

    // A job that fails in a Python worker: the page shows the SDK's error report, message and
    // traceback. (The test plays the worker here, through the worker API.)
    page.edit(r#"{"input": {"prompt": "fail please"}}"#).await;
    let p = page.run_and_wait("#run", "IN_QUEUE").await;
    let py_failed = p["jobId"].as_str().unwrap().to_owned();
    let taken: Value = http
        .get(format!("{api}/job-take/py-1"))
        .header("Authorization", KEY)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(taken["id"], py_failed.as_str());
    let report = json!({
        "error_type": "ValueError",
        "error_message": "prompt rejected",
        "error_traceback": "Traceback (most recent call last):\n  File \"handler.py\", line 7, in handler\n    raise ValueError(\"prompt rejected\")\nValueError: prompt rejected\n",
        "hostname": "local", "worker_id": "py-1", "runpod_version": "1.12.0",
    });
    http.post(format!("{api}/job-done/py-1/{py_failed}"))
        .header("Authorization", KEY)
        .json(&json!({"error": report.to_string()}))
        .send()
        .await
        .unwrap()
        .error_for_status()
        .unwrap();
    let p = page.wait("the failed job", |p| p["status"] == "FAILED").await;
    assert_eq!(p["error"], "ValueError: prompt rejected");
    assert!(p["traceback"].as_str().unwrap().contains("line 7, in handler"), "{p:#}");
    assert_eq!((p["retry"].as_bool(), p["cancel"].as_bool()), (Some(true), Some(false)));
    page.0.screenshot(&screenshots().join("failed.png")).await;

    // A worker joins; the health shows it.
    let _worker = echo_worker(&ep);
    page.wait("an idle worker", |p| p["health"]["workers"].as_str().unwrap_or("").starts_with("1 idle"))
        .await;

    // The edited request runs: IN_QUEUE, IN_PROGRESS with progress, COMPLETED with the output.
    page.edit(r#"{"input": {"message": "hello console", "repeat": 3, "delay_ms": 700}}"#).await;
    page.0.click("#format").await;
    page.0.click("#run").await;
    let p =
        page.wait("the job running", |p| p["status"] == "IN_PROGRESS" && p["jobId"] != queued.as_str()).await;
    let id = p["jobId"].as_str().unwrap().to_owned();
    page.0.screenshot(&screenshots().join("running.png")).await;
    let p = page.wait("the job completed", |p| p["status"] == "COMPLETED").await;
    let output: Value = serde_json::from_str(p["output"].as_str().unwrap()).unwrap();
    assert_eq!(output, json!({"echo": "hello console hello console hello console", "repeat": 3}));
    let timeline: Vec<&str> = p["timeline"].as_array().unwrap().iter().map(|s| s.as_str().unwrap()).collect();
    assert_eq!(timeline.first(), Some(&"IN_QUEUE"), "{timeline:?}");
    assert!(timeline.contains(&"IN_PROGRESS") && timeline.contains(&"progress"), "{timeline:?}");
    assert_eq!(timeline.last(), Some(&"COMPLETED"), "{timeline:?}");
    assert!(
        p["delay"].as_str().unwrap().ends_with('s') && p["execution"].as_str().unwrap().ends_with(" s"),
        "{p:#}"
    );
    assert_eq!(p["worker"], "echo-1");
    page.0.screenshot(&screenshots().join("completed.png")).await;

    // A streaming job shows its chunks while it still runs.
    page.edit(r#"{"input": {"message": "chunk", "repeat": 4, "stream": true, "delay_ms": 500}}"#).await;
    page.0.click("#run").await;
    let p = page
        .wait("a chunk before the end", |p| {
            p["status"] == "IN_PROGRESS" && !p["chunks"].as_array().unwrap().is_empty()
        })
        .await;
    assert!(p["chunks"].as_array().unwrap().len() < 4, "{p:#}");
    let p = page.wait("the stream completed", |p| p["status"] == "COMPLETED").await;
    assert_eq!(p["chunks"], json!(["chunk", "chunk", "chunk", "chunk"]));

    // Output is text, never markup.
    page.edit(r#"{"input": {"message": "<img src=x onerror=\"window.pwned=true\"><b>bold</b>"}}"#).await;
    let p = page.run_and_wait("#run", "COMPLETED").await;
    assert!(p["output"].as_str().unwrap().contains("<b>bold</b>"), "{p:#}");
    assert_eq!((p["outputElements"].as_u64(), p["pwned"].as_bool()), (Some(0), Some(false)));

    // A failing job shows its error; Retry is offered.
    page.edit(r#"{"input": {"message": "x", "repeat": 0}}"#).await;
    let p = page.run_and_wait("#runsync", "FAILED").await;
    let failed = p["jobId"].as_str().unwrap().to_owned();
    assert!(failed.starts_with("sync-"), "Run sync: {failed}");
    let error = p["error"].as_str().unwrap();
    // The worker checks the input against its types' schema before the handler runs.
    assert!(error.contains("invalid input at `input.repeat`"), "{error}");
    assert_eq!((p["retry"].as_bool(), p["cancel"].as_bool()), (Some(true), Some(false)));

    // s3Config secrets go to the endpoint, never back into the page.
    page.edit(r#"{"input": {"message": "with s3"}}"#).await;
    page.0.click("#options summary").await;
    for (field, value) in [
        ("#s3-access-id", "AKIDCONSOLE"),
        ("#s3-access-secret", "s3cr3t-never-shown"),
        ("#s3-bucket", "bucket"),
        ("#s3-endpoint", "http://127.0.0.1:1"),
    ] {
        page.0.type_into(field, value).await;
    }
    page.wait("the s3Config check", |p| p["checking"] == false && p["checkOk"] == true).await;
    let p = page.run_and_wait("#run", "COMPLETED").await;
    assert!(!p["text"].as_str().unwrap().contains("s3cr3t"), "{p:#}");
    let listed = http
        .get(format!("{}/console/api/jobs", ep.base_url()))
        .bearer_auth(KEY)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!listed.contains("s3cr3t") && !listed.contains("AKIDCONSOLE"), "{listed}");

    // The requests list has every job; clicking one opens it.
    let p = page.wait("the requests list", |p| p["jobs"].as_array().unwrap().len() == 7).await;
    let row = |id: &str| p["jobs"].as_array().unwrap().iter().find(|j| j["id"] == id).cloned();
    assert_eq!(row(&queued).unwrap()["status"], "CANCELLED");
    assert_eq!(row(&failed).unwrap()["status"], "FAILED");
    page.0.click(&format!("#jobs tr[data-id='{id}']")).await;
    let p = page.wait("the opened job", |p| p["jobId"] == id.as_str() && p["status"] == "COMPLETED").await;
    assert!(p["output"].as_str().unwrap().contains("hello console"), "{p:#}");
    let p = page.wait("the health counters", |p| p["health"]["completed"] == "4").await;
    assert_eq!(p["health"]["failed"], "2", "{p:#}");

    // Retry re-queues the failed job; it fails again (same input).
    page.0.click(&format!("#jobs tr[data-id='{failed}']")).await;
    page.wait("the failed job", |p| p["jobId"] == failed.as_str() && p["retry"] == true).await;
    page.0.click("#retry").await;
    let p = page.wait("the retried job failed again", |p| {
        p["status"] == "FAILED" && p["timeline"].as_array().unwrap().first() == Some(&json!("IN_QUEUE"))
    });
    let p = p.await;
    assert!(p["error"].as_str().unwrap().contains("invalid input at `input.repeat`"), "{p:#}");
    ep.shutdown().await;
}

/// `echo --serve-api --port 0` in `dir` (the endpoint in-process, with the worker's schema), and
/// the console's URL it prints.
fn serve_api(dir: &std::path::Path) -> (EchoWorker, String) {
    let mut c = Command::new(env!("CARGO_BIN_EXE_echo"));
    for (k, _) in std::env::vars() {
        if k.starts_with("RUNPOD_") || k == "RUST_LOG" {
            c.env_remove(k);
        }
    }
    let mut child = c
        .args(["--serve-api", "--port", "0"])
        .current_dir(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let worker = EchoWorker(child);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(url) = line.trim().strip_prefix("console: ") {
                let _ = tx.send(url.split(' ').next().unwrap_or_default().to_owned());
            }
        }
    });
    let console =
        rx.recv_timeout(std::time::Duration::from_secs(60)).expect("--serve-api printed the console's URL");
    assert!(console.starts_with("http://127.0.0.1:") && console.ends_with('/'), "{console}");
    (worker, console)
}

/// What the form shows: each field's label text, value and error, by path.
const READ_FORM: &str = r#"
const fields = {};
for (const f of document.querySelectorAll('#form .field')) {
  const control = f.querySelector(':scope > input, :scope > select, :scope > textarea');
  const error = f.querySelector(':scope > .field-error');
  fields[f.dataset.path] = {
    label: [...f.querySelectorAll(':scope > .field-head, :scope > .field-help, :scope > legend')]
      .map((e) => e.innerText).join('\n'),
    kind: control ? (control.type || control.tagName.toLowerCase()) : 'group',
    value: control ? (control.type === 'checkbox' ? control.checked : control.value) : null,
    min: control && control.min, max: control && control.max, placeholder: control && control.placeholder,
    options: control && control.tagName === 'SELECT' ? [...control.options].map((o) => o.text) : null,
    error: error ? error.textContent : '',
  };
}
return {shown: !document.getElementById('form-box').hidden, fields, editor: document.getElementById('editor').value,
        check: document.getElementById('check').textContent,
        checking: document.getElementById('check').getAttribute('aria-busy') === 'true'};
"#;

/// The request tab's form, built from the echo worker's schema (its Rust types): fill it, run,
/// see the output; the JSON follows the form and the form the JSON; a value out of range shows
/// its error next to the field before anything is sent, and Run then creates no job.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_form_from_the_workers_types_runs_jobs_and_refuses_out_of_range_values() {
    let Some(browser) = Browser::start().await else { return };
    let page = Page(browser);
    let dir = std::env::temp_dir().join(format!("echo-form-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (worker, console) = serve_api(&dir);
    let form = || async { page.0.eval(READ_FORM, json!([])).await };

    page.0.goto(&console).await;
    let f = page.0.wait_for("the form", 60, || async {
        let f = form().await;
        (f["fields"].get("input.repeat").is_some().then(|| f.clone()), f)
    });
    let f = f.await;
    assert_eq!(f["shown"], true);
    let fields = &f["fields"];
    let message = &fields["input.message"];
    assert_eq!(message["kind"], "text", "{f:#}");
    let label = message["label"].as_str().unwrap();
    assert!(label.contains("string") && label.contains("required"), "{label}");
    let repeat = &fields["input.repeat"];
    assert_eq!(
        (&repeat["kind"], &repeat["min"], &repeat["max"]),
        (&json!("number"), &json!("1"), &json!("100"))
    );
    assert_eq!(repeat["placeholder"], "1");
    let label = repeat["label"].as_str().unwrap();
    for fact in ["integer", "1 to 100", "default 1", "How many times to repeat the message."] {
        assert!(label.contains(fact), "{fact:?} not in {label:?}");
    }
    assert_eq!(fields["input.stream"]["kind"], "checkbox");
    page.0.screenshot(&screenshots().join("form-empty.png")).await;
    // The same schema, from the worker in the same process, in the endpoint's OpenAPI document.
    let doc: Value = reqwest::get(format!("{console}openapi.json")).await.unwrap().json().await.unwrap();
    let input = &doc["components"]["schemas"]["Input"];
    assert_eq!(
        (&input["title"], &input["properties"]["repeat"]["maximum"]),
        (&json!("EchoInput"), &json!(100))
    );
    assert_eq!(doc["components"]["schemas"]["Output"]["title"], "EchoOutput");

    // Fill the form: the JSON follows, the check passes, Run gives the output.
    page.0.type_into("[name='input.message']", "from the form").await;
    page.0.type_into("[name='input.repeat']", "2").await;
    let f = page
        .0
        .wait_for("the JSON from the form, checked", 30, || async {
            let f = form().await;
            let body: Value = serde_json::from_str(f["editor"].as_str().unwrap_or("")).unwrap_or_default();
            let done =
                body["input"] == json!({"message": "from the form", "repeat": 2}) && f["checking"] == false;
            (done.then(|| f.clone()), f)
        })
        .await;
    assert_eq!(f["check"], "Valid request", "{f:#}");
    let p = page.run_and_wait("#run", "COMPLETED").await;
    let output: Value = serde_json::from_str(p["output"].as_str().unwrap()).unwrap();
    assert_eq!(output, json!({"echo": "from the form from the form", "repeat": 2}));

    // The form follows the JSON.
    page.edit(r#"{"input": {"message": "from the JSON", "repeat": 3, "stream": true}}"#).await;
    let f = form().await;
    assert_eq!(f["fields"]["input.message"]["value"], "from the JSON");
    assert_eq!(f["fields"]["input.repeat"]["value"], "3");
    assert_eq!(f["fields"]["input.stream"]["value"], true);

    // Out of range: the error next to the field, in the typed decode's words; Run sends nothing.
    page.0.type_into("[name='input.repeat']", "500").await;
    let f = page
        .0
        .wait_for("the error next to repeat", 30, || async {
            let f = form().await;
            (
                f["fields"]["input.repeat"]["error"]
                    .as_str()
                    .is_some_and(|e| !e.is_empty())
                    .then(|| f.clone()),
                f,
            )
        })
        .await;
    assert_eq!(
        f["fields"]["input.repeat"]["error"],
        "invalid value: integer `500`, expected a value from 1 to 100"
    );
    assert_eq!(f["fields"]["input.message"]["error"], "");
    page.0.screenshot(&screenshots().join("form-out-of-range.png")).await;
    let jobs = || async {
        let info: Value =
            reqwest::get(format!("{console}console/api/jobs")).await.unwrap().json().await.unwrap();
        info["total"].clone()
    };
    let before = jobs().await;
    assert_eq!(before, 1, "the one job run so far");
    page.0.click("#run").await;
    let p = page.wait("the refusal", |p| p["checking"] == false && p["checkOk"] == false).await;
    assert!(p["check"].as_str().unwrap().contains("invalid input at `input.repeat`"), "{p:#}");
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert_eq!(jobs().await, before, "no job was created");

    // Back in range: the error goes.
    page.0.type_into("[name='input.repeat']", "4").await;
    page.0
        .wait_for("the error gone", 30, || async {
            let f = form().await;
            ((f["fields"]["input.repeat"]["error"] == "" && f["check"] == "Valid request").then_some(()), f)
        })
        .await;
    drop(worker);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_api_prints_the_console_which_starts_from_test_input_json_and_shows_job_logs() {
    let Some(browser) = Browser::start().await else { return };
    let page = Page(browser);
    let dir = std::env::temp_dir().join(format!("echo-console-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let request = "{\"input\": {\"message\": \"from the file\", \"repeat\": 2}}\n";
    std::fs::write(dir.join("test_input.json"), request).unwrap();
    let (worker, console) = serve_api(&dir);

    page.0.goto(&console).await;
    let p = page.wait("the request from test_input.json", |p| p["editor"] == request).await;
    assert_eq!(p["source"], "from test_input.json");
    assert_eq!(p["keyForm"], false, "--serve-api has no key");
    page.wait("the check", |p| p["checking"] == false && p["checkOk"] == true).await;
    page.0.press("#editor", "\u{E009}\u{E007}").await; // Ctrl+Enter runs
    let p = page
        .wait("the job's log line", |p| {
            p["status"] == "COMPLETED" && p["logs"].as_str().unwrap_or("").contains("job completed")
        })
        .await;
    let output: Value = serde_json::from_str(p["output"].as_str().unwrap()).unwrap();
    assert_eq!(output, json!({"echo": "from the file from the file", "repeat": 2}));
    assert_eq!(p["worker"], "local-worker");
    page.0.screenshot(&screenshots().join("serve-api-logs.png")).await;
    drop(worker);
    std::fs::remove_dir_all(&dir).unwrap();
}

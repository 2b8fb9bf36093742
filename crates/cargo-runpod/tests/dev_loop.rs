//! `cargo runpod` as a user runs it: `new` in a temporary folder, `run`, then `dev` with jobs
//! sent over HTTP while the handler is edited (the rebuild seen, the next job answered by the
//! new code), broken (the old worker keeps serving, the error on the console), and fixed; then
//! Ctrl-C during one more rebuild, after which no process of the session is left.
//!
//! The new crate builds into this workspace's own target folder, as the README-commands test's
//! new crates do: the template's `[profile.dev]` is the workspace's, so the dependencies the
//! test build compiled are reused and only the runtime's crates are compiled again
//! (docs/cargo-runpod.md has the figures).

use serde_json::{json, Value};
use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A cold build of the new crate (the runtime and its dependencies) on 2 busy cores.
const COLD_BUILD: Duration = Duration::from_secs(1800);
/// An incremental rebuild after an edit of the handler, and a restart.
const REBUILD: Duration = Duration::from_secs(300);
/// A job's answer from a running worker.
const ANSWER: Duration = Duration::from_secs(60);

fn cargo_runpod() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_cargo-runpod"));
    cmd.arg("runpod");
    // The variables cargo sets for this test describe this package, not the new one.
    for (k, _) in std::env::vars() {
        if k.starts_with("CARGO_PKG_") || matches!(k.as_str(), "CARGO_MANIFEST_DIR" | "CARGO_CRATE_NAME") {
            cmd.env_remove(k);
        }
    }
    cmd.env("CARGO_TARGET_DIR", shared_target()).env("CARGO_TERM_COLOR", "never");
    cmd
}

/// The target folder new worker crates build into: the one this test was built in (see the
/// module's doc), the folder above the `debug` folder that holds the tool.
fn shared_target() -> PathBuf {
    let tool = Path::new(env!("CARGO_BIN_EXE_cargo-runpod"));
    tool.parent().and_then(Path::parent).expect("the tool lies in <target>/debug").to_path_buf()
}

fn text(out: &Output) -> String {
    format!(
        "stdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// `cargo runpod dev`, its own process group (as a terminal's job), its output collected.
struct Dev {
    child: Child,
    log: Arc<Mutex<String>>,
}

impl Dev {
    fn start(dir: &Path) -> Dev {
        let mut child = cargo_runpod()
            .args(["dev", "--port", "0"])
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .spawn()
            .unwrap();
        let log = Arc::new(Mutex::new(String::new()));
        for pipe in [
            Box::new(child.stdout.take().unwrap()) as Box<dyn Read + Send>,
            Box::new(child.stderr.take().unwrap()),
        ] {
            let log = log.clone();
            std::thread::spawn(move || {
                let mut pipe = pipe;
                let mut buf = [0u8; 4096];
                while let Ok(n) = pipe.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    log.lock().unwrap().push_str(&String::from_utf8_lossy(&buf[..n]));
                }
            });
        }
        Dev { child, log }
    }

    fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// Waits until `needle` appears `count` times in the output.
    fn wait_for(&mut self, needle: &str, count: usize, limit: Duration) -> String {
        let started = Instant::now();
        loop {
            let log = self.log();
            if log.matches(needle).count() >= count {
                return log;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("cargo runpod dev exited ({status}) before printing {needle:?}:\n{log}");
            }
            assert!(started.elapsed() < limit, "no {needle:?} (x{count}) after {limit:?}:\n{log}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Ctrl-C as a terminal sends it: SIGINT to the whole process group.
    fn ctrl_c(&self) {
        kill_group(self.child.id(), libc::SIGINT);
    }
}

impl Drop for Dev {
    fn drop(&mut self) {
        // A failed assertion leaves nothing running either.
        kill_group(self.child.id(), libc::SIGKILL);
        let _ = self.child.wait();
    }
}

/// Sends `sig` to the process group `pgid` (one this test started).
#[allow(unsafe_code, reason = "kill(2) has no wrapper in std")]
fn kill_group(pgid: u32, sig: i32) {
    // SAFETY: kill(2) takes plain integers; a group already gone only yields ESRCH.
    unsafe { libc::kill(-(pgid as i32), sig) };
}

/// Every pid from `pid N` in the log (the workers `dev` started).
fn worker_pids(log: &str) -> Vec<i32> {
    log.match_indices("(pid ").filter_map(|(at, _)| log[at + 5..].split(')').next()?.parse().ok()).collect()
}

/// The live processes whose command line mentions `dir` or the new crate (cargo, rustc).
fn processes_under(dir: &Path) -> Vec<String> {
    let needles = [dir.to_string_lossy().into_owned(), "my_worker".to_owned()];
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else { continue };
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        if needles.iter().any(|n| cmdline.contains(n.as_str())) {
            found.push(format!("{}: {cmdline}", entry.file_name().to_string_lossy()));
        }
    }
    found
}

/// Replaces `from` by `to` in the crate's src/main.rs (the edit a user makes).
fn edit(dir: &Path, from: &str, to: &str) {
    let path = dir.join("src/main.rs");
    let source = std::fs::read_to_string(&path).unwrap();
    assert!(source.contains(from), "{from:?} not in src/main.rs");
    std::fs::write(&path, source.replacen(from, to, 1)).unwrap();
}

async fn runsync(http: &reqwest::Client, api: &str, input: Value) -> Value {
    let res = http.post(format!("{api}/runsync")).json(&json!({ "input": input })).send().await.unwrap();
    assert!(res.status().is_success(), "{}", res.status());
    res.json().await.unwrap()
}

/// Polls `/status/{id}` until the job is done.
async fn finished(http: &reqwest::Client, api: &str, id: &str, limit: Duration) -> Value {
    let started = Instant::now();
    loop {
        let status: Value =
            http.get(format!("{api}/status/{id}")).send().await.unwrap().json().await.unwrap();
        if matches!(status["status"].as_str(), Some("COMPLETED" | "FAILED" | "CANCELLED" | "TIMED_OUT")) {
            return status;
        }
        assert!(started.elapsed() < limit, "job {id} not done after {limit:?}: {status}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_run_and_dev_with_live_reload() {
    let tmp = std::env::temp_dir().join(format!("cargo-runpod-dev-loop-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp).unwrap();
    let dir = tmp.join("my-worker");

    // new: a crate that builds on its own, away from this repository.
    let out = cargo_runpod().args(["new", "my-worker"]).current_dir(&tmp).output().unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let manifest = std::fs::read_to_string(dir.join("Cargo.toml")).unwrap();
    assert!(manifest.contains("name = \"my-worker\""), "{manifest}");

    // run: one job, its result on stdout (the cold build, when the shared target is empty).
    let started = Instant::now();
    let out = cargo_runpod()
        .args(["run", "--input", r#"{"text": "a b a", "top": 1}"#])
        .current_dir(&dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    eprintln!("MEASURED: cargo runpod run (build included): {:.1} s", started.elapsed().as_secs_f64());
    let stdout = String::from_utf8_lossy(&out.stdout);
    let result: Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
    assert_eq!(result["status"], "COMPLETED", "{result}");
    assert_eq!(result["output"], json!({"words": 3, "top": [["a", 2]]}));
    // A failing job: exit 1, as the worker's --test-input.
    let out = cargo_runpod().args(["run", "--input", r#"{"text": 5}"#]).current_dir(&dir).output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert_failure_names_the_field(&out);

    // dev: the endpoint and the worker.
    let mut dev = Dev::start(&dir);
    let log = dev.wait_for("Watching", 1, COLD_BUILD);
    let api = log
        .split_whitespace()
        .find(|w| w.starts_with("http://") && w.ends_with("/v2/local"))
        .unwrap_or_else(|| panic!("no endpoint URL in:\n{log}"))
        .to_owned();
    let base = api.trim_end_matches("/v2/local").to_owned();
    let http = reqwest::Client::new();
    let answer = runsync(&http, &api, json!({"text": "x y x", "top": 1})).await;
    assert_eq!(answer["status"], "COMPLETED", "{answer}");
    assert_eq!(answer["output"]["words"], 3);

    // An edit of the handler: rebuilt, restarted; a job sent during the rebuild waits and is
    // answered (by the old worker, or queued for the new one), never lost.
    let started = Instant::now();
    edit(&dir, "let words = counts.values().sum();", "let words = counts.values().sum::<usize>() + 1000;");
    let queued: Value = http
        .post(format!("{api}/run"))
        .json(&json!({"input": {"text": "q", "top": 1}}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    dev.wait_for("Reloaded", 1, REBUILD);
    eprintln!("MEASURED: edit to reloaded worker: {:.1} s", started.elapsed().as_secs_f64());
    let done = finished(&http, &api, queued["id"].as_str().unwrap(), ANSWER).await;
    assert_eq!(done["status"], "COMPLETED", "{done}");
    let answer = runsync(&http, &api, json!({"text": "x y x", "top": 1})).await;
    assert_eq!(answer["output"]["words"], 1003, "the new code answers: {answer}");

    // A broken edit: the error in the terminal and on the console; the last good worker serves.
    edit(&dir, "sum::<usize>() + 1000;", "sum::<usize>() + \"1000\";");
    let log = dev.wait_for("build failed", 1, REBUILD);
    assert!(log.contains("error[E0277]") || log.contains("cannot add"), "{log}");
    let console: Value =
        http.get(format!("{base}/console/api/jobs")).send().await.unwrap().json().await.unwrap();
    let notice = console["notice"].as_str().unwrap_or_default();
    assert!(notice.contains("src/main.rs") && notice.contains("error"), "{console}");
    let answer = runsync(&http, &api, json!({"text": "x y x", "top": 1})).await;
    assert_eq!(answer["output"]["words"], 1003, "the old worker still answers: {answer}");

    // Fixed: the notice goes, the next worker answers.
    edit(&dir, "sum::<usize>() + \"1000\";", "sum::<usize>() + 2000;");
    dev.wait_for("Reloaded", 2, REBUILD);
    let console: Value =
        http.get(format!("{base}/console/api/jobs")).send().await.unwrap().json().await.unwrap();
    assert!(console["notice"].is_null(), "{console}");
    let answer = runsync(&http, &api, json!({"text": "x y x", "top": 1})).await;
    assert_eq!(answer["output"]["words"], 2003, "{answer}");

    // Ctrl-C while a rebuild compiles: the build is stopped, the worker stops, then the
    // endpoint; nothing of the session is left.
    let pids = worker_pids(&dev.log());
    assert_eq!(pids.len(), 3, "three workers started:\n{}", dev.log());
    edit(&dir, "sum::<usize>() + 2000;", "sum::<usize>() + 3000;");
    dev.wait_for("Compiling my-worker", 4, REBUILD);
    let started = Instant::now();
    dev.ctrl_c();
    let status = loop {
        if let Some(status) = dev.child.try_wait().unwrap() {
            break status;
        }
        assert!(started.elapsed() < ANSWER, "still running {ANSWER:?} after Ctrl-C:\n{}", dev.log());
        std::thread::sleep(Duration::from_millis(50));
    };
    eprintln!("MEASURED: Ctrl-C to exit: {:.2} s", started.elapsed().as_secs_f64());
    assert!(status.success(), "{status}\n{}", dev.log());
    let mut left = processes_under(&tmp);
    for pid in pids {
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        if String::from_utf8_lossy(&cmdline).contains("my-worker") {
            left.push(format!("worker {pid}"));
        }
    }
    assert!(left.is_empty(), "processes left behind: {left:?}");
    assert!(
        std::net::TcpStream::connect(base.trim_start_matches("http://")).is_err(),
        "the endpoint still answers"
    );
    drop(dev);
    std::fs::remove_dir_all(&tmp).unwrap();
}

/// The failed job's message names the field, as the runtime reports it.
fn assert_failure_names_the_field(out: &Output) {
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("\"FAILED\"") && stdout.contains("input.text"), "{}", text(out));
}

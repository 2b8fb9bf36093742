//! The `runpod-local` binary's data directory when things go wrong: a full disk (a real one: a
//! 2 MiB tmpfs mounted for the test, so root only), an empty data file, a path that cannot be a
//! directory.

use crate::common;

use common::BIN;
use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A `runpod-local` process whose stderr goes to a file, killed on drop.
struct Server {
    child: Child,
    base: String,
    log: PathBuf,
}

impl Server {
    fn start(args: &[&str], log: &Path) -> Server {
        let err = std::fs::File::create(log).unwrap();
        let mut child = Command::new(BIN)
            .args(args)
            .stdout(Stdio::piped())
            .stderr(err)
            .spawn()
            .expect("start runpod-local");
        let mut out = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        out.read_line(&mut line).unwrap();
        let base = line
            .trim()
            .strip_prefix("runpod-local listening on ")
            .unwrap_or_else(|| panic!("{line}: {}", std::fs::read_to_string(log).unwrap_or_default()))
            .to_owned();
        std::thread::spawn(move || std::io::copy(&mut out, &mut std::io::sink()));
        Server { child, base, log: log.to_owned() }
    }

    fn stderr(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    #[allow(unsafe_code, reason = "libc::kill has no safe wrapper in std")]
    fn sigterm(&self) {
        // SAFETY: kill(2) has no memory-safety preconditions.
        unsafe {
            libc::kill(self.child.id() as i32, libc::SIGTERM);
        }
    }

    /// Waits up to `timeout` for the exit; its code, or `None` if it still runs.
    fn wait(&mut self, timeout: Duration) -> Option<Option<i32>> {
        let end = Instant::now() + timeout;
        while Instant::now() < end {
            if let Ok(Some(st)) = self.child.try_wait() {
                return Some(st.code());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A tmpfs mounted on a fresh directory, unmounted on drop.
struct Tmpfs(PathBuf);

impl Tmpfs {
    /// `None` (with the reason) when this process cannot mount one.
    fn mount(size: &str) -> Result<Tmpfs, String> {
        // SAFETY: geteuid(2) has no preconditions.
        #[allow(unsafe_code, reason = "geteuid has no safe wrapper in std")]
        let uid = unsafe { libc::geteuid() };
        if uid != 0 {
            return Err(format!("not root (euid {uid}): mounting a tmpfs needs root"));
        }
        let dir = std::env::temp_dir().join(format!("runpod-local-full-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(&dir)
            .output()
            .map_err(|e| format!("cannot run mount: {e}"))?;
        if !out.status.success() {
            return Err(format!("mount -t tmpfs failed: {}", String::from_utf8_lossy(&out.stderr).trim()));
        }
        Ok(Tmpfs(dir))
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
        let _ = std::fs::remove_dir(&self.0);
    }
}

/// Writes `path` until the file system is full; the bytes written.
fn fill(path: &Path) -> u64 {
    let mut f = std::fs::File::create(path).unwrap();
    let block = vec![7u8; 16 << 10];
    let mut n = 0;
    while f.write_all(&block).is_ok() {
        n += block.len() as u64;
    }
    let _ = f.sync_all();
    n
}

fn http() -> reqwest::Client {
    reqwest::Client::builder().timeout(Duration::from_secs(20)).build().unwrap()
}

/// `POST /run` with `input`; the status code and the body.
async fn run(base: &str, input: &Value) -> (u16, Value) {
    let r = http()
        .post(format!("{base}/v2/local/run"))
        .bearer_auth("k")
        .json(&json!({ "input": input }))
        .send()
        .await
        .unwrap();
    let code = r.status().as_u16();
    (code, r.json().await.unwrap_or_default())
}

async fn in_queue(base: &str) -> u64 {
    let h: Value = http()
        .get(format!("{base}/v2/local/health"))
        .bearer_auth("k")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    h["jobs"]["inQueue"].as_u64().unwrap()
}

/// A full disk: `/run` answers 503 and keeps no job; once space is free, writes resume (the
/// data file is opened again); SIGTERM while writes fail ends the process in bounded time and
/// says what was not saved.
#[tokio::test]
async fn a_full_disk_refuses_jobs_recovers_and_still_stops() {
    let fs = match Tmpfs::mount("2m") {
        Ok(fs) => fs,
        Err(why) => {
            eprintln!("SKIPPED a_full_disk_refuses_jobs_recovers_and_still_stops: {why}");
            return;
        }
    };
    let data = fs.0.join("data");
    let log = std::env::temp_dir().join(format!("runpod-local-full-{}.log", std::process::id()));
    let args =
        ["--port", "0", "--api-key", "k", "--no-rate-limits", "--shutdown-grace-ms", "2000", "--data-dir"];
    let mut server = Server::start(&[&args[..], &[data.to_str().unwrap()]].concat(), &log);
    let base = server.base.clone();

    // Room enough: jobs are accepted.
    let big = json!("x".repeat(100 << 10));
    assert_eq!(run(&base, &json!({"n": 1})).await.0, 200);
    let filler = fs.0.join("filler");
    fill(&filler);

    // Full: a large job cannot be saved; the answer says so, and the job is not kept.
    let mut accepted = 1;
    let mut refused = None;
    for _ in 0..20 {
        match run(&base, &big).await {
            (200, _) => accepted += 1,
            (503, body) => {
                refused = Some(body);
                break;
            }
            (code, body) => panic!("{code} {body}"),
        }
    }
    let refused = refused.expect("a job larger than the free space is refused");
    assert!(refused["error"].as_str().unwrap().contains("could not be saved"), "{refused}");
    assert_eq!(in_queue(&base).await, accepted, "the refused job is not queued");
    assert!(server.stderr().contains("cannot write the data directory"), "{}", server.stderr());

    // Space again: writes resume without a restart.
    std::fs::remove_file(&filler).unwrap();
    let t = Instant::now();
    let resumed = loop {
        match run(&base, &json!({"after": "free"})).await {
            (200, body) => break body,
            (503, _) if t.elapsed() < Duration::from_secs(20) => {
                tokio::time::sleep(Duration::from_millis(200)).await
            }
            (code, body) => panic!("writes did not resume: {code} {body}\n{}", server.stderr()),
        }
    };
    assert_eq!(resumed["status"], "IN_QUEUE");
    accepted += 1;
    assert_eq!(in_queue(&base).await, accepted);
    assert!(server.stderr().contains("can be written again"), "{}", server.stderr());

    // A worker takes a job; the disk fills; its large result cannot be saved (503). SIGTERM
    // then ends the process in bounded time, and the log names the job whose change is lost.
    let taken: Value = http()
        .get(format!("{base}/v2/local/job-take/w1"))
        .header("Authorization", "k")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = taken["id"].as_str().unwrap().to_owned();
    fill(&filler);
    let done = http()
        .post(format!("{base}/v2/local/job-done/w1/{id}"))
        .header("Authorization", "k")
        .json(&json!({ "output": big }))
        .send()
        .await
        .unwrap();
    assert_eq!(done.status(), 503);
    let t = Instant::now();
    server.sigterm();
    let exit = server.wait(Duration::from_secs(20));
    assert!(exit.is_some(), "SIGTERM did not end the process within 20 s:\n{}", server.stderr());
    assert!(t.elapsed() < Duration::from_secs(10), "stopping took {:?}", t.elapsed());
    let log_text = server.stderr();
    assert!(log_text.contains("are not saved") && log_text.contains(&id), "{log_text}");

    // What was saved is there after a restart (with room again): the queued jobs, and the
    // taken one still running on its worker.
    std::fs::remove_file(&filler).unwrap();
    let server = Server::start(&[&args[..], &[data.to_str().unwrap()]].concat(), &log);
    assert_eq!(in_queue(&server.base).await, accepted - 1, "{}", server.stderr());
    let status: Value = http()
        .get(format!("{}/v2/local/status/{id}", server.base))
        .bearer_auth("k")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(status["status"], "IN_PROGRESS");
    drop(server);
    let _ = std::fs::remove_file(&log);
}

/// A 0-byte `jobs.redb` (a first start killed before the file got its header) holds no jobs:
/// the endpoint starts with none and says so.
#[tokio::test]
async fn an_empty_data_file_starts_empty_and_says_so() {
    let dir = std::env::temp_dir().join(format!("runpod-local-empty-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::File::create(dir.join("jobs.redb")).unwrap();
    let log = dir.with_extension("log");
    let server = Server::start(&["--port", "0", "--api-key", "k", "--data-dir", dir.to_str().unwrap()], &log);
    assert_eq!(run(&server.base, &json!(1)).await.0, 200);
    assert_eq!(in_queue(&server.base).await, 1);
    assert!(server.stderr().contains("the data file is empty"), "{}", server.stderr());
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
    let _ = std::fs::remove_file(&log);
}

/// A data directory that cannot be used is reported as such, not as an address problem.
#[test]
fn a_bad_data_dir_is_reported_as_a_data_dir_error() {
    let file = std::env::temp_dir().join(format!("runpod-local-not-a-dir-{}", std::process::id()));
    std::fs::write(&file, b"a file, not a directory").unwrap();
    let out = Command::new(BIN).args(["--port", "0", "--data-dir"]).arg(&file).output().unwrap();
    let _ = std::fs::remove_file(&file);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("cannot use the data directory"), "{err}");
    assert!(!err.contains("cannot listen"), "{err}");
}

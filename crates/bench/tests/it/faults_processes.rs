//! No worker process outlives the benchmark: `runpod-bench` interrupted (SIGINT, as Ctrl-C
//! sends it) while a worker runs ends that worker and everything it forked (the Python SDK's
//! heartbeat process included). Every process the run starts carries a tag in its environment;
//! after the bench exits, none may be left.

#![allow(unsafe_code, reason = "libc::kill has no safe wrapper in std")]

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const TAG_VAR: &str = "RUNPOD_BENCH_TEST_TAG";

/// `(pid, command line)` of the live processes whose environment holds `TAG_VAR=tag`.
fn tagged(tag: &str) -> Vec<(u32, String)> {
    let needle = format!("{TAG_VAR}={tag}");
    let Ok(dir) = std::fs::read_dir("/proc") else { return vec![] };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/environ"))
                .is_ok_and(|env| env.split(|b| *b == 0).any(|kv| kv == needle.as_bytes()))
        })
        .map(|pid| {
            let cmd = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            (pid, String::from_utf8_lossy(&cmd).replace('\0', " "))
        })
        .collect()
}

fn python_available() -> bool {
    if std::env::var_os("RUNPOD_TEST_PYTHON").is_some() {
        return true;
    }
    let why = "RUNPOD_TEST_PYTHON is not set (a Python with runpod==1.12.0, from scripts/test.d)";
    if std::env::var_os("CI").is_some() {
        panic!("{why}");
    }
    eprintln!("SKIPPED (the Python part): {why} (run ./scripts/test.sh)");
    false
}

/// Starts the bench, waits until `count` worker processes (whose program ends with `program`)
/// have each been running for 3 s (start-up measurements kill theirs within about 2 s, so these
/// are a scenario's), sends SIGINT, and checks that nothing tagged is left 10 s after it exited.
fn interrupt_when(name: &str, extra: &[&str], program: &str, count: usize) {
    let tag = format!("{name}-{}", std::process::id());
    let out = std::env::temp_dir().join(format!("runpod-bench-int-{tag}"));
    let mut bench = Command::new(env!("CARGO_BIN_EXE_runpod-bench"))
        .args(["--jobs", "2000", "--python-max-secs", "60", "--sleep-ms", "1000"])
        .args(["--startup-runs", "1", "--warmup", "1", "--concurrency", "1"])
        .arg("--worker-bin")
        .arg(env!("CARGO_BIN_EXE_runpod-bench-worker"))
        .arg("--out-dir")
        .arg(&out)
        .args(extra)
        .env(TAG_VAR, &tag)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run runpod-bench");
    let started = Instant::now();
    let mut first_seen = std::collections::HashMap::new();
    loop {
        let procs = tagged(&tag);
        let steady = procs
            .iter()
            // The bench's own command line names the worker binary too (--worker-bin): match the program.
            .filter(|(_, cmd)| cmd.split(' ').next().is_some_and(|exe| exe.ends_with(program)))
            .filter(|(pid, _)| {
                first_seen.entry(*pid).or_insert_with(Instant::now).elapsed() > Duration::from_secs(3)
            })
            .count();
        if steady >= count {
            break;
        }
        if let Ok(Some(status)) = bench.try_wait() {
            let mut err = String::new();
            let _ = bench.stderr.take().unwrap().read_to_string(&mut err);
            panic!("runpod-bench ended ({status}) before the worker ran:\n{err}");
        }
        if started.elapsed() > Duration::from_secs(180) {
            // SAFETY: kill(2) of our own child; SIGINT lets it end its workers.
            unsafe { libc::kill(bench.id() as libc::pid_t, libc::SIGINT) };
            let _ = bench.wait();
            panic!("the worker never came up: {procs:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let before = tagged(&tag);
    // SAFETY: kill(2) of our own child.
    unsafe { libc::kill(bench.id() as libc::pid_t, libc::SIGINT) };
    let status = bench.wait().unwrap();
    let mut err = String::new();
    let _ = bench.stderr.take().unwrap().read_to_string(&mut err);
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut left = tagged(&tag);
    while !left.is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
        left = tagged(&tag);
    }
    let _ = std::fs::remove_dir_all(&out);
    eprintln!("{name}: {} tagged processes at SIGINT, bench {status}, {} left", before.len(), left.len());
    for (pid, _) in &left {
        // SAFETY: kill(2); these carry this test's tag, so this run started them.
        unsafe { libc::kill(*pid as libc::pid_t, libc::SIGKILL) };
    }
    assert!(left.is_empty(), "left running after runpod-bench exited: {left:?}\nbench stderr:\n{err}");
    assert!(err.contains("interrupted"), "bench stderr:\n{err}");
}

#[test]
fn interrupted_bench_ends_our_worker() {
    interrupt_when("rs", &["--skip-python", "--max-secs", "60"], "runpod-bench-worker", 1);
}

#[test]
fn interrupted_bench_ends_the_python_worker_and_its_heartbeat_process() {
    if !python_available() {
        return;
    }
    // Two Python processes: the worker and the heartbeat process it forks (same program).
    interrupt_when("py", &["--max-secs", "0.2"], "python", 2);
}

//! Worker processes: spawning one with an endpoint's environment, and stopping it.
//!
//! Each worker leads a process group of its own, and stopping it (or dropping it, on any
//! error or Ctrl-C path) kills the whole group: the Python SDK forks a heartbeat process that
//! otherwise outlives its worker.

use anyhow::{Context, Result};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;
use tokio::process::{Child, Command};

/// How to start a worker of one kind.
#[derive(Clone, Debug)]
pub(crate) enum Kind {
    /// `runpod-bench-worker`, built on runpod-worker.
    Rust { bin: PathBuf },
    /// The Python SDK worker script run by this interpreter.
    Python { python: PathBuf, script: PathBuf },
}

impl Kind {
    /// The name used in rows and tables.
    pub(crate) fn name(&self) -> &'static str {
        match self {
            Kind::Rust { .. } => runpod_bench::report::RUST,
            Kind::Python { .. } => runpod_bench::report::PYTHON,
        }
    }

    /// Spawns a worker with `env` (the endpoint's `RUNPOD_*` variables) and `concurrency`,
    /// its output appended to `log`, in a new process group.
    pub(crate) fn spawn(
        &self,
        env: &[(String, String)],
        concurrency: usize,
        log: &Path,
    ) -> Result<WorkerProcess> {
        let mut cmd = match self {
            Kind::Rust { bin } => Command::new(bin),
            Kind::Python { python, script } => {
                let mut c = Command::new(python);
                c.arg(script);
                // The SDK's start-up fitness check exits the worker when the disk has less than
                // 10 % free, which a developer's disk often has; the check still runs (and
                // counts in its start-up time), with a 1 % threshold unless one is set.
                if std::env::var_os("RUNPOD_MIN_DISK_PERCENT").is_none() {
                    c.env("RUNPOD_MIN_DISK_PERCENT", "1");
                }
                c
            }
        };
        let out = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .with_context(|| format!("opening {}", log.display()))?;
        cmd.envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .env("BENCH_CONCURRENCY", concurrency.to_string())
            .stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out)
            .process_group(0)
            .kill_on_drop(true);
        let child = cmd.spawn().with_context(|| format!("spawning the {} worker", self.name()))?;
        let group = child.id().context("worker exited at once")?;
        Ok(WorkerProcess { child, group })
    }
}

/// A running worker, leader of its own process group; dropping it kills the group.
#[derive(Debug)]
pub(crate) struct WorkerProcess {
    child: Child,
    group: u32,
}

impl WorkerProcess {
    /// The worker's pid (`None` once it has been waited for).
    pub(crate) fn id(&self) -> Option<u32> {
        self.child.id()
    }
}

impl Drop for WorkerProcess {
    fn drop(&mut self) {
        signal_group(self.group, libc::SIGKILL);
    }
}

/// Sends SIGTERM and waits up to `grace` for the exit, then SIGKILLs the worker's process group
/// (what the worker forked included).
pub(crate) async fn stop(worker: &mut WorkerProcess, grace: Duration) {
    signal(worker.group, libc::SIGTERM);
    if tokio::time::timeout(grace, worker.child.wait()).await.is_err() {
        signal_group(worker.group, libc::SIGKILL);
        let _ = worker.child.wait().await;
    }
    // The Python SDK's heartbeat child may outlive its parent: end what is left of the group.
    signal_group(worker.group, libc::SIGKILL);
}

/// Sends `sig` to every process of group `pgid`.
#[allow(unsafe_code, reason = "libc::kill has no safe wrapper in std")]
fn signal_group(pgid: u32, sig: i32) {
    // SAFETY: kill(2) has no memory-safety preconditions; an empty group only yields ESRCH.
    unsafe {
        libc::kill(-(pgid as i32), sig);
    }
}

/// Sends `sig` to `pid`.
#[allow(unsafe_code, reason = "libc::kill has no safe wrapper in std")]
pub(crate) fn signal(pid: u32, sig: i32) {
    // SAFETY: kill(2) has no memory-safety preconditions; a stale pid only yields ESRCH.
    unsafe {
        libc::kill(pid as i32, sig);
    }
}

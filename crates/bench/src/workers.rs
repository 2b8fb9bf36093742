//! Worker processes: spawning one with an endpoint's environment, and stopping it.

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
    /// its output appended to `log`.
    pub(crate) fn spawn(&self, env: &[(String, String)], concurrency: usize, log: &Path) -> Result<Child> {
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
            .kill_on_drop(true);
        cmd.spawn().with_context(|| format!("spawning the {} worker", self.name()))
    }
}

/// Sends SIGTERM and waits up to `grace` for the exit, then SIGKILLs the whole tree.
pub(crate) async fn stop(child: &mut Child, grace: Duration) {
    if let Some(pid) = child.id() {
        let tree = runpod_bench::procfs::tree(pid).unwrap_or_else(|_| vec![pid]);
        signal(pid, libc::SIGTERM);
        if tokio::time::timeout(grace, child.wait()).await.is_err() {
            for p in tree.iter().rev() {
                signal(*p, libc::SIGKILL);
            }
            let _ = child.wait().await;
        }
        // The Python SDK's heartbeat child may outlive its parent: end what is left of the tree.
        for p in tree.iter().skip(1) {
            signal(*p, libc::SIGKILL);
        }
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

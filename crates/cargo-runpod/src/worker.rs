//! The worker process `cargo runpod dev` runs: the built binary in queue mode, pointed at the
//! local endpoint by the platform's `RUNPOD_*` variables, stopped as the platform stops it.

use crate::signal::kill;
use anyhow::{Context, Result};
use std::path::Path;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;
use tokio::process::{Child, Command};

/// A running worker.
#[derive(Debug)]
pub(crate) struct WorkerProcess {
    child: Child,
    /// Its worker id on the endpoint (`dev-1`, `dev-2`, ...: one per start).
    pub(crate) id: String,
}

impl WorkerProcess {
    /// Starts `exe` in `dir` with `env` (the endpoint's worker variables). Its output goes to
    /// this terminal.
    pub(crate) fn start(
        exe: &Path,
        dir: &Path,
        id: String,
        env: Vec<(String, String)>,
    ) -> Result<WorkerProcess> {
        let child = Command::new(exe)
            .current_dir(dir)
            .envs(env)
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("could not start {}", exe.display()))?;
        Ok(WorkerProcess { child, id })
    }

    /// Its process id, while it runs.
    pub(crate) fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// Completes when the process exits by itself.
    pub(crate) async fn exited(&mut self) -> std::io::Result<ExitStatus> {
        self.child.wait().await
    }

    /// Stops it as the platform does: SIGTERM, after which it takes no new job and finishes the
    /// running ones, delivering their results; killed if still there after `grace`, or at once
    /// when `now` completes first (a second Ctrl-C).
    pub(crate) async fn stop(
        mut self,
        grace: Duration,
        now: impl std::future::Future<Output = ()>,
    ) -> Option<ExitStatus> {
        if let Some(pid) = self.child.id() {
            kill(pid, libc::SIGTERM);
        }
        let waited = tokio::select! {
            r = tokio::time::timeout(grace, self.child.wait()) => r.ok().and_then(Result::ok),
            () = now => None,
        };
        match waited {
            Some(status) => Some(status),
            None => {
                let _ = self.child.start_kill();
                self.child.wait().await.ok()
            }
        }
    }
}

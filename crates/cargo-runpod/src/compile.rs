//! One `cargo build` of the worker, for `cargo runpod dev`: cargo's progress and diagnostics
//! shown as cargo shows them, and the result: the binary, or the error text for the console.

use crate::cli::CrateArgs;
use crate::project::Project;
use crate::shell;
use anyhow::{Context, Result};
use serde::Deserialize;
use std::collections::VecDeque;
use std::io::Write;
use std::path::PathBuf;
use std::process::Stdio;
use tokio::io::{AsyncBufReadExt, BufReader};

/// Lines of cargo's own stderr kept for the error text when no compiler error explains a
/// failure (a broken `Cargo.toml`, a missing dependency).
const KEPT_STDERR_LINES: usize = 40;

/// What a build gave.
#[derive(Debug)]
pub(crate) enum Outcome {
    /// The worker's binary.
    Built(PathBuf),
    /// The build failed; what cargo and rustc said, without colours.
    Failed(String),
}

#[derive(Deserialize)]
struct Message {
    reason: String,
    #[serde(default)]
    message: Option<Diagnostic>,
    #[serde(default)]
    executable: Option<PathBuf>,
    #[serde(default)]
    target: Option<TargetName>,
    #[serde(default)]
    success: Option<bool>,
}

#[derive(Deserialize)]
struct Diagnostic {
    level: String,
    rendered: Option<String>,
}

#[derive(Deserialize)]
struct TargetName {
    name: String,
}

/// Builds the worker's binary. Dropping the future stops the build (cargo and the compilers
/// it started: they run in a process group of their own).
pub(crate) async fn build(project: &Project, args: &CrateArgs) -> Result<Outcome> {
    let color = shell::color();
    let mut cmd = tokio::process::Command::from(project.cargo("build", args));
    cmd.arg("--bin").arg(&project.bin);
    cmd.arg("--message-format").arg(if color { "json-diagnostic-rendered-ansi" } else { "json" });
    if color {
        cmd.arg("--color").arg("always");
    }
    cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).process_group(0);
    let mut child = cmd.spawn().context("could not run cargo build")?;
    let group = GroupGuard(child.id());
    let stdout = child.stdout.take().context("cargo's stdout")?;
    let stderr = child.stderr.take().context("cargo's stderr")?;

    // cargo's own lines (`Compiling ...`, manifest errors) pass through; the last ones are kept.
    let forward = tokio::spawn(async move {
        let mut kept = VecDeque::new();
        let mut lines = BufReader::new(stderr).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            let _ = writeln!(std::io::stderr().lock(), "{line}");
            if kept.len() == KEPT_STDERR_LINES {
                kept.pop_front();
            }
            kept.push_back(shell::strip_ansi(&line));
        }
        kept
    });

    let mut errors = Vec::new();
    let mut executable = None;
    let mut finished_ok = false;
    let mut lines = BufReader::new(stdout).lines();
    while let Some(line) = lines.next_line().await.context("reading cargo's messages")? {
        let Ok(msg) = serde_json::from_str::<Message>(&line) else {
            // A build script's own output on stdout: shown as is.
            println!("{line}");
            continue;
        };
        match msg.reason.as_str() {
            "compiler-message" => {
                if let Some(Diagnostic { level, rendered: Some(text) }) = msg.message {
                    let _ = std::io::stderr().lock().write_all(text.as_bytes());
                    if level == "error" || level == "error: internal compiler error" {
                        errors.push(shell::strip_ansi(&text));
                    }
                }
            }
            "compiler-artifact" if msg.target.is_some_and(|t| t.name == project.bin) => {
                executable = msg.executable.or(executable);
            }
            "build-finished" => finished_ok = msg.success == Some(true),
            _ => {}
        }
    }
    let status = child.wait().await.context("waiting for cargo")?;
    group.disarm();
    let kept = forward.await.unwrap_or_default();
    match executable {
        Some(exe) if status.success() && finished_ok => Ok(Outcome::Built(exe)),
        _ if !errors.is_empty() => Ok(Outcome::Failed(errors.join("\n"))),
        _ => {
            let tail: Vec<String> = kept.into_iter().collect();
            Ok(Outcome::Failed(format!("cargo build failed ({status}):\n{}", tail.join("\n"))))
        }
    }
}

/// Kills the build's process group when the build is abandoned (dropped before it ended).
struct GroupGuard(Option<u32>);

impl GroupGuard {
    fn disarm(mut self) {
        self.0 = None;
    }
}

impl Drop for GroupGuard {
    fn drop(&mut self) {
        if let Some(pid) = self.0 {
            crate::signal::kill_group(pid, libc::SIGKILL);
        }
    }
}

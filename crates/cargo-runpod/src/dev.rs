//! `cargo runpod dev`: the worker against a local endpoint that stays up, rebuilt and restarted
//! on every change of its sources.
//!
//! The endpoint (runpod-local, in this process) holds the queue, the jobs and the console for
//! the whole session; the worker is a separate process in queue mode, as on the platform. On a
//! change: build; on success stop the old worker gracefully (SIGTERM: it finishes its running
//! job and delivers the result) and start the new one; jobs sent meanwhile wait in the queue.
//! On a failed build the error is printed and shown on the console page, and the old worker
//! keeps serving. Ctrl-C stops the worker the same graceful way, then the endpoint.

use crate::cli::DevArgs;
use crate::compile::{self, Outcome};
use crate::project::Project;
use crate::shell;
use crate::watch::Snapshot;
use crate::worker::WorkerProcess;
use anyhow::{Context, Result};
use runpod_local::LocalEndpoint;
use std::future::Future;
use std::process::ExitCode;
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// How often the sources are listed.
const POLL: Duration = Duration::from_millis(500);
/// How long a stopped worker may take to finish its jobs: the runtime's own shutdown grace
/// (30 s) and a margin, then it is killed.
const STOP_GRACE: Duration = Duration::from_secs(35);

/// Runs the dev loop until Ctrl-C.
pub(crate) async fn run(args: DevArgs) -> Result<ExitCode> {
    let project = Project::locate(args.krate.manifest_path.as_deref())?;
    // The console's editor starts from the crate's test_input.json (read from this folder).
    std::env::set_current_dir(&project.dir)
        .with_context(|| format!("cannot enter {}", project.dir.display()))?;
    let signals = crate::signal::stop_signals().context("cannot listen for Ctrl-C")?;

    // The first build before the endpoint opens: a request sent as soon as the port answers
    // finds a worker (or the console shows why there is none).
    let mut seen = Snapshot::take(&project.dir);
    shell::status("Building", format!("{} v{} ({})", project.name, project.version, project.dir.display()));
    let Some(first) = until_stopped(&signals, compile::build(&project, &args.krate)).await else {
        return Ok(ExitCode::from(130));
    };
    let first = first?;

    let mut builder = LocalEndpoint::builder().python_sdk_routes(true);
    if let Some(dir) = &args.data_dir {
        builder = builder.data_dir(dir);
    }
    let endpoint = builder
        .bind((args.host.as_str(), args.port))
        .await
        .with_context(|| format!("cannot serve the local endpoint on {}:{}", args.host, args.port))?;
    shell::note("Serving", format!("endpoint {} (no API key)", endpoint.endpoint_url()));
    shell::note("Console", endpoint.console_url());

    let mut starts = 0u32;
    let mut worker = None;
    let mut start = |exe: &std::path::Path, endpoint: &LocalEndpoint| -> Result<WorkerProcess> {
        starts += 1;
        let id = format!("dev-{starts}");
        let w = WorkerProcess::start(exe, &project.dir, id.clone(), endpoint.worker_env(&id))?;
        shell::status("Running", format!("worker `{id}` (pid {}) {}", w.pid().unwrap_or(0), exe.display()));
        Ok(w)
    };
    match first {
        Outcome::Built(exe) => worker = Some(start(&exe, &endpoint)?),
        Outcome::Failed(text) => failed(&endpoint, text, false),
    }
    shell::note("Watching", format!("{} for changes (Ctrl-C to stop)", project.dir.display()));

    loop {
        let event = tokio::select! {
            () = stopped(&signals) => Event::Stop,
            status = exited(&mut worker) => Event::Exited(status),
            () = tokio::time::sleep(POLL) => Event::Tick,
        };
        match event {
            Event::Stop => break,
            Event::Exited(status) => {
                let id = worker.take().map(|w| w.id).unwrap_or_default();
                match status {
                    Ok(s) => shell::warn(format!(
                        "worker `{id}` exited ({s}); it starts again after the next successful build"
                    )),
                    Err(e) => shell::warn(format!("worker `{id}`: {e}")),
                }
            }
            Event::Tick => {
                let now = Snapshot::take(&project.dir);
                let Some(file) = seen.changed_file(&now) else { continue };
                // Listed before the build: an edit made while it runs starts another.
                seen = now;
                shell::status("Rebuilding", format!("{} changed", file.display()));
                let started = Instant::now();
                let Some(outcome) = until_stopped(&signals, compile::build(&project, &args.krate)).await
                else {
                    break;
                };
                match outcome? {
                    Outcome::Built(exe) => {
                        endpoint.set_notice(None);
                        if let Some(old) = worker.take() {
                            shell::status(
                                "Restarting",
                                format!("worker `{}`: its running jobs finish first", old.id),
                            );
                            stop(old, &signals).await;
                        }
                        if *signals.borrow() > 0 {
                            break;
                        }
                        worker = Some(start(&exe, &endpoint)?);
                        shell::status("Reloaded", format!("in {:.1} s", started.elapsed().as_secs_f64()));
                    }
                    Outcome::Failed(text) => failed(&endpoint, text, worker.is_some()),
                }
            }
        }
    }

    shell::status("Stopping", "the worker (its running jobs finish), then the endpoint");
    if let Some(w) = worker.take() {
        stop(w, &signals).await;
    }
    endpoint.shutdown().await;
    Ok(ExitCode::SUCCESS)
}

/// Reports a failed build in the terminal and on the console page.
fn failed(endpoint: &LocalEndpoint, text: String, serving: bool) {
    let what = match serving {
        true => "build failed; the last good worker keeps serving until a build succeeds",
        false => "build failed; no worker runs until a build succeeds (jobs wait in the queue)",
    };
    shell::error(what);
    endpoint.set_notice(Some(format!("cargo runpod dev: {what}\n\n{text}")));
}

/// Stops `worker` gracefully; a second Ctrl-C kills it at once.
async fn stop(worker: WorkerProcess, signals: &watch::Receiver<u32>) {
    let id = worker.id.clone();
    let mut again = signals.clone();
    // During a restart the first Ctrl-C only ends the session (the job still finishes).
    let already = (*again.borrow()).max(1);
    let second = async move {
        let _ = again.wait_for(|n| *n > already).await;
    };
    match worker.stop(STOP_GRACE, second).await {
        Some(status) if status.success() => {}
        Some(status) => shell::warn(format!("worker `{id}` stopped with {status}")),
        None => shell::warn(format!("worker `{id}` could not be waited for")),
    }
}

/// The worker's exit, or never when none runs.
async fn exited(worker: &mut Option<WorkerProcess>) -> std::io::Result<std::process::ExitStatus> {
    match worker {
        Some(w) => w.exited().await,
        None => std::future::pending().await,
    }
}

/// What woke the loop.
enum Event {
    /// Ctrl-C (SIGINT) or SIGTERM.
    Stop,
    /// The worker exited by itself.
    Exited(std::io::Result<std::process::ExitStatus>),
    /// Time to list the sources again.
    Tick,
}

/// Completes once a stop signal came.
async fn stopped(signals: &watch::Receiver<u32>) {
    let mut signals = signals.clone();
    let _ = signals.wait_for(|n| *n > 0).await;
}

/// `work`'s result, or `None` when Ctrl-C comes first (the work is dropped: a build stops).
async fn until_stopped<T>(signals: &watch::Receiver<u32>, work: impl Future<Output = T>) -> Option<T> {
    tokio::select! {
        out = work => Some(out),
        () = stopped(signals) => None,
    }
}

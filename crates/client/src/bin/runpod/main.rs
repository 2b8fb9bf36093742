//! `runpod`: call a Runpod Serverless endpoint (or runpod-local) from scripts and shells.
//!
//! JSON answers go to stdout, one per line; errors go to stderr, control characters escaped
//! (see [`terminal`]); the exit code says what happened (see [`exit`]). While it waits on a terminal, a live progress line is drawn on stderr.

#![forbid(unsafe_code)]

mod args;
mod exit;
mod input;
mod progress;
mod terminal;

use anyhow::Context;
use args::{Cli, Command, JobArgs};
use clap::Parser;
use exit::Exit;
use futures::StreamExt;
use progress::Progress;
use runpod_client::{Endpoint, Error, JobState, PolicyBuilder, Request, API_KEY_ENV};
use serde_json::Value;
use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

/// How long past `--timeout-ms` a waiting command may take to report the status it last saw.
const WAIT_GRACE: Duration = Duration::from_secs(2);

fn main() -> ExitCode {
    let cli = Cli::parse();
    let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("runpod: error: cannot start the async runtime: {e}");
            return Exit::Usage.into();
        }
    };
    // The whole command, retries included, ends by the time limit: a waiting command gives up
    // on its own at the limit (exit 5, the last status printed) and this is its backstop.
    let timeout = cli.timeout();
    let limit = if cli.waits() { timeout + WAIT_GRACE } else { timeout };
    match rt.block_on(async { tokio::time::timeout(limit, run(cli, timeout)).await }) {
        Ok(Ok(code)) => code.into(),
        Ok(Err(e)) => {
            let code = match e.downcast_ref::<Error>() {
                Some(client_err) => Exit::of_error(client_err),
                None => Exit::Usage,
            };
            terminal::say(&format!("runpod: error: {}", message(&e)));
            code.into()
        }
        Err(_) => {
            eprintln!("runpod: error: no answer within {timeout:?} (--timeout-ms)");
            Exit::Network.into()
        }
    }
}

/// The error with its causes; the CLI takes the key from the environment only, so a missing
/// key says to set it.
fn message(e: &anyhow::Error) -> String {
    match e.downcast_ref::<Error>() {
        Some(Error::MissingApiKey) => format!("no API key: set {API_KEY_ENV}"),
        _ => format!("{e:#}"),
    }
}

async fn run(cli: Cli, timeout: Duration) -> anyhow::Result<Exit> {
    let Some(endpoint_id) = &cli.endpoint else {
        anyhow::bail!("no endpoint: pass --endpoint ID or set RUNPOD_ENDPOINT_ID");
    };
    let mut ep = Endpoint::new(endpoint_id, None)?;
    if let Some(base) = &cli.base_url {
        ep = ep.with_base_url(base)?;
    }
    match cli.command {
        Command::Run { job, wait } => {
            let req = request(&job)?;
            let handle = ep.run(&req).await?;
            if !wait {
                print_json(&serde_json::json!({"id": handle.id(), "status": handle.queued_status()}))?;
                return Ok(Exit::Ok);
            }
            wait_and_print(&ep, handle.id(), timeout).await
        }
        Command::Runsync { job } => {
            let req = request(&job)?;
            let progress = Progress::start("runsync");
            let result = ep.run_sync_with::<_, Value>(&req, timeout, |s| progress.update(s)).await;
            progress.finish();
            finish(result)
        }
        Command::Status { id, wait } => {
            if wait {
                return wait_and_print(&ep, &id, timeout).await;
            }
            let state = ep.status::<Value>(&id).await?;
            print_state(&state)?;
            Ok(Exit::of_status(state.status))
        }
        Command::Stream { id } => stream(&ep, &id, timeout).await,
        Command::Cancel { id } => {
            let state = ep.cancel(&id).await?;
            print_state(&state)?;
            Ok(Exit::Ok)
        }
        Command::Retry { id } => {
            let state = ep.retry(&id).await?;
            print_state(&state)?;
            Ok(Exit::Ok)
        }
        Command::PurgeQueue => {
            print_json(&ep.purge_queue().await?)?;
            Ok(Exit::Ok)
        }
        Command::Health => {
            print_json(&ep.health().await?)?;
            Ok(Exit::Ok)
        }
    }
}

/// The request the job flags describe.
fn request(job: &JobArgs) -> anyhow::Result<Request<Value>> {
    let input = input::parse(&job.input)?;
    let mut req = Request::new(input);
    if let Some(hook) = &job.webhook {
        req = req.webhook(hook);
    }
    if job.execution_timeout_ms.is_some() || job.ttl_ms.is_some() || job.low_priority {
        let mut p = PolicyBuilder::new();
        if let Some(ms) = job.execution_timeout_ms {
            p = p.execution_timeout(Duration::from_millis(ms));
        }
        if let Some(ms) = job.ttl_ms {
            p = p.ttl(Duration::from_millis(ms));
        }
        if job.low_priority {
            p = p.low_priority(true);
        }
        req = req.policy(p.build()?);
    }
    req.validate()?;
    Ok(req)
}

async fn wait_and_print(ep: &Endpoint, id: &str, timeout: Duration) -> anyhow::Result<Exit> {
    let progress = Progress::start(id);
    let result = ep.wait_with::<Value>(id, timeout, |s| progress.update(s)).await;
    progress.finish();
    finish(result)
}

/// Prints a final state (exit code from its status) or, on a wait timeout, the last status.
fn finish(result: Result<JobState<Value>, Error>) -> anyhow::Result<Exit> {
    match result {
        Ok(state) => {
            print_state(&state)?;
            Ok(Exit::of_status(state.status))
        }
        Err(Error::WaitTimeout { id, status, waited }) => {
            print_json(&serde_json::json!({"id": id, "status": status}))?;
            terminal::say(&format!("runpod: error: job {id} still {status} after waiting {waited:?}"));
            Ok(Exit::WaitTimeout)
        }
        Err(e) => Err(e.into()),
    }
}

async fn stream(ep: &Endpoint, id: &str, timeout: Duration) -> anyhow::Result<Exit> {
    let mut chunks = std::pin::pin!(ep.stream::<Value>(id));
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let next = match tokio::time::timeout_at(deadline, chunks.next()).await {
            Ok(next) => next,
            Err(_) => {
                terminal::say(&format!("runpod: error: job {id} still streaming after {timeout:?}"));
                return Ok(Exit::WaitTimeout);
            }
        };
        match next {
            None => return Ok(Exit::Ok),
            Some(Ok(chunk)) => print_json(&chunk)?,
            Some(Err(Error::JobEnded { id, status, error })) => {
                terminal::say(&format!(
                    "runpod: job {id} ended {status}{}",
                    error.map(|e| format!(": {e}")).unwrap_or_default()
                ));
                return Ok(Exit::of_status(status));
            }
            // Chunks are JSON values, so any error here is a failed request or an answer that
            // is not a stream answer: the stream ended, and the exit code says why.
            Some(Err(e)) => return Err(e.into()),
        }
    }
}

/// Prints a state in its wire form (`output` holds the progress of a running job).
fn print_state(s: &JobState<Value>) -> anyhow::Result<()> {
    let wire = runpod_protocol::StatusResponse {
        id: s.id.clone(),
        status: s.status,
        delay_time: s.delay_time,
        execution_time: s.execution_time,
        worker_id: s.worker_id.clone(),
        output: s.output.clone().or_else(|| s.progress.clone()),
        error: s.error.clone(),
    };
    print_json(&wire)
}

fn print_json(v: &impl serde::Serialize) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    serde_json::to_writer(&mut out, v).context("writing to stdout")?;
    writeln!(out).context("writing to stdout")?;
    out.flush().context("writing to stdout")
}

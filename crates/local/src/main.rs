//! `runpod-local`: a local Runpod Serverless endpoint, and the `worker-env` helper.

#![forbid(unsafe_code)]

mod hub_cmd;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use runpod_local::{worker_env_vars, LocalEndpoint, RateLimits, WebhookTargets};
use std::io::Write;
#[cfg(feature = "persistence")]
use std::path::PathBuf;
use std::time::Duration;

/// A local Runpod Serverless endpoint: the client API and the worker API on one machine.
#[derive(Parser)]
#[command(name = "runpod-local", version, args_conflicts_with_subcommands = true)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    serve: Serve,
}

#[derive(Subcommand)]
enum Command {
    /// Print the RUNPOD_* variables (KEY=VALUE, one a line) that point a worker at an endpoint.
    WorkerEnv {
        /// Base URL of the endpoint server.
        #[arg(long, default_value = "http://127.0.0.1:8000")]
        url: String,
        /// The worker's id (RUNPOD_POD_ID).
        #[arg(long, default_value = "w1")]
        worker_id: String,
        /// The endpoint's API key, if it has one.
        #[arg(long)]
        api_key: Option<String>,
        /// The endpoint id.
        #[arg(long, default_value = "local")]
        endpoint_id: String,
        /// Heartbeat period to advertise, in ms.
        #[arg(long, default_value_t = 10_000)]
        ping_interval_ms: u64,
        /// `env`: KEY=VALUE lines for `env $(...)`; `shell`: `export KEY='VALUE'` lines that a
        /// shell can source (`$ID` stays literal).
        #[arg(long, value_enum, default_value_t = EnvFormat::Env)]
        format: EnvFormat,
    },
    /// Serve a load-balancing endpoint in front of load-balancing workers
    /// (docs/load-balancing.md).
    #[cfg(feature = "load-balancer")]
    LoadBalance(LoadBalance),
    /// A worker's Runpod Hub listing: check it, write its tests.json, run its cases (docs/hub.md).
    Hub(hub_cmd::Hub),
}

/// How `worker-env` prints the variables.
#[derive(Clone, Copy, clap::ValueEnum)]
enum EnvFormat {
    /// KEY=VALUE, one a line.
    Env,
    /// export KEY='VALUE', one a line, quoted for sh/bash/zsh.
    Shell,
}

/// `load-balance`: the platform's load balancer, locally.
#[cfg(feature = "load-balancer")]
#[derive(Args)]
struct LoadBalance {
    /// A worker's base URL, optionally `=HEALTH_URL` when its health path is on another port;
    /// repeat the flag or separate with commas.
    #[arg(long = "worker", value_delimiter = ',', required = true)]
    workers: Vec<String>,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    host: String,
    /// Port to listen on; 0 picks a free one (the address is printed).
    #[arg(long, default_value_t = 8000)]
    port: u16,
    /// API key requests must carry (`Authorization: Bearer KEY`); without it any is accepted.
    #[arg(long, env = "RUNPOD_LOCAL_API_KEY", hide_env_values = true)]
    api_key: Option<String>,
    /// The health path polled on each worker.
    #[arg(long, default_value = "/ping")]
    health_path: String,
    /// How often each worker's health is polled, in ms.
    #[arg(long, default_value_t = 1_000)]
    probe_interval_ms: u64,
    /// How long a request waits for a healthy worker before 400, in ms (the platform: 2 min).
    #[arg(long, default_value_t = 120_000)]
    no_worker_timeout_ms: u64,
    /// How long a worker may take to answer before 524, in ms (the platform: 5.5 min).
    #[arg(long, default_value_t = 330_000)]
    request_timeout_ms: u64,
    /// Connections served at once [default: the open-files limit less 128].
    #[arg(long)]
    max_connections: Option<usize>,
    /// How long a connection may take to send request headers or stay idle, in ms.
    #[arg(long, default_value_t = 30_000)]
    header_timeout_ms: u64,
    /// Also serve requests whose Host is this name (IP addresses, localhost and the --host name
    /// always are): `.example.com` allows its subdomains, `*` any name and any web page's
    /// Origin (turns the guard against web pages off); repeat or separate with commas.
    #[arg(long = "allowed-host", value_delimiter = ',')]
    allowed_hosts: Vec<String>,
}

/// Serve an endpoint (the default command).
#[derive(Args)]
struct Serve {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    host: String,
    /// Port to listen on; 0 picks a free one (the address is printed).
    #[arg(long, default_value_t = 8000)]
    port: u16,
    /// Endpoint id: the API lives under /v2/{endpoint-id}/.
    #[arg(long, default_value = "local")]
    endpoint_id: String,
    /// API key both APIs require (not empty); without it any key is accepted.
    #[arg(long, env = "RUNPOD_LOCAL_API_KEY", hide_env_values = true,
          value_parser = clap::builder::NonEmptyStringValueParser::new())]
    api_key: Option<String>,
    /// A worker silent this long (ms) is lost and its running jobs go back to the queue.
    #[arg(long, default_value_t = 60_000)]
    ping_grace_ms: u64,
    /// How long job-take and job-stop hold a request open, in ms.
    #[arg(long, default_value_t = 30_000)]
    take_wait_ms: u64,
    /// Queued jobs beyond this are refused with 429.
    #[arg(long, default_value_t = 10_000)]
    max_queue: usize,
    /// Delay between webhook attempts, in ms.
    #[arg(long, default_value_t = 10_000)]
    webhook_retry_delay_ms: u64,
    /// Execution timeout of jobs whose policy sets none, in ms.
    #[arg(long, default_value_t = 600_000)]
    execution_timeout_ms: u64,
    /// Turn off the platform's rate limits.
    #[arg(long)]
    no_rate_limits: bool,
    /// Keep jobs and pending webhooks in this directory, so that they survive a restart (a
    /// SIGKILL included). Without it everything is in memory only.
    #[cfg(feature = "persistence")]
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// With --data-dir, also fsync every commit (survives a power loss too; slower).
    #[cfg(feature = "persistence")]
    #[arg(long, requires = "data_dir")]
    fsync: bool,
    /// How long a finished /run job stays readable, in ms.
    #[arg(long, default_value_t = 1_800_000)]
    run_retention_ms: u64,
    /// How long a finished /runsync job stays readable, in ms.
    #[arg(long, default_value_t = 60_000)]
    runsync_retention_ms: u64,
    /// Most MiB finished jobs may hold; past it the results closest to expiry are dropped.
    #[arg(long, default_value_t = 512)]
    max_retained_mb: usize,
    /// Connections served at once [default: the open-files limit less 128].
    #[arg(long)]
    max_connections: Option<usize>,
    /// How long a connection may take to send request headers or stay idle, in ms.
    #[arg(long, default_value_t = 30_000)]
    header_timeout_ms: u64,
    /// How long a request body may take to arrive, in ms.
    #[arg(long, default_value_t = 60_000)]
    body_timeout_ms: u64,
    /// Address kinds webhooks may go to besides public ones: private, loopback, link-local.
    #[arg(long, default_value = "public,private,loopback")]
    webhook_targets: WebhookTargets,
    /// On SIGINT or SIGTERM, how long to wait for requests in flight and webhooks, in ms.
    #[arg(long, default_value_t = 10_000)]
    shutdown_grace_ms: u64,
    /// Also serve requests whose Host is this name (IP addresses, localhost and the --host name
    /// always are): `.example.com` allows its subdomains, `*` any name and any web page's
    /// Origin (turns the guard against web pages off); repeat or separate with commas.
    #[arg(long = "allowed-host", value_delimiter = ',')]
    allowed_hosts: Vec<String>,
    /// The worker's schema document (what `<worker> --schema` prints): inputs that break it are
    /// answered 400 naming the field, /openapi.json shows it, the console builds a form from it.
    #[arg(long, value_name = "FILE")]
    schema: Option<std::path::PathBuf>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let command = cli.command;
    if let Some(Command::WorkerEnv { url, worker_id, api_key, endpoint_id, ping_interval_ms, format }) =
        command
    {
        for (k, v) in worker_env_vars(&url, &endpoint_id, &worker_id, api_key.as_deref(), ping_interval_ms) {
            match format {
                EnvFormat::Env => println!("{k}={v}"),
                EnvFormat::Shell => println!("export {k}={}", shell_quote(&v)),
            }
        }
        return Ok(());
    }
    if let Some(Command::Hub(h)) = command {
        std::process::exit(hub_cmd::main(h).await?);
    }
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    #[cfg(feature = "load-balancer")]
    if let Some(Command::LoadBalance(lb)) = command {
        return load_balance(lb).await;
    }
    let s = cli.serve;
    let mut builder = LocalEndpoint::builder()
        .endpoint_id(&s.endpoint_id)
        .ping_grace(Duration::from_millis(s.ping_grace_ms))
        .take_wait(Duration::from_millis(s.take_wait_ms))
        .max_queue(s.max_queue)
        .webhook_retry_delay(Duration::from_millis(s.webhook_retry_delay_ms))
        .execution_timeout(Duration::from_millis(s.execution_timeout_ms))
        .run_retention(Duration::from_millis(s.run_retention_ms))
        .runsync_retention(Duration::from_millis(s.runsync_retention_ms))
        .max_retained_bytes(s.max_retained_mb.saturating_mul(1 << 20))
        .header_timeout(Duration::from_millis(s.header_timeout_ms))
        .body_timeout(Duration::from_millis(s.body_timeout_ms))
        .webhook_targets(s.webhook_targets)
        .shutdown_grace(Duration::from_millis(s.shutdown_grace_ms));
    if let Some(n) = s.max_connections {
        builder = builder.max_connections(n);
    }
    for name in s.allowed_hosts.iter().chain([&s.host]) {
        builder = builder.allowed_host(name);
    }
    #[cfg(feature = "persistence")]
    if let Some(dir) = &s.data_dir {
        builder = builder.data_dir(dir).fsync(s.fsync);
    }
    if let Some(key) = &s.api_key {
        builder = builder.api_key(key);
    }
    if s.no_rate_limits {
        builder = builder.rate_limits(RateLimits::none());
    }
    if let Some(file) = &s.schema {
        builder = builder.schema(read_schema(file)?);
    }
    let ep = builder.bind((s.host.as_str(), s.port)).await.map_err(|e| start_error(e, &s.host, s.port))?;
    let mut out = std::io::stdout();
    writeln!(out, "runpod-local listening on {}", ep.base_url())?;
    writeln!(out, "endpoint: {}", ep.endpoint_url())?;
    #[cfg(feature = "console")]
    writeln!(out, "console: {} (open it in a browser)", ep.console_url())?;
    if s.api_key.is_none() {
        writeln!(out, "no --api-key given: accepting any key")?;
    }
    out.flush()?;
    runpod_local::shutdown_signal().await;
    ep.shutdown().await;
    Ok(())
}

/// Why the endpoint did not start: the data directory (its own message says so) or the
/// address.
fn start_error(e: std::io::Error, host: &str, port: u16) -> anyhow::Error {
    #[cfg(feature = "persistence")]
    if e.get_ref().is_some_and(|inner| inner.is::<runpod_local::DataDirError>()) {
        return anyhow::Error::new(e);
    }
    anyhow::Error::new(e).context(format!("cannot listen on {host}:{port}"))
}

/// The schema document in `file` (`--schema`); an error names the file and what is wrong.
fn read_schema(file: &std::path::Path) -> anyhow::Result<runpod_protocol::WorkerSchema> {
    let text =
        std::fs::read_to_string(file).with_context(|| format!("--schema: cannot read {}", file.display()))?;
    let doc: serde_json::Value =
        serde_json::from_str(&text).with_context(|| format!("--schema: {} is not JSON", file.display()))?;
    runpod_protocol::WorkerSchema::from_document(doc).with_context(|| format!("--schema: {}", file.display()))
}

/// `value` in single quotes for a POSIX shell: nothing inside is expanded.
fn shell_quote(value: &str) -> String {
    format!("'{}'", value.replace('\'', "'\\''"))
}

/// `runpod-local load-balance`: serves until Ctrl-C.
#[cfg(feature = "load-balancer")]
async fn load_balance(a: LoadBalance) -> anyhow::Result<()> {
    let mut builder = runpod_local::LoadBalancer::builder()
        .health_path(&a.health_path)
        .probe_interval(Duration::from_millis(a.probe_interval_ms.max(1)))
        .no_worker_timeout(Duration::from_millis(a.no_worker_timeout_ms))
        .request_timeout(Duration::from_millis(a.request_timeout_ms))
        .header_timeout(Duration::from_millis(a.header_timeout_ms));
    for w in &a.workers {
        builder = builder.worker(w);
    }
    for name in a.allowed_hosts.iter().chain([&a.host]) {
        builder = builder.allowed_host(name);
    }
    if let Some(n) = a.max_connections {
        builder = builder.max_connections(n);
    }
    if let Some(key) = &a.api_key {
        builder = builder.api_key(key);
    }
    let lb = builder
        .bind((a.host.as_str(), a.port))
        .await
        .with_context(|| format!("cannot start the load balancer on {}:{}", a.host, a.port))?;
    let mut out = std::io::stdout();
    writeln!(out, "runpod-local load balancer listening on {}", lb.base_url())?;
    for (id, url, _) in lb.workers() {
        writeln!(out, "worker {id}: {url}")?;
    }
    if a.api_key.is_none() {
        writeln!(out, "no --api-key given: accepting any key")?;
    }
    out.flush()?;
    tokio::signal::ctrl_c().await.context("waiting for Ctrl-C")?;
    lb.shutdown().await;
    Ok(())
}

//! Command-line flags.

use clap::{Args, Parser, Subcommand};

/// Call a Runpod Serverless endpoint: JSON on stdout, errors on stderr, exit code by outcome.
///
/// The API key is read from RUNPOD_API_KEY (never from a flag, so it stays out of `ps`).
#[derive(Debug, Parser)]
#[command(name = "runpod", version, after_help = crate::exit::HELP)]
pub(crate) struct Cli {
    /// Endpoint id.
    #[arg(long, short = 'e', env = "RUNPOD_ENDPOINT_ID", global = true)]
    pub endpoint: Option<String>,
    /// Base URL instead of https://api.runpod.ai/v2 (a URL with no path gets /v2, so a
    /// runpod-local address works as is).
    #[arg(long, env = "RUNPOD_BASE_URL", global = true)]
    pub base_url: Option<String>,
    #[command(subcommand)]
    pub command: Command,
}

/// What to do.
#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Queue a job; print {"id","status"} (with --wait: wait, print the final status).
    Run {
        #[command(flatten)]
        job: JobArgs,
        /// Wait until the job ends and print its final status.
        #[arg(long)]
        wait: bool,
        /// With --wait: give up after this many ms (exit 5).
        #[arg(long, default_value_t = 600_000)]
        timeout_ms: u64,
    },
    /// Queue a job and wait for its final status (/runsync, then /status polls).
    Runsync {
        #[command(flatten)]
        job: JobArgs,
        /// Give up after this many ms (exit 5).
        #[arg(long, default_value_t = 600_000)]
        timeout_ms: u64,
    },
    /// Print a job's status (with --wait: once it has ended).
    Status {
        /// Job id.
        id: String,
        /// Wait until the job ends.
        #[arg(long)]
        wait: bool,
        /// With --wait: give up after this many ms (exit 5).
        #[arg(long, default_value_t = 600_000)]
        timeout_ms: u64,
    },
    /// Print a job's streamed chunks, one JSON per line, until it ends.
    Stream {
        /// Job id.
        id: String,
        /// Give up after this many ms (exit 5).
        #[arg(long, default_value_t = 600_000)]
        timeout_ms: u64,
    },
    /// Cancel a queued or running job; print its status.
    Cancel {
        /// Job id.
        id: String,
    },
    /// Queue a FAILED or TIMED_OUT job again under its id; print its status.
    Retry {
        /// Job id.
        id: String,
    },
    /// Drop every queued (not running) job; print how many were removed.
    PurgeQueue,
    /// Print the endpoint's job and worker counters.
    Health,
}

/// The flags that describe a job request.
#[derive(Debug, Args)]
pub(crate) struct JobArgs {
    /// The job input: JSON text, @FILE, or @- for stdin.
    #[arg(long, short = 'i')]
    pub input: String,
    /// URL that receives the final status when the job ends.
    #[arg(long)]
    pub webhook: Option<String>,
    /// policy.executionTimeout in ms (must be > 5000).
    #[arg(long)]
    pub execution_timeout_ms: Option<u64>,
    /// policy.ttl in ms (10000 to 604800000).
    #[arg(long)]
    pub ttl_ms: Option<u64>,
    /// policy.lowPriority: never start a new worker for this job.
    #[arg(long)]
    pub low_priority: bool,
}

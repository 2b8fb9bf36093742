//! Command-line flags.

use clap::{Args, Parser, Subcommand};
use std::time::Duration;

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
    /// Give up after this many ms, retries included [default: 600000 for a command that waits
    /// (run --wait, runsync, status --wait, stream: exit 5 with the last status), 60000 for
    /// one that does not (exit 11)].
    #[arg(long, global = true, value_name = "MS")]
    pub timeout_ms: Option<u64>,
    #[command(subcommand)]
    pub command: Command,
}

/// How long a command that waits for a job may take by default.
pub(crate) const DEFAULT_WAIT_MS: u64 = 600_000;
/// How long any other command may take by default (a request, its retries and backoff).
pub(crate) const DEFAULT_CALL_MS: u64 = 60_000;

impl Cli {
    /// Whether the command waits for a job to end (its time limit is the wait's).
    pub(crate) fn waits(&self) -> bool {
        match &self.command {
            Command::Run { wait, .. } | Command::Status { wait, .. } => *wait,
            Command::Runsync { .. } | Command::Stream { .. } => true,
            Command::Cancel { .. } | Command::Retry { .. } | Command::PurgeQueue | Command::Health => false,
        }
    }

    /// The command's time limit: `--timeout-ms`, else the default for its kind.
    pub(crate) fn timeout(&self) -> Duration {
        let default = if self.waits() { DEFAULT_WAIT_MS } else { DEFAULT_CALL_MS };
        Duration::from_millis(self.timeout_ms.unwrap_or(default))
    }
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
    },
    /// Queue a job and wait for its final status (/runsync, then /status polls).
    Runsync {
        #[command(flatten)]
        job: JobArgs,
    },
    /// Print a job's status (with --wait: once it has ended).
    Status {
        /// Job id.
        id: String,
        /// Wait until the job ends.
        #[arg(long)]
        wait: bool,
    },
    /// Print a job's streamed chunks, one JSON per line, until it ends.
    Stream {
        /// Job id.
        id: String,
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

#[cfg(test)]
mod tests {
    use super::*;

    fn timeout_of(args: &[&str]) -> Duration {
        let argv = ["runpod", "--endpoint", "e"].iter().chain(args);
        Cli::try_parse_from(argv).unwrap().timeout()
    }

    #[test]
    fn every_command_has_a_time_limit() {
        let call = Duration::from_millis(DEFAULT_CALL_MS);
        let wait = Duration::from_millis(DEFAULT_WAIT_MS);
        assert_eq!(call, Duration::from_secs(60));
        for (args, want) in [
            (&["health"][..], call),
            (&["status", "j"], call),
            (&["cancel", "j"], call),
            (&["run", "--input", "1"], call),
            (&["status", "j", "--wait"], wait),
            (&["run", "--input", "1", "--wait"], wait),
            (&["runsync", "--input", "1"], wait),
            (&["stream", "j"], wait),
            (&["status", "j", "--timeout-ms", "1500"], Duration::from_millis(1500)),
            (&["--timeout-ms", "7", "health"], Duration::from_millis(7)),
        ] {
            assert_eq!(timeout_of(args), want, "{args:?}");
        }
    }
}

//! `runpod-local hub ...`: the Runpod Hub commands of the binary (docs/hub.md).

use anyhow::Context;
use clap::{Args, Subcommand};
use runpod_local::hub::{self, HubRun, Listing, WriteTests};
use std::path::PathBuf;
use std::time::Duration;

/// `hub`: a worker's Runpod Hub listing (`.runpod/hub.json`, `.runpod/tests.json`).
#[derive(Args)]
pub(crate) struct Hub {
    #[command(subcommand)]
    command: HubCommand,
}

#[derive(Subcommand)]
enum HubCommand {
    /// Check .runpod/hub.json and .runpod/tests.json against the Hub's publishing guide.
    Check {
        /// The worker's folder (the repository root on the Hub).
        #[arg(default_value = ".")]
        dir: PathBuf,
        /// The worker's --schema document: each case's input must have its required fields.
        #[arg(long)]
        schema: Option<PathBuf>,
    },
    /// Write .runpod/tests.json: a case from each test_input.json, the test machine from hub.json.
    Tests {
        /// The worker's folder (its .runpod/hub.json gives the test machine).
        #[arg(default_value = ".")]
        dir: PathBuf,
        /// A job file ({"input": {...}}) to make a case of, named for the file; repeatable
        /// [default: DIR/test_input.json].
        #[arg(long = "test-input")]
        test_inputs: Vec<PathBuf>,
        /// The worker's --schema document, to check each input's required fields.
        #[arg(long)]
        schema: Option<PathBuf>,
        /// Each case's timeout in ms [default: a replaced case's, else 60000].
        #[arg(long)]
        timeout_ms: Option<u64>,
        /// Where to write [default: DIR/.runpod/tests.json]; its other cases are kept.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Run every tests.json case against the worker through a local endpoint, as the Hub does.
    Run {
        /// The worker's folder.
        #[arg(default_value = ".")]
        dir: PathBuf,
        /// KEY=VALUE for the worker, over the listing's variables (a local model path); repeatable.
        #[arg(long = "env", value_parser = key_value)]
        env: Vec<(String, String)>,
        /// Run only this case; repeatable.
        #[arg(long = "case")]
        cases: Vec<String>,
        /// How long the worker may take to reach the endpoint, in ms.
        #[arg(long, default_value_t = 300_000)]
        start_timeout_ms: u64,
        /// Print the worker's output as it comes (else only its last lines on a failure).
        #[arg(long)]
        show_worker_log: bool,
        /// The command that starts the worker (after `--`).
        #[arg(last = true, required = true, num_args = 1..)]
        worker: Vec<String>,
    },
}

fn key_value(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_owned(), v.to_owned())),
        _ => Err(format!("{s:?} is not KEY=VALUE")),
    }
}

/// Runs the subcommand; the process's exit code: 0 passed, 1 failed.
pub(crate) async fn main(h: Hub) -> anyhow::Result<i32> {
    match h.command {
        HubCommand::Check { dir, schema } => {
            let schema = schema.map(|s| hub::read_json(&s)).transpose()?;
            let report = hub::check(&dir, schema.as_ref());
            eprint!("{report}");
            let files = dir.join(hub::RUNPOD_DIR);
            if report.passed() {
                println!("ok: {}/hub.json and tests.json pass the check", files.display());
                Ok(0)
            } else {
                println!("failed: {} error(s) in {}", report.errors().count(), files.display());
                Ok(1)
            }
        }
        HubCommand::Tests { dir, test_inputs, schema, timeout_ms, out } => {
            let inputs = if test_inputs.is_empty() { vec![dir.join("test_input.json")] } else { test_inputs };
            let out = out.unwrap_or_else(|| dir.join(hub::RUNPOD_DIR).join("tests.json"));
            let w = WriteTests { dir, inputs, schema, timeout_ms, out };
            let warnings = w.write()?;
            eprint!("{warnings}");
            println!("wrote {}", w.out.display());
            Ok(0)
        }
        HubCommand::Run { dir, env, cases, start_timeout_ms, show_worker_log, worker } => {
            let listing = Listing::read(&dir)?;
            let mut command = tokio::process::Command::new(&worker[0]);
            command.args(&worker[1..]);
            let mut run = HubRun::new(listing, command)
                .start_timeout(Duration::from_millis(start_timeout_ms))
                .echo_worker_log(show_worker_log)
                .on_case(|r| println!("{r}"));
            for (k, v) in env {
                run = run.env(k, v);
            }
            for c in cases {
                run = run.case(c);
            }
            let results = tokio::select! {
                r = run.run() => r.with_context(|| format!("running the cases of {}", dir.display()))?,
                () = runpod_local::shutdown_signal() => anyhow::bail!("interrupted; the worker was stopped"),
            };
            let failed = results.iter().filter(|r| !r.passed()).count();
            println!("{} passed, {failed} failed", results.len() - failed);
            Ok(if failed == 0 { 0 } else { 1 })
        }
    }
}

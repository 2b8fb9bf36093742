//! The runtime's command line, shared by every worker binary: its flags ([`RUNTIME_FLAGS`]),
//! and the mode they select. Other arguments are left to the program.

use crate::local::test_input;
use crate::{Handler, Worker, WorkerError};
use std::process::ExitCode;

/// What the command line asked for.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct Args {
    pub(crate) test_input: Option<String>,
    pub(crate) serve_api: bool,
    pub(crate) host: Option<String>,
    pub(crate) port: Option<u16>,
    pub(crate) concurrency: Option<usize>,
    pub(crate) log_level: Option<String>,
    pub(crate) debugger: bool,
    pub(crate) help: bool,
    pub(crate) ignored: Vec<String>,
}

/// The runtime's flags as `--help` prints them: a worker with its own `--help` (model
/// settings, say) prints this after its own text.
pub const RUNTIME_FLAGS: &str = "\
runpod worker options:
  --test-input <JSON|@FILE>   run one job ({\"input\": ...}) locally, print its result, exit 1 if it failed
                              (without it, ./test_input.json is used when the platform environment is absent)
  --serve-api                 serve the local endpoint in-process and run jobs from it
  --host <HOST>               address for --serve-api (default 127.0.0.1)
  --port <PORT>               port for --serve-api (default 8000; 0 picks a free one)
  --concurrency <N>           jobs run at once
  --log-level <LEVEL>         TRACE, DEBUG, INFO, WARN or ERROR (else RUNPOD_LOG_LEVEL, RUNPOD_DEBUG_LEVEL)
  --debugger                  per-job timings in each object output, under \"rp_debugger\"
The Python SDK's spellings work too: --test_input, --rp_serve_api, --rp_api_host, --rp_api_port,
--rp_api_concurrency, --rp_log_level, --rp_debugger. Without a local flag the worker reads the
platform's RUNPOD_* environment.";

/// Parses the runtime's flags out of `args` (the program name excluded).
pub(crate) fn parse_args(args: impl IntoIterator<Item = String>) -> Result<Args, WorkerError> {
    let mut out = Args::default();
    let mut it = args.into_iter();
    while let Some(arg) = it.next() {
        let (name, inline) = match arg.split_once('=') {
            Some((n, v)) if n.starts_with("--") => (n.to_owned(), Some(v.to_owned())),
            _ => (arg.clone(), None),
        };
        let mut value = |flag: &str| -> Result<String, WorkerError> {
            match inline.clone().or_else(|| it.next()) {
                Some(v) => Ok(v),
                None => Err(WorkerError::Args(format!("{flag} needs a value"))),
            }
        };
        match name.as_str() {
            "--test-input" | "--test_input" => out.test_input = Some(value("--test-input")?),
            "--serve-api" | "--rp_serve_api" => out.serve_api = true,
            "--host" | "--rp_api_host" => out.host = Some(value("--host")?),
            "--port" | "--rp_api_port" => {
                let v = value("--port")?;
                out.port =
                    Some(v.parse().map_err(|_| WorkerError::Args(format!("--port: {v:?} is not a port")))?);
            }
            "--concurrency" | "--rp_api_concurrency" => {
                let v = value("--concurrency")?;
                match v.parse::<usize>() {
                    Ok(n) if n > 0 => out.concurrency = Some(n),
                    _ => {
                        return Err(WorkerError::Args(format!(
                            "--concurrency: {v:?} is not a positive number"
                        )))
                    }
                }
            }
            "--log-level" | "--rp_log_level" => out.log_level = Some(value("--log-level")?),
            "--debugger" | "--rp_debugger" => out.debugger = true,
            "-h" | "--help" => out.help = true,
            _ => out.ignored.push(arg),
        }
    }
    Ok(out)
}

/// Runs the mode `args` select: `--help`, `--test-input`, `--serve-api`, a `./test_input.json`
/// when the platform's environment is absent, else the platform mode.
pub(crate) async fn run_mode<H: Handler>(
    mut worker: Worker<H>,
    args: impl IntoIterator<Item = String>,
) -> Result<(), WorkerError> {
    let args = parse_args(args)?;
    if args.help {
        println!("{RUNTIME_FLAGS}");
        return Ok(());
    }
    crate::init_logging(args.log_level.as_deref());
    if !args.ignored.is_empty() {
        tracing::debug!("arguments left to the program: {:?}", args.ignored);
    }
    if let Some(n) = args.concurrency {
        worker = worker.concurrency(n);
    }
    if args.debugger {
        worker = worker.debugger(true);
    }
    if let Some(raw) = &args.test_input {
        let job = test_input::read_test_input(raw)?;
        return test_input::print_test_job(worker, job).await;
    }
    if args.serve_api {
        let host = args.host.clone().unwrap_or_else(|| "127.0.0.1".into());
        return crate::local::serve_api::serve_api(worker, &host, args.port.unwrap_or(8000)).await;
    }
    if worker.opts.config.is_none()
        && std::env::var_os("RUNPOD_WEBHOOK_GET_JOB").is_none()
        && std::path::Path::new("test_input.json").is_file()
    {
        tracing::info!("no platform environment: running ./test_input.json");
        let job = test_input::read_test_input("@test_input.json")?;
        return test_input::print_test_job(worker, job).await;
    }
    worker.run().await
}

/// The process's exit status for how a run ended: 0 after a clean shutdown or a successful
/// test job, 1 on an error (said once on stderr, and logged on the platform) or a failed job.
pub(crate) fn exit_code(result: Result<(), WorkerError>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(WorkerError::JobFailed { .. }) => ExitCode::FAILURE,
        Err(e) => {
            // On the platform the log viewer reads the JSON lines; locally stderr says it once.
            if std::env::var_os("RUNPOD_ENDPOINT_ID").is_some() {
                tracing::error!("{e}");
            }
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &[&str]) -> Args {
        parse_args(s.iter().map(|s| s.to_string())).unwrap()
    }

    #[test]
    fn accepts_both_spellings() {
        let a = parse(&["--serve-api", "--port", "9000", "--host=0.0.0.0", "--concurrency", "3"]);
        assert!(a.serve_api);
        assert_eq!((a.port, a.host.as_deref(), a.concurrency), (Some(9000), Some("0.0.0.0"), Some(3)));
        let b = parse(&[
            "--rp_serve_api",
            "--rp_api_port=9000",
            "--rp_api_host",
            "0.0.0.0",
            "--rp_api_concurrency",
            "3",
        ]);
        assert_eq!(
            (b.serve_api, b.port, b.host, b.concurrency),
            (true, Some(9000), Some("0.0.0.0".into()), Some(3))
        );
        let c = parse(&["--test_input", "{\"input\": 1}", "--rp_log_level", "DEBUG", "--model", "x"]);
        assert_eq!(c.test_input.as_deref(), Some("{\"input\": 1}"));
        assert_eq!(c.log_level.as_deref(), Some("DEBUG"));
        assert_eq!(c.ignored, ["--model", "x"]);
    }

    #[test]
    fn rejects_bad_values() {
        let err = |s: &[&str]| parse_args(s.iter().map(|s| s.to_string())).unwrap_err().to_string();
        assert!(err(&["--port", "high"]).contains("--port"));
        assert!(err(&["--concurrency", "0"]).contains("--concurrency"));
        assert!(err(&["--test-input"]).contains("needs a value"));
    }
}

//! The runtime's command line, shared by every worker binary: its flags ([`RUNTIME_FLAGS`]),
//! and the mode they select. Other arguments are left to the program.

use crate::WorkerError;
use std::process::ExitCode;

/// What the command line asked for.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct Args {
    pub(crate) schema: bool,
    pub(crate) test_input: Option<String>,
    pub(crate) serve_api: bool,
    pub(crate) load_balancing: bool,
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
  --schema                    print the worker's schema document ({\"input\": <JSON Schema>, \"output\": ...}) and exit
                              (exit 2 when the worker has none: see Worker::schema_from_types)
  --test-input <JSON|@FILE>   run one job ({\"input\": ...}) locally, print its result, exit 1 if it failed
                              (without it, ./test_input.json is used when the platform environment is absent)
  --serve-api                 serve the local endpoint in-process and run jobs from it
  --load-balancing            serve as a load-balancing worker (also LOAD_BALANCING=1): the handler
                              on POST /run (or the worker's route) on PORT, the health path on PORT_HEALTH
  --host <HOST>               address for --serve-api (default 127.0.0.1)
  --port <PORT>               port for --serve-api (default 8000; 0 picks a free one)
  --concurrency <N>           jobs run at once
  --log-level <LEVEL>         TRACE, DEBUG, INFO, WARN or ERROR (else RUNPOD_LOG_LEVEL, RUNPOD_DEBUG_LEVEL)
  --debugger                  per-job timings in each object output, under \"rp_debugger\"
The Python SDK's spellings work too: --test_input, --rp_serve_api, --rp_api_host, --rp_api_port,
--rp_api_concurrency, --rp_log_level, --rp_debugger. Without a local flag the worker reads the
platform's RUNPOD_* environment (a queue endpoint), or serves HTTP on a load-balancing endpoint.";

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
            "--schema" => out.schema = true,
            "--test-input" | "--test_input" => out.test_input = Some(value("--test-input")?),
            "--serve-api" | "--rp_serve_api" => out.serve_api = true,
            "--load-balancing" => out.load_balancing = true,
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

/// The mode a worker runs in, besides `--help`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// `--schema`: the schema document, printed.
    Schema,
    /// One job from `--test-input`, printed.
    TestInput,
    /// `--serve-api`: the local endpoint in-process.
    ServeApi,
    /// An HTTP server behind the platform's load balancer.
    LoadBalancing,
    /// `./test_input.json` run as a test job (no platform environment).
    TestInputFile,
    /// Jobs from the platform's queue.
    Queue,
}

/// The mode `args` and the environment (`var`) select, in this order: `--schema`, `--test-input`,
/// `--serve-api`, load balancing (`--load-balancing`; `LOAD_BALANCING` truthy; or, unless it
/// is falsy, no `RUNPOD_WEBHOOK_GET_JOB` but `PORT_HEALTH` or `RUNPOD_ENDPOINT_ID`: a
/// load-balancing endpoint), `./test_input.json` without the platform's environment (and no
/// configuration given), else the queue.
pub(crate) fn select_mode(
    args: &Args,
    configured: bool,
    var: impl Fn(&str) -> Option<String>,
    test_input_file: impl FnOnce() -> bool,
) -> Mode {
    if args.schema {
        return Mode::Schema;
    }
    if args.test_input.is_some() {
        return Mode::TestInput;
    }
    if args.serve_api {
        return Mode::ServeApi;
    }
    let set = |name: &str| var(name).is_some_and(|v| !v.trim().is_empty());
    let lb_flag = var("LOAD_BALANCING").map(|v| v.trim().to_ascii_lowercase());
    let lb_said = match lb_flag.as_deref() {
        Some("1" | "true" | "yes" | "on") => Some(true),
        Some("0" | "false" | "no" | "off") => Some(false),
        _ => None,
    };
    let queue_env = set("RUNPOD_WEBHOOK_GET_JOB");
    let lb_endpoint = !configured && !queue_env && (set("PORT_HEALTH") || set("RUNPOD_ENDPOINT_ID"));
    if args.load_balancing || lb_said.unwrap_or(lb_endpoint) {
        return Mode::LoadBalancing;
    }
    if !configured && !queue_env && test_input_file() {
        return Mode::TestInputFile;
    }
    Mode::Queue
}

/// The process's exit status for how a run ended: 0 after a clean shutdown or a successful
/// test job, 1 on an error (said once on stderr, and logged on the platform) or a failed job,
/// 2 for `--schema` on a worker without a schema.
pub(crate) fn exit_code(result: Result<(), WorkerError>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(WorkerError::JobFailed { .. }) => ExitCode::FAILURE,
        Err(e @ WorkerError::NoSchema) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
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
    fn picks_the_mode_from_flags_then_environment() {
        let pick = |args: &[&str], env: &[(&str, &str)], file: bool| {
            let env: std::collections::HashMap<String, String> =
                env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
            select_mode(&parse(args), false, |k| env.get(k).cloned(), || file)
        };
        let queue = [("RUNPOD_WEBHOOK_GET_JOB", "http://x/job-take/$ID"), ("RUNPOD_ENDPOINT_ID", "e")];
        assert_eq!(pick(&[], &queue, true), Mode::Queue);
        assert_eq!(pick(&["--test-input", "{}", "--schema"], &queue, false), Mode::Schema);
        assert_eq!(pick(&["--test-input", "{}"], &queue, false), Mode::TestInput);
        assert_eq!(pick(&["--serve-api", "--load-balancing"], &[], false), Mode::ServeApi);
        assert_eq!(pick(&["--load-balancing"], &queue, false), Mode::LoadBalancing);
        assert_eq!(pick(&[], &[("LOAD_BALANCING", "1")], true), Mode::LoadBalancing);
        assert_eq!(pick(&[], &[("LOAD_BALANCING", "true")], false), Mode::LoadBalancing);
        // A load-balancing endpoint: no queue, the platform's variables.
        assert_eq!(pick(&[], &[("RUNPOD_ENDPOINT_ID", "e")], false), Mode::LoadBalancing);
        assert_eq!(pick(&[], &[("PORT", "5000"), ("PORT_HEALTH", "5001")], false), Mode::LoadBalancing);
        assert_eq!(pick(&[], &[("PORT_HEALTH", "5001"), ("LOAD_BALANCING", "0")], false), Mode::Queue);
        // PORT alone is any platform's variable: not a sign.
        assert_eq!(pick(&[], &[("PORT", "5000")], true), Mode::TestInputFile);
        assert_eq!(pick(&[], &[], false), Mode::Queue);
        // A worker given its configuration runs the queue.
        let env = |k: &str| (k == "RUNPOD_ENDPOINT_ID").then(|| "e".to_owned());
        assert_eq!(select_mode(&parse(&[]), true, env, || true), Mode::Queue);
    }

    #[test]
    fn rejects_bad_values() {
        let err = |s: &[&str]| parse_args(s.iter().map(|s| s.to_string())).unwrap_err().to_string();
        assert!(err(&["--port", "high"]).contains("--port"));
        assert!(err(&["--concurrency", "0"]).contains("--concurrency"));
        assert!(err(&["--test-input"]).contains("needs a value"));
    }
}

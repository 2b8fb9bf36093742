//! `runpod-bench`: our worker vs. the official Python SDK worker on a local endpoint.
//!
//! ```text
//! cargo run --release -p runpod-bench -- [--jobs 2000] [--max-secs 4] [--skip-python] ...
//! ```
//! Prints a side-by-side table, writes `report.json` and `chart.svg` into `--out-dir`.

mod durability;
mod load;
mod probe;
mod python;
mod workers;

use anyhow::{bail, Context, Result};
use clap::Parser;
use load::API_KEY;
use runpod_bench::procfs;
use runpod_bench::report::{Report, Row, Startup, FLOOR};
use runpod_bench::stats::{median, Summary};
use runpod_local::{LocalEndpoint, RateLimits};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use workers::Kind;

/// Benchmarks a runpod-rs worker against the official Python SDK worker on runpod-local.
/// A flag given twice takes its last value (`... --max-secs 2 --max-secs 0.3`).
#[derive(Parser, Debug, serde::Serialize)]
#[command(version, args_override_self = true)]
struct Args {
    /// Most jobs per scenario (a scenario also stops starting jobs after --max-secs).
    #[arg(long, default_value_t = 5000)]
    jobs: usize,
    /// Most seconds per scenario for our worker and the floor.
    #[arg(long, default_value_t = 4.0)]
    max_secs: f64,
    /// Most seconds per scenario for the Python worker (it drains about 1 job/s at c=1).
    #[arg(long, default_value_t = 8.0)]
    python_max_secs: f64,
    /// Concurrencies to measure (client requests in flight = worker concurrency).
    #[arg(long, value_delimiter = ',', default_value = "1,8")]
    concurrency: Vec<usize>,
    /// Handler sleep of the second scenario, ms.
    #[arg(long, default_value_t = 50)]
    sleep_ms: u64,
    /// Warm-up jobs per worker before measuring (per unit of concurrency).
    #[arg(long, default_value_t = 20)]
    warmup: usize,
    /// Start-up measurements of our worker (the Python one gets a third as many, at least 2).
    #[arg(long, default_value_t = 9)]
    startup_runs: usize,
    /// Leave out the Python worker.
    #[arg(long)]
    skip_python: bool,
    /// Python interpreter (or venv directory) with runpod==1.12.0; default $RUNPOD_TEST_PYTHON,
    /// else .cache/venv-runpod-1.12.0 (the test suite's; created on first use).
    #[arg(long)]
    python: Option<PathBuf>,
    /// The runpod-bench-worker binary; default: next to this binary (built if missing).
    #[arg(long)]
    worker_bin: Option<PathBuf>,
    /// Rounds of the runpod-local --data-dir comparison (0: skip it).
    #[arg(long, default_value_t = 3)]
    durability_rounds: usize,
    /// Seconds per measurement of that comparison.
    #[arg(long, default_value_t = 1.5)]
    durability_secs: f64,
    /// Where report.json, chart.svg and the worker logs go.
    #[arg(long, default_value = "target/runpod-bench")]
    out_dir: PathBuf,
}

fn main() -> Result<()> {
    let args = Args::parse();
    let root = workspace_root();
    let out_dir = if args.out_dir.is_absolute() { args.out_dir.clone() } else { root.join(&args.out_dir) };
    std::fs::create_dir_all(out_dir.join("logs"))?;
    let worker_bin = match &args.worker_bin {
        Some(p) => p.clone(),
        None => our_worker_bin()?,
    };
    let mut kinds = vec![Kind::Rust { bin: worker_bin }];
    if !args.skip_python {
        let cache = std::env::var_os("RUNPOD_RS_CACHE").map(PathBuf::from).unwrap_or(root.join(".cache"));
        std::fs::create_dir_all(&cache)?;
        let python = python::interpreter(args.python.as_deref(), &cache)?;
        let script = python::write_script(&out_dir)?;
        kinds.push(Kind::Python { python, script });
    }

    // The endpoint runs on its own threads, the load generator on others, as they would on a host.
    let endpoint_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("endpoint")
        .enable_all()
        .build()?;
    let load_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("load")
        .enable_all()
        .build()?;
    // Workers run in process groups of their own, out of reach of the terminal's Ctrl-C: on
    // Ctrl-C the run is dropped, and with it each worker's group (see workers.rs).
    let report = load_rt.block_on(async {
        tokio::select! {
            report = run_all(&args, &kinds, endpoint_rt.handle().clone(), &out_dir) => report,
            _ = tokio::signal::ctrl_c() => bail!("interrupted"),
        }
    })?;
    drop(endpoint_rt);

    println!("{}", report.table());
    let json = out_dir.join("report.json");
    std::fs::write(&json, serde_json::to_string_pretty(&report)?)?;
    let svg = out_dir.join("chart.svg");
    std::fs::write(&svg, runpod_bench::svg::chart(&report))?;
    println!("wrote {} and {}", json.display(), svg.display());
    Ok(())
}

async fn run_all(args: &Args, kinds: &[Kind], ep_rt: tokio::runtime::Handle, out: &Path) -> Result<Report> {
    let mut report = Report {
        machine: machine(),
        started_unix: std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_secs(),
        options: serde_json::to_value(args)?,
        ..Default::default()
    };
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(256)
        .tcp_nodelay(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    let max = Duration::from_secs_f64(args.max_secs);

    for &c in &args.concurrency {
        let ep = start_endpoint(&ep_rt).await?;
        let target =
            load::Target { client: client.clone(), endpoint_url: ep.endpoint_url(), api_key: API_KEY.into() };
        load::run(&target, load::Mode::Floor, args.warmup * c, c, max).await;
        let res = load::run(&target, load::Mode::Floor, args.jobs, c, max).await;
        eprintln!("floor c={c}: {:.0} pairs/s, {} errors {:?}", res.rate(), res.errors, res.first_error);
        report.rows.push(row(FLOOR, "loopback", 0, c, &res, None, None));
        stop_endpoint(&ep_rt, ep).await;
    }

    for kind in kinds {
        let python = matches!(kind, Kind::Python { .. });
        let runs = if python { (args.startup_runs / 3).max(2) } else { args.startup_runs.max(1) };
        let samples = startup(kind, runs, &ep_rt, out).await?;
        let ms: Vec<f64> = samples.iter().map(|d| d.as_secs_f64() * 1000.0).collect();
        let med = median(&samples).map(|d| d.as_secs_f64() * 1000.0).unwrap_or(f64::NAN);
        eprintln!("{} start-up to first job-take: median {med:.2} ms of {ms:?}", kind.name());
        report.startup.push(Startup { worker: kind.name().into(), samples_ms: ms, median_ms: med });

        let max = if python { Duration::from_secs_f64(args.python_max_secs) } else { max };
        for &c in &args.concurrency {
            let ep = start_endpoint(&ep_rt).await?;
            let target = load::Target {
                client: client.clone(),
                endpoint_url: ep.endpoint_url(),
                api_key: API_KEY.into(),
            };
            let log = out.join(format!("logs/{}-c{c}.log", kind.name()));
            let mut child = kind.spawn(&ep.worker_env(&format!("bench-{}-c{c}", kind.name())), c, &log)?;
            let pid = child.id().context("worker exited at once")?;
            let warm = if python { 2 * c } else { args.warmup * c };
            let res =
                load::run(&target, load::Mode::RunSync { sleep_ms: 0 }, warm, c, Duration::from_secs(120))
                    .await;
            if res.errors > 0 {
                bail!(
                    "{} worker warm-up failed: {:?} (log: {})",
                    kind.name(),
                    res.first_error,
                    log.display()
                );
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
            let idle = procfs::tree_memory(pid)?.rss_kib;
            for (scenario, sleep_ms) in [("noop", 0), (&format!("sleep{}", args.sleep_ms)[..], args.sleep_ms)]
            {
                let cpu0 = procfs::tree_cpu(pid)?;
                let res = load::run(&target, load::Mode::RunSync { sleep_ms }, args.jobs, c, max).await;
                let cpu = procfs::tree_cpu(pid)?.saturating_sub(cpu0);
                let peak = procfs::tree_memory(pid)?.hwm_kib;
                eprintln!(
                    "{} {scenario} c={c}: {:.1} jobs/s, p50 {:.3} ms, {} errors {}",
                    kind.name(),
                    res.rate(),
                    Summary::of(&res.latencies).map(|s| s.p50_ms).unwrap_or(f64::NAN),
                    res.errors,
                    res.first_error.as_deref().unwrap_or("")
                );
                let mut r = row(kind.name(), scenario, sleep_ms, c, &res, Some(idle), Some(peak));
                r.worker_cpu_ms_per_job = (r.jobs > 0).then(|| cpu.as_secs_f64() * 1000.0 / r.jobs as f64);
                report.rows.push(r);
            }
            workers::stop(&mut child, Duration::from_secs(3)).await;
            stop_endpoint(&ep_rt, ep).await;
        }
    }
    if let Some(rust) = kinds.iter().find(|k| matches!(k, Kind::Rust { .. })) {
        report.durability = durability::measure(
            rust,
            args.durability_rounds,
            args.durability_secs,
            &args.concurrency,
            &ep_rt,
            &client,
            out,
        )
        .await?;
    }
    Ok(report)
}

fn row(
    worker: &str,
    scenario: &str,
    handler_ms: u64,
    concurrency: usize,
    res: &load::LoadResult,
    idle: Option<u64>,
    peak: Option<u64>,
) -> Row {
    Row {
        worker: worker.into(),
        scenario: scenario.into(),
        handler_ms,
        concurrency,
        jobs: res.latencies.len(),
        errors: res.errors,
        seconds: res.elapsed.as_secs_f64(),
        jobs_per_s: res.rate(),
        latency: Summary::of(&res.latencies),
        idle_rss_kib: idle,
        peak_rss_kib: peak,
        worker_cpu_ms_per_job: None,
    }
}

/// Spawns the worker `runs` times with job-take pointed at a probe; returns spawn-to-first-take times.
async fn startup(
    kind: &Kind,
    runs: usize,
    ep_rt: &tokio::runtime::Handle,
    out: &Path,
) -> Result<Vec<Duration>> {
    let ep = start_endpoint(ep_rt).await?;
    let mut samples = Vec::new();
    for i in 0..runs {
        let mut probe = probe::Probe::start().await?;
        let mut env = ep.worker_env(&format!("bench-startup-{i}"));
        for (k, v) in env.iter_mut() {
            if k == "RUNPOD_WEBHOOK_GET_JOB" {
                *v = v.replacen(ep.base_url(), &probe.base_url, 1);
            }
        }
        let log = out.join(format!("logs/{}-startup.log", kind.name()));
        let t0 = Instant::now();
        let mut child = kind.spawn(&env, 1, &log)?;
        let at = tokio::time::timeout(Duration::from_secs(60), probe.next_take()).await;
        // Measured: no need for a graceful stop (the Python worker would sit in its long poll).
        workers::stop(&mut child, Duration::ZERO).await;
        match at {
            Ok(Some(at)) => samples.push(at.duration_since(t0)),
            _ => bail!("{} worker never asked for a job (log: {})", kind.name(), log.display()),
        }
    }
    stop_endpoint(ep_rt, ep).await;
    Ok(samples)
}

async fn start_endpoint(rt: &tokio::runtime::Handle) -> Result<LocalEndpoint> {
    let ep = rt
        .spawn(async {
            // A job-take with no job to hand out is answered after 2 s: a worker stopped with
            // SIGTERM waits for its open job-take's answer (both do), within workers::stop's 3 s.
            LocalEndpoint::builder()
                .api_key(API_KEY)
                .take_wait(Duration::from_secs(2))
                .max_queue(1_000_000)
                .rate_limits(RateLimits::none())
                .bind("127.0.0.1:0")
                .await
        })
        .await??;
    Ok(ep)
}

async fn stop_endpoint(rt: &tokio::runtime::Handle, ep: LocalEndpoint) {
    let _ = rt.spawn(ep.shutdown()).await;
}

/// The `runpod-bench-worker` next to this binary; built with cargo when missing.
fn our_worker_bin() -> Result<PathBuf> {
    let exe = std::env::current_exe()?;
    let bin = exe.with_file_name("runpod-bench-worker");
    if !bin.exists() {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let release = exe.parent().and_then(|p| p.file_name()).is_some_and(|n| n == "release");
        eprintln!("building runpod-bench-worker...");
        let mut cmd = std::process::Command::new(cargo);
        cmd.args(["build", "-p", "runpod-bench", "--bin", "runpod-bench-worker"])
            .current_dir(workspace_root());
        if release {
            cmd.arg("--release");
        }
        if !cmd.status()?.success() || !bin.exists() {
            bail!("could not build {}; pass --worker-bin", bin.display());
        }
    }
    Ok(bin)
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().unwrap_or_else(|_| ".".into())
}

/// CPU model and core count, from /proc/cpuinfo.
fn machine() -> String {
    let info = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = info
        .lines()
        .find_map(|l| l.strip_prefix("model name").and_then(|r| r.split_once(':')).map(|(_, m)| m.trim()))
        .unwrap_or("unknown CPU");
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0);
    format!("{cores} cores, {model}, Linux")
}

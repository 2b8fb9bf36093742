//! What `--data-dir` costs: the same no-op `/runsync` load against an endpoint in memory, one
//! keeping its jobs in a data directory, and one that also fsyncs every commit; our worker at
//! each concurrency, the three interleaved round after round (the order rotating), so that a
//! machine that slows down over the run slows all three alike.

use crate::load;
use crate::workers::Kind;
use anyhow::{Context, Result};
use runpod_bench::report::Durability;
use runpod_local::{LocalEndpoint, RateLimits};
use std::path::Path;
use std::time::Duration;

/// The endpoint setups compared.
const MODES: [(&str, bool, bool); 3] =
    [("in memory", false, false), ("--data-dir", true, false), ("--data-dir --fsync", true, true)];

/// Measures `rounds` rounds of each mode at each concurrency, `secs` each.
pub(crate) async fn measure(
    rust: &Kind,
    rounds: usize,
    secs: f64,
    concurrency: &[usize],
    ep_rt: &tokio::runtime::Handle,
    client: &reqwest::Client,
    out: &Path,
) -> Result<Vec<Durability>> {
    let mut rows: Vec<Durability> = concurrency
        .iter()
        .flat_map(|&c| MODES.iter().map(move |(mode, _, _)| Durability::new(mode, c)))
        .collect();
    for round in 0..rounds {
        for &c in concurrency {
            for k in 0..MODES.len() {
                let (mode, data_dir, fsync) = MODES[(k + round) % MODES.len()];
                let dir = out.join(format!("durability-data-{}", std::process::id()));
                let _ = std::fs::remove_dir_all(&dir);
                let ep = start(ep_rt, data_dir.then_some(dir.as_path()), fsync).await?;
                let target = load::Target {
                    client: client.clone(),
                    endpoint_url: ep.endpoint_url(),
                    api_key: load::API_KEY.into(),
                };
                let log = out.join(format!("logs/durability-c{c}.log"));
                let mut child = rust.spawn(&ep.worker_env(&format!("durability-c{c}")), c, &log)?;
                let noop = load::Mode::RunSync { sleep_ms: 0 };
                load::run(&target, noop, 20 * c, c, Duration::from_secs(60)).await;
                // Bounded by time; the job count only sizes the latency buffers (50,000 jobs/s).
                let most = (secs * 50_000.0) as usize + 1;
                let res = load::run(&target, noop, most, c, Duration::from_secs_f64(secs)).await;
                eprintln!(
                    "durability {mode} c={c} round {round}: {:.0} jobs/s, {} errors",
                    res.rate(),
                    res.errors
                );
                let row = rows.iter_mut().find(|r| r.mode == mode && r.concurrency == c).context("row")?;
                row.jobs_per_s.push(res.rate());
                row.errors += res.errors;
                crate::workers::stop(&mut child, Duration::from_secs(3)).await;
                let _ = ep_rt.spawn(ep.shutdown()).await;
                let _ = std::fs::remove_dir_all(&dir);
            }
        }
    }
    Ok(rows)
}

async fn start(rt: &tokio::runtime::Handle, dir: Option<&Path>, fsync: bool) -> Result<LocalEndpoint> {
    let mut b =
        LocalEndpoint::builder().api_key(load::API_KEY).max_queue(1_000_000).rate_limits(RateLimits::none());
    if let Some(d) = dir {
        b = b.data_dir(d).fsync(fsync);
    }
    Ok(rt.spawn(async move { b.bind("127.0.0.1:0").await }).await??)
}

//! The results of a benchmark run: rows, the side-by-side text table, and JSON.

use crate::stats::Summary;
use serde::{Deserialize, Serialize};
use std::fmt::Write as _;

/// Name of our worker in rows and tables.
pub const RUST: &str = "runpod-rs";
/// Name of the official Python SDK worker in rows and tables.
pub const PYTHON: &str = "python";
/// Name of the loopback floor (no worker) in rows and tables.
pub const FLOOR: &str = "floor";

/// One measured scenario: a worker kind, a handler, a concurrency.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Row {
    /// [`RUST`], [`PYTHON`] or [`FLOOR`].
    pub worker: String,
    /// `noop` or `sleep50` (`floor` rows: `loopback`).
    pub scenario: String,
    /// Time the handler sleeps per job, ms.
    pub handler_ms: u64,
    /// Requests in flight from the client, and the worker's concurrency.
    pub concurrency: usize,
    /// Jobs that completed.
    pub jobs: usize,
    /// Requests that failed or did not complete.
    pub errors: usize,
    /// Wall time of the measured part, seconds.
    pub seconds: f64,
    /// Completed jobs per second.
    pub jobs_per_s: f64,
    /// End-to-end latency of `/runsync` (floor: of the two round trips).
    pub latency: Option<Summary>,
    /// Resident memory of the worker tree once warmed up and idle, KiB.
    pub idle_rss_kib: Option<u64>,
    /// Peak resident memory of the worker tree at the end of the scenario, KiB.
    pub peak_rss_kib: Option<u64>,
    /// CPU time (user + system) the worker tree spent per completed job, ms.
    #[serde(default)]
    pub worker_cpu_ms_per_job: Option<f64>,
}

/// Start-up time of a worker kind: process spawn to its first `job-take` request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Startup {
    /// [`RUST`] or [`PYTHON`].
    pub worker: String,
    /// Every measured start, ms.
    pub samples_ms: Vec<f64>,
    /// Median of the samples, ms.
    pub median_ms: f64,
}

/// Everything one run of the benchmark measured.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// Where it ran: CPU model and core count.
    pub machine: String,
    /// Seconds since the Unix epoch when the run started.
    pub started_unix: u64,
    /// The options the run used, as given on the command line.
    pub options: serde_json::Value,
    /// The measured scenarios.
    pub rows: Vec<Row>,
    /// Start-up times.
    pub startup: Vec<Startup>,
    /// What runpod-local's `--data-dir` costs (our worker, no-op jobs).
    #[serde(default)]
    pub durability: Vec<Durability>,
}

/// Throughput of one endpoint setup (in memory, `--data-dir`, `--data-dir --fsync`) at one
/// concurrency, over interleaved rounds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Durability {
    /// `in memory`, `--data-dir` or `--data-dir --fsync`.
    pub mode: String,
    /// Requests in flight, and the worker's concurrency.
    pub concurrency: usize,
    /// Jobs/s of each round.
    pub jobs_per_s: Vec<f64>,
    /// Failed requests over all rounds.
    pub errors: usize,
}

impl Durability {
    /// A row with no rounds yet.
    pub fn new(mode: &str, concurrency: usize) -> Self {
        Durability { mode: mode.into(), concurrency, jobs_per_s: Vec::new(), errors: 0 }
    }

    /// Min, median and max of the rounds' jobs/s.
    pub fn min_median_max(&self) -> Option<(f64, f64, f64)> {
        let mut v = self.jobs_per_s.clone();
        v.sort_by(|a, b| a.total_cmp(b));
        Some((*v.first()?, v[(v.len() - 1) / 2], *v.last()?))
    }
}

impl Report {
    /// The row of `worker` for `scenario` at `concurrency`, if measured.
    pub fn row(&self, worker: &str, scenario: &str, concurrency: usize) -> Option<&Row> {
        self.rows
            .iter()
            .find(|r| r.worker == worker && r.scenario == scenario && r.concurrency == concurrency)
    }

    /// The floor row at `concurrency`, if measured.
    pub fn floor(&self, concurrency: usize) -> Option<&Row> {
        self.rows.iter().find(|r| r.worker == FLOOR && r.concurrency == concurrency)
    }

    /// The start-up of `worker`, if measured.
    pub fn startup_of(&self, worker: &str) -> Option<&Startup> {
        self.startup.iter().find(|s| s.worker == worker)
    }

    /// Scenario names (not the floor) in the order first measured, with their concurrencies.
    pub fn scenarios(&self) -> Vec<(String, usize)> {
        let mut out: Vec<(String, usize)> = Vec::new();
        for r in self.rows.iter().filter(|r| r.worker != FLOOR) {
            let key = (r.scenario.clone(), r.concurrency);
            if !out.contains(&key) {
                out.push(key);
            }
        }
        out
    }

    /// The side-by-side text table: throughput, latency and ratios per scenario, then memory and
    /// start-up, then what the endpoint's data directory costs.
    pub fn table(&self) -> String {
        let mut s = self.main_table();
        if !self.durability.is_empty() {
            let rounds = self.durability.iter().map(|d| d.jobs_per_s.len()).max().unwrap_or(0);
            let _ = writeln!(
                s,
                "\nrunpod-local --data-dir: noop /runsync jobs/s with our worker, {rounds} interleaved rounds (min / median / max; x: median over in memory)"
            );
            for d in &self.durability {
                let base = self
                    .durability
                    .iter()
                    .find(|b| b.concurrency == d.concurrency && b.mode == "in memory")
                    .and_then(Durability::min_median_max)
                    .map(|m| m.1);
                if let Some((lo, med, hi)) = d.min_median_max() {
                    let _ = writeln!(
                        s,
                        "  c={:<2} {:<20} {:>7.0} / {:>7.0} / {:>7.0}   {}   errors {}",
                        d.concurrency,
                        d.mode,
                        lo,
                        med,
                        hi,
                        base.map(|b| format!("{:.2}x", med / b)).unwrap_or_default(),
                        d.errors
                    );
                }
            }
        }
        s
    }

    fn main_table(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "machine: {}", self.machine);
        let _ = writeln!(
            s,
            "\n{:<9} {:>2} | {:>9} {:>9} {:>8} | {:>9} {:>6} | {:>8} {:>8} {:>8} {:>8} | {:>8} | {:>4}",
            "scenario",
            "c",
            "rs job/s",
            "py job/s",
            "rs/py",
            "floor/s",
            "rs/fl",
            "rs p50",
            "rs p99",
            "py p50",
            "py p99",
            "fl p50",
            "err"
        );
        let _ = writeln!(s, "{}", "-".repeat(116));
        for (scenario, c) in self.scenarios() {
            let rs = self.row(RUST, &scenario, c);
            let py = self.row(PYTHON, &scenario, c);
            let fl = self.floor(c);
            let rate = |r: Option<&Row>| r.map(|r| r.jobs_per_s);
            let p = |r: Option<&Row>, f: fn(&Summary) -> f64| r.and_then(|r| r.latency.as_ref()).map(f);
            let errors: usize = [rs, py].iter().flatten().map(|r| r.errors).sum();
            let _ = writeln!(
                s,
                "{:<9} {:>2} | {:>9} {:>9} {:>8} | {:>9} {:>6} | {:>8} {:>8} {:>8} {:>8} | {:>8} | {:>4}",
                scenario,
                c,
                num(rate(rs), 0),
                num(rate(py), 1),
                ratio(rate(rs), rate(py)),
                if scenario == "noop" { num(rate(fl), 0) } else { "".into() },
                if scenario == "noop" { ratio(rate(fl), rate(rs)) } else { "".into() },
                ms(p(rs, |s| s.p50_ms)),
                ms(p(rs, |s| s.p99_ms)),
                ms(p(py, |s| s.p50_ms)),
                ms(p(py, |s| s.p99_ms)),
                if scenario == "noop" { ms(p(fl, |s| s.p50_ms)) } else { "".into() },
                errors
            );
        }
        let _ = writeln!(
            s,
            "(rs/py: how many times faster ours is; rs/fl: floor jobs/s over ours, 1.0 = at the floor;\n \
             floor = POST /run + GET /status per job against the same endpoint, no worker; latencies in ms)"
        );
        let _ = writeln!(s, "\n/runsync overhead over the handler's own time (p50, ms):");
        for (scenario, c) in self.scenarios() {
            let over = |w: &str| {
                self.row(w, &scenario, c)
                    .and_then(|r| r.latency.map(|l| l.p50_ms - r.handler_ms as f64))
                    .map(|v| format!("{v:.3}"))
                    .unwrap_or_else(|| "-".into())
            };
            let _ = writeln!(
                s,
                "  {scenario:<9} c={c:<2} {RUST}: {:>9}   {PYTHON}: {:>9}",
                over(RUST),
                over(PYTHON)
            );
        }
        let _ = writeln!(s, "\nworker CPU time per job (user + system, ms):");
        for (scenario, c) in self.scenarios() {
            let cpu = |w: &str| self.row(w, &scenario, c).and_then(|r| r.worker_cpu_ms_per_job);
            let _ = writeln!(
                s,
                "  {scenario:<9} c={c:<2} {RUST}: {:>9}   {PYTHON}: {:>9}   py/rs: {}",
                ms(cpu(RUST)),
                ms(cpu(PYTHON)),
                ratio(cpu(PYTHON), cpu(RUST))
            );
        }
        let _ = writeln!(
            s,
            "\n{:<10} | {:>16} | {:>13} | {:>13}",
            "worker", "start->take ms", "idle RSS MiB", "peak RSS MiB"
        );
        let _ = writeln!(s, "{}", "-".repeat(62));
        for w in [RUST, PYTHON] {
            let st = self.startup_of(w).map(|s| s.median_ms);
            let idle = self.rows.iter().filter(|r| r.worker == w).filter_map(|r| r.idle_rss_kib).min();
            let peak = self.rows.iter().filter(|r| r.worker == w).filter_map(|r| r.peak_rss_kib).max();
            if st.is_none() && idle.is_none() {
                continue;
            }
            let _ = writeln!(s, "{:<10} | {:>16} | {:>13} | {:>13}", w, ms(st), mib(idle), mib(peak));
        }
        let st = |w| self.startup_of(w).map(|s| s.median_ms);
        let idle = |w: &str| {
            self.rows.iter().filter(|r| r.worker == w).filter_map(|r| r.idle_rss_kib).min().map(|v| v as f64)
        };
        if st(PYTHON).is_some() || idle(PYTHON).is_some() {
            let _ = writeln!(
                s,
                "{:<10} | {:>16} | {:>13} | {:>13}",
                "py/rs",
                ratio(st(PYTHON), st(RUST)),
                ratio(idle(PYTHON), idle(RUST)),
                ""
            );
        }
        s
    }
}

fn num(v: Option<f64>, decimals: usize) -> String {
    v.map(|v| format!("{v:.decimals$}")).unwrap_or_else(|| "-".into())
}

fn ms(v: Option<f64>) -> String {
    match v {
        Some(v) if v < 10.0 => format!("{v:.3}"),
        Some(v) => format!("{v:.1}"),
        None => "-".into(),
    }
}

fn mib(kib: Option<u64>) -> String {
    kib.map(|k| format!("{:.1}", k as f64 / 1024.0)).unwrap_or_else(|| "-".into())
}

fn ratio(a: Option<f64>, b: Option<f64>) -> String {
    match (a, b) {
        (Some(a), Some(b)) if b > 0.0 => format!("{:.1}x", a / b),
        _ => "-".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn row(worker: &str, scenario: &str, c: usize, rate: f64, p50: u64) -> Row {
        Row {
            worker: worker.into(),
            scenario: scenario.into(),
            handler_ms: if scenario == "sleep50" { 50 } else { 0 },
            concurrency: c,
            jobs: 10,
            errors: 0,
            seconds: 10.0 / rate,
            jobs_per_s: rate,
            latency: Summary::of(&[Duration::from_millis(p50)]),
            idle_rss_kib: (worker != FLOOR).then_some(if worker == RUST { 4096 } else { 61440 }),
            peak_rss_kib: (worker != FLOOR).then_some(8192),
            worker_cpu_ms_per_job: (worker != FLOOR).then_some(if worker == RUST { 0.1 } else { 5.0 }),
        }
    }

    #[test]
    fn table_shows_ratios_side_by_side() {
        let r = Report {
            machine: "test".into(),
            rows: vec![
                row(RUST, "noop", 1, 2000.0, 1),
                row(PYTHON, "noop", 1, 1.0, 1000),
                row(FLOOR, "loopback", 1, 4000.0, 1),
            ],
            startup: vec![
                Startup { worker: RUST.into(), samples_ms: vec![5.0], median_ms: 5.0 },
                Startup { worker: PYTHON.into(), samples_ms: vec![1800.0], median_ms: 1800.0 },
            ],
            ..Default::default()
        };
        let t = r.table();
        assert!(t.contains("2000.0x"), "{t}");
        assert!(t.contains("360.0x"), "{t}");
        assert!(t.contains("15.0x"), "{t}");
        assert!(t.contains("2.0x"), "{t}");
        assert!(t.contains("50.0x"), "CPU per job ratio: {t}");
        assert_eq!(r.scenarios(), vec![("noop".to_string(), 1)]);
        let json = serde_json::to_string(&r).unwrap();
        let back: Report = serde_json::from_str(&json).unwrap();
        assert_eq!(back, r);
    }
}

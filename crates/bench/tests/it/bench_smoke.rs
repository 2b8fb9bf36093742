//! The benchmark harness end to end, briefly: it must measure every scenario and write its
//! table, JSON report and SVG chart. (Figures from a debug build mean nothing; see the README.)

use runpod_bench::report::{Report, FLOOR, PYTHON, RUST};
use std::path::PathBuf;
use std::process::Command;

fn run_bench(out: &std::path::Path, extra: &[&str]) -> Report {
    let output = Command::new(env!("CARGO_BIN_EXE_runpod-bench"))
        .args(["--jobs", "40", "--max-secs", "1", "--startup-runs", "2", "--warmup", "2", "--sleep-ms", "5"])
        .args(["--durability-rounds", "1", "--durability-secs", "0.3"])
        .arg("--worker-bin")
        .arg(env!("CARGO_BIN_EXE_runpod-bench-worker"))
        .arg("--out-dir")
        .arg(out)
        .args(extra)
        .output()
        .expect("run runpod-bench");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "runpod-bench failed:\n{stdout}\n{stderr}");
    assert!(stdout.contains("scenario") && stdout.contains("start->take ms"), "no table:\n{stdout}");
    let svg = std::fs::read_to_string(out.join("chart.svg")).unwrap();
    assert!(svg.starts_with("<svg") && svg.contains("<rect x="), "bad chart");
    serde_json::from_str(&std::fs::read_to_string(out.join("report.json")).unwrap()).unwrap()
}

fn out_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("runpod-bench-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

#[test]
fn measures_our_worker_and_the_floor() {
    let dir = out_dir("rs");
    let report = run_bench(&dir, &["--skip-python", "--concurrency", "1,2"]);
    for c in [1, 2] {
        let floor = report.floor(c).unwrap_or_else(|| panic!("no floor row at c={c}"));
        assert!(floor.jobs > 0 && floor.errors == 0, "{floor:?}");
        for scenario in ["noop", "sleep5"] {
            let r = report.row(RUST, scenario, c).unwrap_or_else(|| panic!("no {scenario} row at c={c}"));
            assert!(r.jobs > 0 && r.errors == 0 && r.jobs_per_s > 0.0, "{r:?}");
            let lat = r.latency.expect("latency");
            assert!(lat.p50_ms <= lat.p99_ms, "{lat:?}");
            if scenario == "sleep5" {
                assert!(lat.p50_ms >= 5.0, "a 5 ms handler answered in {} ms", lat.p50_ms);
            }
            assert!(
                r.idle_rss_kib.unwrap() > 0 && r.peak_rss_kib.unwrap() >= r.idle_rss_kib.unwrap(),
                "{r:?}"
            );
            assert!(r.worker_cpu_ms_per_job.is_some(), "{r:?}");
        }
    }
    // The --data-dir comparison: each mode at each concurrency, once.
    assert_eq!(report.durability.len(), 3 * 2, "{:?}", report.durability);
    for d in &report.durability {
        assert!(d.jobs_per_s.len() == 1 && d.jobs_per_s[0] > 0.0 && d.errors == 0, "{d:?}");
    }
    let st = report.startup_of(RUST).expect("start-up measured");
    assert_eq!(st.samples_ms.len(), 2);
    assert!(st.median_ms > 0.0);
    assert!(report.rows.iter().all(|r| r.worker == RUST || r.worker == FLOOR));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn measures_the_python_sdk_worker() {
    if std::env::var_os("RUNPOD_TEST_PYTHON").is_none() {
        let why = "RUNPOD_TEST_PYTHON is not set (a Python with runpod==1.12.0, from scripts/test.d)";
        if std::env::var_os("CI").is_some() {
            panic!("{why}");
        }
        eprintln!("SKIPPED: {why} (run ./scripts/test.sh)");
        return;
    }
    let dir = out_dir("py");
    let report = run_bench(&dir, &["--concurrency", "1", "--python-max-secs", "1.5"]);
    for w in [RUST, PYTHON] {
        let r = report.row(w, "noop", 1).unwrap_or_else(|| panic!("no {w} noop row"));
        assert!(r.jobs > 0 && r.errors == 0, "{r:?}");
        assert!(report.startup_of(w).is_some_and(|s| s.median_ms > 0.0), "{w} start-up");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

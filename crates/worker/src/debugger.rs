//! `--rp_debugger` (`--debugger`): per-job timings in the job's output, as the Python SDK's
//! `rp_debugger` adds them (docs/python-sdk.md): an object output gets an `rp_debugger` key,
//!
//! ```json
//! {"system_info": {"os": "linux 6.1.0", "processor": "...", "runpod_worker": "runpod-rs/0.1.0"},
//!  "timestamps": [{"name": "decode_input", "start_utc": "...", "stop_utc": "...", "duration_ms": 0.02},
//!                 {"name": "handler", ...}],
//!  "ready_delay_ms": 412.7}
//! ```
//!
//! with one timestamp per step the runtime takes for the job: `decode_input` (the input into
//! the handler's type), `handler` (the handler, its output serialized), and `upload_output`
//! when an output over the size limit went to the bucket. `ready_delay_ms` is how long the
//! process had run when the worker started taking jobs (the model load, mostly), to the 10 ms of
//! the kernel's clock ticks (so 0 for a worker that starts quicker). Outputs that
//! are not JSON objects are left as they are and the timings are logged instead. The time of the
//! job-done post cannot be in the output it carries: it is logged at DEBUG after each post.

use serde_json::{json, Value};
use std::time::{Instant, SystemTime};

/// One timed step.
struct Step {
    name: &'static str,
    start: Instant,
    start_utc: SystemTime,
    stop: Option<(Instant, SystemTime)>,
}

/// The timed steps of one job.
#[derive(Default)]
pub(crate) struct Timings {
    steps: Vec<Step>,
}

impl Timings {
    /// Starts timing `name`; returns its index for [`Timings::stop`].
    pub(crate) fn start(&mut self, name: &'static str) -> usize {
        self.steps.push(Step { name, start: Instant::now(), start_utc: SystemTime::now(), stop: None });
        self.steps.len() - 1
    }

    pub(crate) fn stop(&mut self, i: usize) {
        if let Some(s) = self.steps.get_mut(i) {
            s.stop = Some((Instant::now(), SystemTime::now()));
        }
    }

    /// The SDK's `rp_debugger` object.
    pub(crate) fn report(&self, process: &Process) -> Value {
        let timestamps: Vec<Value> = self
            .steps
            .iter()
            .filter_map(|s| {
                let (stop, stop_utc) = s.stop?;
                Some(json!({
                    "name": s.name,
                    "start_utc": utc(s.start_utc),
                    "stop_utc": utc(stop_utc),
                    "duration_ms": (stop - s.start).as_secs_f64() * 1000.0,
                }))
            })
            .collect();
        json!({"system_info": process.system_info, "timestamps": timestamps, "ready_delay_ms": process.ready_delay_ms})
    }
}

/// Starts timing `name` when the debugger is on.
pub(crate) fn start(t: &mut Option<Timings>, name: &'static str) -> Option<usize> {
    t.as_mut().map(|t| t.start(name))
}

/// Stops the step [`start`] returned.
pub(crate) fn stop(t: &mut Option<Timings>, step: Option<usize>) {
    if let (Some(t), Some(i)) = (t.as_mut(), step) {
        t.stop(i);
    }
}

/// Adds the report to an object output; otherwise logs it.
pub(crate) fn attach(output: Option<&mut Value>, report: Value, span: &tracing::Span) {
    match output {
        Some(Value::Object(map)) => {
            map.insert("rp_debugger".into(), report);
        }
        _ => tracing::info!(parent: span, "rp_debugger: {report}"),
    }
}

/// How long this process has run, in ms (Linux: `/proc/self/stat` and `/proc/uptime`).
pub(crate) fn process_age_ms() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Field 22 (starttime, in clock ticks since boot) counted after the `(comm)` field, whose
    // text may hold spaces.
    let after = stat.rsplit_once(')')?.1;
    let start_ticks: f64 = after.split_whitespace().nth(19)?.parse().ok()?;
    let uptime: f64 =
        std::fs::read_to_string("/proc/uptime").ok()?.split_whitespace().next()?.parse().ok()?;
    // /proc reports ticks of USER_HZ, which is 100 on Linux for every architecture's user ABI.
    Some(((uptime - start_ticks / 100.0) * 1000.0).max(0.0))
}

/// What the reports say of the process, read once when the worker starts (with the debugger
/// on).
#[derive(Debug, Clone)]
pub(crate) struct Process {
    /// How long the process had run when the worker started.
    ready_delay_ms: Option<f64>,
    system_info: Value,
}

impl Process {
    /// Reads the process's age and the system's description now.
    pub(crate) fn read() -> Process {
        Process { ready_delay_ms: process_age_ms(), system_info: system_info() }
    }
}

fn system_info() -> Value {
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let processor = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines().find_map(|l| {
                l.strip_prefix("model name").map(|v| v.trim_start_matches([' ', '\t', ':']).to_owned())
            })
        })
        .unwrap_or_else(|| std::env::consts::ARCH.to_owned());
    json!({
        "os": format!("{} {}", std::env::consts::OS, release.trim()).trim().to_owned(),
        "processor": processor,
        "runpod_worker": crate::version::VERSION,
    })
}

/// `2026-01-02T03:04:05.678901Z`.
fn utc(t: SystemTime) -> String {
    let d = t.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs();
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (y, m, day) = civil_from_days(days as i64);
    format!(
        "{y:04}-{m:02}-{day:02}T{:02}:{:02}:{:02}.{:06}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        d.subsec_micros()
    )
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian (H. Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn dates_and_reports() {
        assert_eq!(utc(SystemTime::UNIX_EPOCH), "1970-01-01T00:00:00.000000Z");
        let t = SystemTime::UNIX_EPOCH + Duration::from_micros(1_709_251_199_123_456);
        assert_eq!(utc(t), "2024-02-29T23:59:59.123456Z");
        let mut timings = Timings::default();
        let i = timings.start("handler");
        std::thread::sleep(Duration::from_millis(5));
        timings.stop(i);
        timings.start("never stopped");
        let r = timings.report(&Process { ready_delay_ms: Some(12.5), system_info: system_info() });
        assert_eq!(r["timestamps"].as_array().unwrap().len(), 1);
        assert_eq!(r["timestamps"][0]["name"], "handler");
        assert!(r["timestamps"][0]["duration_ms"].as_f64().unwrap() >= 5.0, "{r}");
        assert_eq!(r["ready_delay_ms"], 12.5);
        assert!(r["system_info"]["runpod_worker"].as_str().unwrap().starts_with("runpod-rs/"));
        if cfg!(target_os = "linux") {
            let age = process_age_ms().unwrap();
            assert!(age > 0.0 && age < 3_600_000.0, "{age}");
        }
    }
}

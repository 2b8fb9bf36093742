//! Fitness checks: tests of the machine a worker runs once at start-up, before it takes its
//! first job (queue mode) or answers `200` on its health port (load-balancing mode).
//!
//! A failing check is logged with its reason, reported to the platform the way the Python SDK
//! 1.12 does (one `GET` of the ping URL with `status=unhealthy&check=..&reason=..`, at most
//! 2 s), and the worker exits non-zero instead of failing every job it would take
//! (docs/python-sdk.md, "Fitness checks").
//!
//! Besides the checks a program registers with
//! [`Worker::fitness_check`](crate::Worker::fitness_check), two system checks run unless turned
//! off ([`Worker::system_checks`](crate::Worker::system_checks) or
//! `RUNPOD_SKIP_AUTO_SYSTEM_CHECKS=true`): free disk space ([`free_disk`], at least
//! `RUNPOD_MIN_DISK_PERCENT` % of the file system of the temporary directory, default 1 %) and
//! available memory ([`available_memory`], at least `RUNPOD_MIN_MEMORY_GB`, default 0.5 GB).
//! The SDK's defaults are 10 % and 4 GB, sized for a Python process; a Rust worker needs far
//! less, and a machine with 5 % of a large disk free is not broken.
//!
//! ```
//! use runpod_worker::fitness::{self, FitnessCheck};
//!
//! # let rt = tokio::runtime::Runtime::new().unwrap();
//! # rt.block_on(async {
//! let checks = vec![
//!     FitnessCheck::new("weights present", || async {
//!         match std::path::Path::new("/nonexistent/model.safetensors").is_file() {
//!             true => Ok(()),
//!             false => Err("no /nonexistent/model.safetensors"),
//!         }
//!     }),
//!     fitness::free_disk(std::env::temp_dir(), 0.0),
//! ];
//! let failure = fitness::run_checks(checks).await.unwrap_err();
//! assert_eq!(failure.check, "weights present");
//! assert_eq!(failure.reason, "no /nonexistent/model.safetensors");
//! # });
//! ```

use futures::future::BoxFuture;
use std::fmt::Display;
use std::future::Future;
use std::path::PathBuf;
use std::time::Instant;

/// Turns the system checks off when `true`, as in the Python SDK.
pub const ENV_SKIP_SYSTEM_CHECKS: &str = "RUNPOD_SKIP_AUTO_SYSTEM_CHECKS";
/// The least free disk space, in percent of the file system's size (default 1).
pub const ENV_MIN_DISK_PERCENT: &str = "RUNPOD_MIN_DISK_PERCENT";
/// The least available memory, in GB of 2^30 bytes (default 0.5).
pub const ENV_MIN_MEMORY_GB: &str = "RUNPOD_MIN_MEMORY_GB";

type CheckFn = Box<dyn FnOnce() -> BoxFuture<'static, Result<(), String>> + Send>;

/// One named check: an async function run once; `Err(reason)` means the machine is unfit.
pub struct FitnessCheck {
    name: String,
    run: CheckFn,
}

impl std::fmt::Debug for FitnessCheck {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FitnessCheck").field("name", &self.name).finish_non_exhaustive()
    }
}

impl FitnessCheck {
    /// A check named `name` that runs `check`. Blocking work (a GPU test) belongs in
    /// `tokio::task::spawn_blocking` inside it.
    pub fn new<F, Fut, E>(name: impl Into<String>, check: F) -> FitnessCheck
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = Result<(), E>> + Send + 'static,
        E: Display,
    {
        FitnessCheck {
            name: name.into(),
            run: Box::new(move || {
                let fut = check();
                Box::pin(async move { fut.await.map_err(|e| e.to_string()) })
            }),
        }
    }

    /// The check's name (it is logged, and reported on failure).
    pub fn name(&self) -> &str {
        &self.name
    }
}

/// A check that failed: which one, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("fitness check {check:?} failed: {reason}")]
pub struct FitnessFailure {
    /// The check's name.
    pub check: String,
    /// What it said.
    pub reason: String,
}

/// Runs `checks` one after the other, in order, and stops at the first failure (logged at
/// ERROR with its reason). A check that panics fails with the panic's message.
pub async fn run_checks(checks: Vec<FitnessCheck>) -> Result<(), FitnessFailure> {
    if checks.is_empty() {
        return Ok(());
    }
    let all = Instant::now();
    tracing::info!("running {} fitness check(s)", checks.len());
    for FitnessCheck { name, run } in checks {
        let started = Instant::now();
        let result = match futures::FutureExt::catch_unwind(std::panic::AssertUnwindSafe(run())).await {
            Ok(r) => r,
            Err(panic) => Err(format!("the check panicked: {}", crate::panic::panic_message(&*panic))),
        };
        let ms = started.elapsed().as_secs_f64() * 1000.0;
        match result {
            Ok(()) => tracing::debug!(check = %name, "fitness check passed ({ms:.1} ms)"),
            Err(reason) => {
                tracing::error!("fitness check failed: {name} | {reason}");
                return Err(FitnessFailure { check: name, reason });
            }
        }
    }
    tracing::info!("all fitness checks passed ({:.1} ms)", all.elapsed().as_secs_f64() * 1000.0);
    Ok(())
}

/// The system checks ([`free_disk`] of the temporary directory, [`available_memory`]) with
/// their thresholds from the environment; none when `RUNPOD_SKIP_AUTO_SYSTEM_CHECKS=true`.
pub fn system_checks() -> Vec<FitnessCheck> {
    system_checks_from(|k| std::env::var(k).ok())
}

fn system_checks_from(var: impl Fn(&str) -> Option<String>) -> Vec<FitnessCheck> {
    if var(ENV_SKIP_SYSTEM_CHECKS).is_some_and(|v| v.trim().eq_ignore_ascii_case("true")) {
        tracing::debug!("system fitness checks turned off by {ENV_SKIP_SYSTEM_CHECKS}");
        return Vec::new();
    }
    let number = |name: &str, default: f64| match var(name) {
        None => default,
        Some(raw) => match raw.trim().parse::<f64>() {
            Ok(v) if v.is_finite() && v >= 0.0 => v,
            _ => {
                tracing::warn!("{name}={raw:?} is not a non-negative number; using {default}");
                default
            }
        },
    };
    let percent = number(ENV_MIN_DISK_PERCENT, 1.0);
    let gb = number(ENV_MIN_MEMORY_GB, 0.5);
    vec![free_disk(std::env::temp_dir(), percent), available_memory((gb * GIB) as u64)]
}

const GIB: f64 = 1024.0 * 1024.0 * 1024.0;

/// Fails when the file system holding `path` has less than `min_percent` % of its size free
/// (for unprivileged users). Where free space cannot be read (not Unix), it passes with a log.
pub fn free_disk(path: impl Into<PathBuf>, min_percent: f64) -> FitnessCheck {
    let path = path.into();
    FitnessCheck::new("disk", move || async move {
        match disk_space(&path) {
            Some((free, total)) if total > 0 => {
                let pct = 100.0 * free as f64 / total as f64;
                let free_gb = free as f64 / GIB;
                if pct < min_percent {
                    return Err(format!(
                        "insufficient disk space at {}: {free_gb:.2} GB free ({pct:.1} %), {min_percent} % required \
                         (set {ENV_MIN_DISK_PERCENT} to change)",
                        path.display()
                    ));
                }
                tracing::info!("disk check passed: {free_gb:.2} GB free at {} ({pct:.1} %)", path.display());
                Ok(())
            }
            _ => {
                tracing::debug!("free disk space of {} cannot be read here; check skipped", path.display());
                Ok(())
            }
        }
    })
}

/// Fails when the system has less than `min_bytes` of memory available (`MemAvailable` of
/// `/proc/meminfo`). Where that cannot be read (not Linux), it passes with a log.
pub fn available_memory(min_bytes: u64) -> FitnessCheck {
    FitnessCheck::new("memory", move || async move {
        let Some((available, total)) = memory() else {
            tracing::debug!("available memory cannot be read here (/proc/meminfo); check skipped");
            return Ok(());
        };
        let (avail_gb, total_gb, min_gb) =
            (available as f64 / GIB, total as f64 / GIB, min_bytes as f64 / GIB);
        if available < min_bytes {
            return Err(format!(
                "insufficient memory: {avail_gb:.2} GB available, {min_gb:.2} GB required \
                 (set {ENV_MIN_MEMORY_GB} to change)"
            ));
        }
        tracing::info!("memory check passed: {avail_gb:.2} GB available (of {total_gb:.2} GB)");
        Ok(())
    })
}

/// `(free for unprivileged users, total)` bytes of the file system holding `path`.
#[cfg(unix)]
fn disk_space(path: &std::path::Path) -> Option<(u64, u64)> {
    let s = rustix::fs::statvfs(path).ok()?;
    let unit = if s.f_frsize > 0 { s.f_frsize } else { s.f_bsize };
    Some((s.f_bavail.saturating_mul(unit), s.f_blocks.saturating_mul(unit)))
}

#[cfg(not(unix))]
fn disk_space(_path: &std::path::Path) -> Option<(u64, u64)> {
    None
}

/// `(available, total)` bytes of memory, from `/proc/meminfo`.
fn memory() -> Option<(u64, u64)> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
            .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
            .map(|kb| kb * 1024)
    };
    Some((field("MemAvailable")?, field("MemTotal")?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[tokio::test]
    async fn runs_in_order_and_stops_at_the_first_failure() {
        let ran = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let check = |name: &'static str, ok: bool| {
            let ran = ran.clone();
            FitnessCheck::new(name, move || async move {
                ran.lock().unwrap().push(name);
                if ok {
                    Ok(())
                } else {
                    Err(format!("{name} is broken"))
                }
            })
        };
        let failure =
            run_checks(vec![check("a", true), check("b", false), check("c", true)]).await.unwrap_err();
        assert_eq!(failure, FitnessFailure { check: "b".into(), reason: "b is broken".into() });
        assert_eq!(*ran.lock().unwrap(), ["a", "b"]);
        assert!(run_checks(vec![check("a", true)]).await.is_ok());
    }

    #[tokio::test]
    async fn a_panicking_check_fails() {
        let c = FitnessCheck::new("boom", || async {
            if true {
                panic!("exploded");
            }
            Ok::<(), String>(())
        });
        let f = run_checks(vec![c]).await.unwrap_err();
        assert!(f.reason.contains("exploded"), "{f}");
    }

    #[tokio::test]
    async fn system_checks_read_their_thresholds() {
        let env = |pairs: &[(&str, &str)]| {
            let m: HashMap<String, String> =
                pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
            move |k: &str| m.get(k).cloned()
        };
        assert!(system_checks_from(env(&[(ENV_SKIP_SYSTEM_CHECKS, "TRUE")])).is_empty());
        let passing = system_checks_from(env(&[(ENV_MIN_DISK_PERCENT, "0"), (ENV_MIN_MEMORY_GB, "0")]));
        assert_eq!(passing.iter().map(|c| c.name().to_owned()).collect::<Vec<_>>(), ["disk", "memory"]);
        run_checks(passing).await.unwrap();
        // No machine has 101 % of its disk free or a petabyte of memory available.
        let disk = run_checks(system_checks_from(env(&[(ENV_MIN_DISK_PERCENT, "101")]))).await.unwrap_err();
        assert_eq!(disk.check, "disk");
        assert!(disk.reason.contains("insufficient disk space"), "{disk}");
        let mem = system_checks_from(env(&[(ENV_MIN_DISK_PERCENT, "0"), (ENV_MIN_MEMORY_GB, "1000000")]));
        let mem = run_checks(mem).await.unwrap_err();
        assert_eq!(mem.check, "memory");
        assert!(
            mem.reason.contains("insufficient memory") && mem.reason.contains(ENV_MIN_MEMORY_GB),
            "{mem}"
        );
    }
}

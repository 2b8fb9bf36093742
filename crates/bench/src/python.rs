//! The official Python SDK worker: its virtualenv and its handler script.

use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The SDK version the benchmark compares against.
pub(crate) const SDK_VERSION: &str = "1.12.0";

/// The handler: the same as `runpod-bench-worker`'s (sleep `sleep_ms`, return `{"ok": true}`).
pub(crate) const WORKER_SCRIPT: &str = r#"import asyncio
import os

import runpod

CONCURRENCY = int(os.environ.get("BENCH_CONCURRENCY", "1"))


async def handler(job):
    job_input = job["input"] or {}
    sleep_ms = job_input.get("sleep_ms", 0)
    if sleep_ms:
        await asyncio.sleep(sleep_ms / 1000)
    if "fail" in job_input:
        raise RuntimeError(job_input["fail"])
    if "value" in job_input:
        return {"value": job_input["value"]}
    return {"ok": True}


runpod.serverless.start({"handler": handler, "concurrency_modifier": lambda current: CONCURRENCY})
"#;

/// Finds a Python interpreter with `runpod==1.12.0`: `explicit` (an interpreter or a venv
/// directory), else `$RUNPOD_TEST_PYTHON`, else `<cache>/venv-runpod-1.12.0` (the virtualenv
/// `scripts/test.d/20-python.sh` makes), created with `python3 -m venv` and pip when missing.
pub(crate) fn interpreter(explicit: Option<&Path>, cache: &Path) -> Result<PathBuf> {
    let candidate =
        explicit.map(Path::to_path_buf).or_else(|| std::env::var_os("RUNPOD_TEST_PYTHON").map(PathBuf::from));
    if let Some(p) = candidate {
        let python = if p.is_dir() { p.join("bin/python") } else { p };
        check(&python)?;
        return Ok(python);
    }
    let venv = cache.join(format!("venv-runpod-{SDK_VERSION}"));
    let stamp = venv.join(format!(".runpod-{SDK_VERSION}-installed"));
    let python = venv.join("bin/python");
    if check(&python).is_ok() {
        return Ok(python);
    }
    eprintln!("creating {} with runpod=={SDK_VERSION} (once; cached)...", venv.display());
    let status =
        Command::new("python3").arg("-m").arg("venv").arg(&venv).status().context("python3 -m venv")?;
    if !status.success() {
        bail!("python3 -m venv {} failed", venv.display());
    }
    let status = Command::new(&python)
        .args(["-m", "pip", "install", "--quiet", "--disable-pip-version-check"])
        .arg(format!("runpod=={SDK_VERSION}"))
        .status()
        .context("pip install")?;
    if !status.success() {
        bail!("pip install runpod=={SDK_VERSION} failed");
    }
    check(&python)?;
    // The stamp scripts/test.d/20-python.sh looks for, so it reuses this virtualenv.
    std::fs::write(&stamp, b"")?;
    Ok(python)
}

fn check(python: &Path) -> Result<()> {
    let out = Command::new(python)
        .args(["-c", "import runpod.version as v; print(v.__version__)"])
        .output()
        .with_context(|| format!("running {}", python.display()))?;
    let version = String::from_utf8_lossy(&out.stdout).trim().to_string();
    if !out.status.success() {
        bail!("{} cannot import runpod: {}", python.display(), String::from_utf8_lossy(&out.stderr).trim());
    }
    if version != SDK_VERSION {
        eprintln!("warning: {} has runpod {version}, not {SDK_VERSION}", python.display());
    }
    Ok(())
}

/// Writes the handler script into `dir` and returns its path.
pub(crate) fn write_script(dir: &Path) -> Result<PathBuf> {
    let path = dir.join("bench_worker.py");
    std::fs::write(&path, WORKER_SCRIPT).with_context(|| format!("writing {}", path.display()))?;
    Ok(path)
}

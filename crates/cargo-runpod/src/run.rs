//! `cargo runpod run`: one job through the worker, as its `--test-input` runs it (decoded,
//! handled, the result printed as the platform would record it), without remembering the flag.

use crate::cli::RunArgs;
use crate::project::Project;
use anyhow::{bail, Context, Result};
use std::process::ExitCode;

/// The request file used when no input is given.
const TEST_INPUT: &str = "test_input.json";

/// Builds and runs the worker on one request; its exit code (1: the job failed).
pub(crate) fn run(args: &RunArgs) -> Result<ExitCode> {
    let project = Project::locate(args.krate.manifest_path.as_deref())?;
    let request = request(args, &project)?;
    let status = project
        .cargo("run", &args.krate)
        .arg("--")
        .arg("--test-input")
        .arg(&request)
        .status()
        .context("could not run cargo")?;
    Ok(match status.code() {
        Some(0) => ExitCode::SUCCESS,
        Some(code) => ExitCode::from(u8::try_from(code).unwrap_or(1)),
        None => ExitCode::FAILURE,
    })
}

/// The request `{"input": ...}`: from `--input`, `--input-file`, or the crate's test_input.json.
fn request(args: &RunArgs, project: &Project) -> Result<String> {
    if let Some(input) = &args.input {
        let value: serde_json::Value =
            serde_json::from_str(input).with_context(|| format!("--input is not JSON: {input}"))?;
        return Ok(serde_json::json!({ "input": value }).to_string());
    }
    let file = match &args.input_file {
        Some(f) => f.clone(),
        None => project.dir.join(TEST_INPUT),
    };
    let text = match std::fs::read_to_string(&file) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && args.input_file.is_none() => {
            bail!("no --input, no --input-file, and no {TEST_INPUT} in {}", project.dir.display())
        }
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", file.display())),
    };
    let value: serde_json::Value =
        serde_json::from_str(&text).with_context(|| format!("{} is not JSON", file.display()))?;
    if value.get("input").is_none() {
        bail!("{} has no \"input\": a request file is {{\"input\": ...}}", file.display());
    }
    Ok(text)
}

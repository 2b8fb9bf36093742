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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{CrateArgs, RunArgs};
    use std::path::PathBuf;

    fn args(input: Option<&str>, file: Option<PathBuf>) -> RunArgs {
        let krate = CrateArgs { manifest_path: None, features: vec![], release: false, quiet: false };
        RunArgs { input: input.map(str::to_owned), input_file: file, krate }
    }

    fn project(dir: PathBuf) -> Project {
        let manifest = dir.join("Cargo.toml");
        let (name, version, bin) = ("w".to_owned(), "0.1.0".to_owned(), "w".to_owned());
        Project { manifest, dir, name, version, bin, features: vec![] }
    }

    #[test]
    fn the_request_comes_from_input_a_file_or_test_input_json() {
        let dir = std::env::temp_dir().join(format!("cargo-runpod-run-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let p = project(dir.clone());

        // --input is the job's input, wrapped.
        assert_eq!(request(&args(Some(r#"{"a": 1}"#), None), &p).unwrap(), r#"{"input":{"a":1}}"#);
        let err = request(&args(Some("{a"), None), &p).unwrap_err();
        assert!(format!("{err:#}").contains("--input is not JSON"), "{err:#}");

        // Without either: test_input.json of the crate, as written; a clear error when absent.
        let err = request(&args(None, None), &p).unwrap_err();
        assert!(err.to_string().contains("no test_input.json"), "{err}");
        std::fs::write(dir.join("test_input.json"), "{\"input\": {\"t\": \"x\"}}\n").unwrap();
        assert_eq!(request(&args(None, None), &p).unwrap(), "{\"input\": {\"t\": \"x\"}}\n");

        // --input-file: a request file; one without "input" is refused.
        let file = dir.join("other.json");
        std::fs::write(&file, r#"{"text": "x"}"#).unwrap();
        let err = request(&args(None, Some(file.clone())), &p).unwrap_err();
        assert!(err.to_string().contains("has no \"input\""), "{err}");
        std::fs::write(&file, r#"{"input": 7}"#).unwrap();
        assert_eq!(request(&args(None, Some(file)), &p).unwrap(), r#"{"input": 7}"#);
        let err = request(&args(None, Some(dir.join("missing.json"))), &p).unwrap_err();
        assert!(err.to_string().contains("cannot read"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

//! Runpod Hub listings: check a worker's `.runpod/hub.json` and `.runpod/tests.json` against
//! the publishing guide, write `tests.json` from `test_input.json`, and run its cases against
//! the worker through a local endpoint as the Hub does (docs/hub.md).
//!
//! ```no_run
//! # async fn f() -> Result<(), Box<dyn std::error::Error>> {
//! use runpod_local::hub;
//! let report = hub::check(std::path::Path::new("examples/echo"), None);
//! print!("{report}");
//! assert!(report.passed());
//! let listing = hub::Listing::read(std::path::Path::new("examples/echo"))?;
//! let run = hub::HubRun::new(listing, tokio::process::Command::new("target/debug/echo"));
//! let results = run.run().await?;
//! assert!(results.iter().all(|r| r.passed()));
//! # Ok(()) }
//! ```

mod report;
pub mod rules;
mod run;
mod tests_file;

pub use report::{Problem, Report, Severity};
pub use run::{CaseResult, HubRun, RunError};
pub use tests_file::{
    case_from_file, check_inputs_against_schema, tests_from_inputs, TestsFileError, WriteTests,
    DEFAULT_TIMEOUT_MS,
};

use serde_json::Value;
use std::path::{Path, PathBuf};

/// The folder of a listing's files, relative to the repository (or worker) root.
pub const RUNPOD_DIR: &str = ".runpod";

/// A listing's two files, read and parsed (not checked: see [`check`]).
#[derive(Debug, Clone)]
pub struct Listing {
    /// The worker's folder (the repository root on the Hub).
    pub dir: PathBuf,
    /// `.runpod/hub.json`.
    pub hub: Value,
    /// `.runpod/tests.json`.
    pub tests: Value,
}

/// A listing file that cannot be read or is not JSON.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The file is missing or unreadable.
    #[error("cannot read {}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The file is not JSON.
    #[error("{} is not valid JSON: {source}", path.display())]
    Json {
        /// The file.
        path: PathBuf,
        /// Where and why.
        #[source]
        source: serde_json::Error,
    },
}

/// Reads and parses a JSON file.
pub fn read_json(path: &Path) -> Result<Value, ReadError> {
    let text =
        std::fs::read_to_string(path).map_err(|source| ReadError::Io { path: path.to_owned(), source })?;
    serde_json::from_str(&text).map_err(|source| ReadError::Json { path: path.to_owned(), source })
}

impl Listing {
    /// Reads `dir/.runpod/hub.json` and `dir/.runpod/tests.json`.
    pub fn read(dir: &Path) -> Result<Listing, ReadError> {
        let runpod = dir.join(RUNPOD_DIR);
        Ok(Listing {
            dir: dir.to_owned(),
            hub: read_json(&runpod.join("hub.json"))?,
            tests: read_json(&runpod.join("tests.json"))?,
        })
    }
}

/// Checks the listing in `dir`: `.runpod/hub.json` and `.runpod/tests.json` against the
/// publishing guide's rules, each test's input against `schema` (a worker's `--schema`
/// document, `{"input": ..., "output": ...}`) when given, and warns when the Dockerfile or the
/// README the Hub builds and shows is in neither `.runpod/` nor `dir`.
pub fn check(dir: &Path, schema: Option<&Value>) -> Report {
    let runpod = dir.join(RUNPOD_DIR);
    let hub_file = runpod.join("hub.json");
    let tests_file = runpod.join("tests.json");
    let mut report = Report::default();
    let parsed = |file: &Path, report: &mut Report| match read_json(file) {
        Ok(v) => Some(v),
        Err(e) => {
            let message = match &e {
                ReadError::Io { source, .. } => format!("cannot read it: {source}"),
                ReadError::Json { source, .. } => format!("not valid JSON: {source}"),
            };
            report.problems.push(Problem {
                severity: Severity::Error,
                file: file.to_owned(),
                path: "$".into(),
                message,
            });
            None
        }
    };
    let hub = parsed(&hub_file, &mut report);
    let tests = parsed(&tests_file, &mut report);
    if let Some(h) = &hub {
        report.extend(rules::check_hub(h, &hub_file));
    }
    if let Some(t) = &tests {
        report.extend(rules::check_tests(t, hub.as_ref(), &tests_file));
        if let Some(schema) = schema {
            report.extend(check_inputs_against_schema(t, schema, &tests_file));
        }
    }
    for name in ["Dockerfile", "README.md"] {
        if !runpod.join(name).is_file() && !dir.join(name).is_file() {
            report.problems.push(Problem {
                severity: Severity::Warning,
                file: dir.join(name),
                path: "$".into(),
                message: format!(
                    "the Hub needs a {name} in .runpod/ or at the repository root; neither has one"
                ),
            });
        }
    }
    report
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn listing_dir(hub: &Value, tests: &Value) -> PathBuf {
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("runpod-local-hub-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join(RUNPOD_DIR)).unwrap();
        std::fs::write(dir.join(".runpod/hub.json"), hub.to_string()).unwrap();
        std::fs::write(dir.join(".runpod/tests.json"), tests.to_string()).unwrap();
        dir
    }

    fn hub() -> Value {
        json!({"title": "T", "description": "D", "type": "serverless", "category": "language",
               "config": {"runsOn": "CPU", "cpuFlavor": "cpu3c-2-4", "containerDiskInGb": 5}})
    }

    fn tests() -> Value {
        json!({"tests": [{"name": "a", "input": {"text": "x"}, "timeout": 10000}], "config": {"cpuFlavor": "cpu3c-2-4"}})
    }

    #[test]
    fn a_folder_is_checked_file_by_file() {
        let dir = listing_dir(&hub(), &tests());
        let report = check(&dir, None);
        assert!(report.passed(), "{report}");
        // No Dockerfile and no README.md: warnings only.
        assert_eq!(report.problems.len(), 2, "{report}");
        std::fs::write(dir.join("Dockerfile"), "FROM scratch\n").unwrap();
        std::fs::write(dir.join(".runpod/README.md"), "# T\n").unwrap();
        assert!(check(&dir, None).problems.is_empty());

        // Problems name their file and path.
        std::fs::write(dir.join(".runpod/hub.json"), "{\"title\": ").unwrap();
        std::fs::remove_file(dir.join(".runpod/tests.json")).unwrap();
        let report = check(&dir, None);
        let text = report.to_string();
        assert!(!report.passed());
        assert!(text.contains("error: ") && text.contains(".runpod/hub.json: $: not valid JSON"), "{text}");
        assert!(text.contains(".runpod/tests.json: $: cannot read it"), "{text}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_schema_checks_the_cases_inputs() {
        let dir = listing_dir(&hub(), &tests());
        let schema = json!({"input": {"type": "object", "required": ["text", "top"]}, "output": null});
        let report = check(&dir, Some(&schema));
        let errors: Vec<String> = report.errors().map(|p| format!("{}: {}", p.path, p.message)).collect();
        assert_eq!(errors, ["$.tests[0].input: has no `top`, which the schema requires"]);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

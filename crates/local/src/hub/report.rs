//! What a check found: problems, each naming its file and JSON path.

use std::fmt;
use std::path::{Path, PathBuf};

/// How bad a [`Problem`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    /// Something the guide does not ask for, or likely a mistake (an unknown field, a GPU
    /// name that is in none of the docs' lists): printed, the check still passes.
    Warning,
    /// Breaks a rule of the publishing guide: the check fails.
    Error,
}

/// One finding: `file: path: message`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Error or warning.
    pub severity: Severity,
    /// The file it is in.
    pub file: PathBuf,
    /// Where in that file, as a JSON path (`$.config.env[2].input.default`); `$` for the whole
    /// file.
    pub path: String,
    /// What is wrong, in words.
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        write!(f, "{what}: {}: {}: {}", self.file.display(), self.path, self.message)
    }
}

/// The problems of one or more files, in the order found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    /// Errors and warnings.
    pub problems: Vec<Problem>,
}

impl Report {
    /// No errors (warnings allowed).
    pub fn passed(&self) -> bool {
        !self.problems.iter().any(|p| p.severity == Severity::Error)
    }

    /// The errors only.
    pub fn errors(&self) -> impl Iterator<Item = &Problem> {
        self.problems.iter().filter(|p| p.severity == Severity::Error)
    }

    /// Adds the problems of `other`.
    pub fn extend(&mut self, other: Report) {
        self.problems.extend(other.problems);
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for p in &self.problems {
            writeln!(f, "{p}")?;
        }
        Ok(())
    }
}

/// Collects problems for one file.
#[derive(Debug)]
pub(crate) struct Findings<'a> {
    file: &'a Path,
    pub(crate) report: Report,
}

impl<'a> Findings<'a> {
    pub(crate) fn new(file: &'a Path) -> Self {
        Findings { file, report: Report::default() }
    }

    pub(crate) fn error(&mut self, path: &str, message: impl Into<String>) {
        self.push(Severity::Error, path, message.into());
    }

    pub(crate) fn warn(&mut self, path: &str, message: impl Into<String>) {
        self.push(Severity::Warning, path, message.into());
    }

    fn push(&mut self, severity: Severity, path: &str, message: String) {
        self.report.problems.push(Problem {
            severity,
            file: self.file.to_owned(),
            path: path.to_owned(),
            message,
        });
    }
}

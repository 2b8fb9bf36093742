//! [`Failure`]: why a job failed, as its error report names it, and the conversions a
//! handler's error type goes through to become one.

use std::convert::Infallible;
use std::error::Error as StdError;
use std::fmt;

/// Why a job failed: the `error_type`, `error_message` and `error_traceback` of the job's
/// error report (the Python SDK's JSON shape; the runtime adds `hostname`, `worker_id` and
/// `runpod_version`).
///
/// A handler's `Error` type converts into it ([`Handler::Error`](crate::Handler::Error) is
/// `Into<Failure>`). `String`, `&str`, boxed errors, `Infallible` and (feature `anyhow`)
/// `anyhow::Error` convert already; errors that do not name their type report
/// `error_type: "Error"`. To give each variant of your own error its name, implement
/// `From<YourError> for Failure`:
///
/// ```
/// use runpod_worker::Failure;
///
/// #[derive(Debug, thiserror::Error)]
/// enum GenerateError {
///     #[error("the model is not loaded yet")]
///     ModelNotLoaded,
///     #[error("the prompt has {0} tokens, over the model's 4096")]
///     PromptTooLong(usize),
/// }
///
/// impl From<GenerateError> for Failure {
///     fn from(e: GenerateError) -> Failure {
///         let error_type = match e {
///             GenerateError::ModelNotLoaded => "ModelNotLoaded",
///             GenerateError::PromptTooLong(_) => "PromptTooLong",
///         };
///         Failure::from_error(error_type, &e)
///     }
/// }
///
/// let f = Failure::from(GenerateError::PromptTooLong(5000));
/// assert_eq!(f.error_type, "PromptTooLong");
/// assert_eq!(f.error_message, "the prompt has 5000 tokens, over the model's 4096");
/// ```
///
/// A `Failure` is itself an error, so a handler whose `Error` is a boxed error or
/// `anyhow::Error` can still choose its type: `Err(Failure::new("QuotaExceeded", "...").into())`
/// reports `QuotaExceeded`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Failure {
    /// A name for the kind of failure (`"ModelNotLoaded"`, `"InputError"`): what a caller
    /// matches on.
    pub error_type: String,
    /// What went wrong, for a person.
    pub error_message: String,
    /// Where it came from (a source chain, a backtrace); sent as `""` when `None`.
    pub error_traceback: Option<String>,
}

impl Failure {
    /// A failure of type `error_type` saying `error_message`, without a traceback.
    pub fn new(error_type: impl Into<String>, error_message: impl Into<String>) -> Failure {
        Failure { error_type: error_type.into(), error_message: error_message.into(), error_traceback: None }
    }

    /// A failure of type `error_type` from an error: its text is the message, and its
    /// `source()` chain, if it has one, is the traceback (`caused by: ...`, one a line).
    pub fn from_error(error_type: impl Into<String>, error: &(dyn StdError + 'static)) -> Failure {
        Failure {
            error_type: error_type.into(),
            error_message: error.to_string(),
            error_traceback: source_chain(error),
        }
    }

    /// Sets the traceback.
    #[must_use]
    pub fn with_traceback(mut self, traceback: impl Into<String>) -> Failure {
        self.error_traceback = Some(traceback.into());
        self
    }
}

impl Failure {
    /// The failure as a job reports it: a backtrace found in the message (an error formatted
    /// with `{:?}`, anyhow's `Stack backtrace:`) moves to the traceback, and absolute paths of
    /// source files (the build machine's: `/home/me/project/src/main.rs:12:5`) are cut to the
    /// crate's own part (`project/src/main.rs:12:5`) in both.
    pub(crate) fn reported(self) -> Failure {
        let Failure { error_type, error_message, error_traceback } = self;
        let (message, trace_in_message) = split_backtrace(&error_message);
        let traceback = match (trace_in_message, error_traceback) {
            (Some(t), Some(tb)) => Some(format!("{tb}\n{t}")),
            (Some(t), None) => Some(t.to_owned()),
            (None, tb) => tb,
        };
        Failure {
            error_type,
            error_message: scrub_source_paths(message.trim_end()),
            error_traceback: traceback.map(|t| scrub_source_paths(&t)),
        }
    }
}

/// The message before a backtrace it holds, and the backtrace.
fn split_backtrace(message: &str) -> (&str, Option<&str>) {
    const MARKERS: [&str; 3] = ["Stack backtrace:", "stack backtrace:", "Backtrace:"];
    let at = MARKERS.iter().filter_map(|m| message.find(m)).min();
    // A frame line of std's format ("   0: name" then "at path:line:col") without a header.
    let frames = message.find("\n   0: ");
    match at.into_iter().chain(frames).min() {
        Some(i) => (&message[..i], Some(message[i..].trim_start_matches('\n'))),
        None => (message, None),
    }
}

/// `text` with each absolute path of a `.rs` file shortened to the part from the folder above
/// its `src` (the crate's folder: `tokio-1.40.0/src/...`, `core/src/...` for std), or
/// to its file name.
fn scrub_source_paths(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find(['/', '\\']) {
        let (before, from) = rest.split_at(start);
        out.push_str(before);
        // The path runs to the next whitespace or quote.
        let end = from
            .find(|c: char| c.is_whitespace() || matches!(c, '"' | '\'' | ')' | '(' | ','))
            .unwrap_or(from.len());
        let (token, after) = from.split_at(end);
        let absolute = before.is_empty()
            || before.ends_with(|c: char| c.is_whitespace() || matches!(c, '"' | '\'' | '(' | ':'));
        let windows_drive = before.len() >= 2 && before.as_bytes()[before.len() - 1] == b':';
        let source = token.split(':').next().is_some_and(|p| p.ends_with(".rs"));
        if source && (absolute || windows_drive) {
            if windows_drive {
                // `C:` is part of the path.
                out.truncate(out.len() - 2);
            }
            out.push_str(&shorten(token));
        } else {
            out.push_str(token);
        }
        rest = after;
    }
    out.push_str(rest);
    out
}

/// `/a/b/crate/src/x.rs:1:2` -> `crate/src/x.rs:1:2`; without a `src` folder, the file name.
fn shorten(path: &str) -> String {
    let parts: Vec<&str> = path.split(['/', '\\']).filter(|p| !p.is_empty()).collect();
    let cut = match parts.iter().rposition(|p| *p == "src") {
        Some(i) if i > 0 => i - 1,
        Some(i) => i,
        None => parts.len().saturating_sub(1),
    };
    parts[cut..].join("/")
}

/// `error_type: error_message`.
impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.error_type, self.error_message)
    }
}

impl StdError for Failure {}

/// The `error_type` of errors that do not name their own.
const UNNAMED: &str = "Error";

/// `caused by: ...` for each error under `error`, or `None` when it has no source.
fn source_chain(error: &(dyn StdError + 'static)) -> Option<String> {
    let mut lines = Vec::new();
    let mut next = error.source();
    while let Some(cause) = next {
        lines.push(format!("caused by: {cause}"));
        next = cause.source();
    }
    (!lines.is_empty()).then(|| lines.join("\n"))
}

/// `error_type: "Error"`, the string as the message.
impl From<String> for Failure {
    fn from(message: String) -> Failure {
        Failure::new(UNNAMED, message)
    }
}

/// `error_type: "Error"`, the string as the message.
impl From<&str> for Failure {
    fn from(message: &str) -> Failure {
        Failure::new(UNNAMED, message)
    }
}

/// A boxed [`Failure`] as it is; any other error as `error_type: "Error"` with its source
/// chain as the traceback.
impl From<Box<dyn StdError + Send + Sync>> for Failure {
    fn from(error: Box<dyn StdError + Send + Sync>) -> Failure {
        match error.downcast::<Failure>() {
            Ok(failure) => *failure,
            Err(other) => Failure::from_error(UNNAMED, &*other),
        }
    }
}

/// As for `Box<dyn Error + Send + Sync>`.
impl From<Box<dyn StdError + Send>> for Failure {
    fn from(error: Box<dyn StdError + Send>) -> Failure {
        match error.downcast::<Failure>() {
            Ok(failure) => *failure,
            Err(other) => Failure::from_error(UNNAMED, &*other),
        }
    }
}

/// For handlers that never fail.
impl From<Infallible> for Failure {
    fn from(never: Infallible) -> Failure {
        match never {}
    }
}

/// A [`Failure`] inside the `anyhow::Error` (returned with `.into()` or `?`) as it is;
/// anything else as `error_type: "Error"` with the top context as the message and anyhow's
/// report (the `Caused by:` list, and the backtrace when `RUST_BACKTRACE` captured one) as
/// the traceback.
#[cfg(feature = "anyhow")]
impl From<anyhow::Error> for Failure {
    fn from(error: anyhow::Error) -> Failure {
        match error.downcast::<Failure>() {
            Ok(failure) => failure,
            Err(other) => Failure::new(UNNAMED, other.to_string()).with_traceback(format!("{other:?}")),
        }
    }
}

/// `error_type: "StreamError"` (a chunk too large, not serializable or not delivered).
impl From<crate::StreamError> for Failure {
    fn from(e: crate::StreamError) -> Failure {
        Failure::new("StreamError", e.to_string())
    }
}

/// `error_type: "InputError"`, as for a job whose input does not decode.
impl From<crate::InputError> for Failure {
    fn from(e: crate::InputError) -> Failure {
        Failure::new("InputError", e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("outer")]
    struct Outer(#[source] std::io::Error);

    #[test]
    fn conversions_name_their_type() {
        assert_eq!(Failure::from("bad"), Failure::new("Error", "bad"));
        assert_eq!(Failure::from(String::from("bad")), Failure::new("Error", "bad"));
        let boxed: Box<dyn StdError + Send + Sync> = Box::new(Outer(std::io::Error::other("disk")));
        let f = Failure::from(boxed);
        assert_eq!((f.error_type.as_str(), f.error_message.as_str()), ("Error", "outer"));
        assert_eq!(f.error_traceback.as_deref(), Some("caused by: disk"));
        let chosen: Box<dyn StdError + Send + Sync> = Box::new(Failure::new("Quota", "over"));
        assert_eq!(Failure::from(chosen), Failure::new("Quota", "over"));
        assert_eq!(Failure::new("A", "b").to_string(), "A: b");
    }

    #[test]
    fn reported_failures_carry_no_backtrace_or_build_paths_in_the_message() {
        let here = concat!(env!("CARGO_MANIFEST_DIR"), "/src/failure.rs");
        let trace = std::backtrace::Backtrace::force_capture().to_string();
        let f = Failure::from(format!("model not loaded\n\nStack backtrace:\n{trace}")).reported();
        assert_eq!(f.error_message, "model not loaded");
        let tb = f.error_traceback.unwrap();
        assert!(tb.starts_with("Stack backtrace:"), "{tb}");
        assert!(!tb.contains(env!("CARGO_MANIFEST_DIR")), "{tb}");
        // The message may name a source file: without the build machine's folders.
        let f = Failure::new("Bug", format!("assertion failed at {here}:12:5")).reported();
        assert_eq!(f.error_message, "assertion failed at worker/src/failure.rs:12:5");
        let f = Failure::new(
            "E",
            "at /rustc/abc123/library/core/src/ops/function.rs:250:5 (C:\\b\\x\\src\\m.rs:1)",
        )
        .reported();
        assert_eq!(f.error_message, "at core/src/ops/function.rs:250:5 (x/src/m.rs:1)");
        // Other paths (the user's data) and plain messages are left alone.
        let f = Failure::new("E", "cannot open /runpod-volume/model.bin: not found").reported();
        assert_eq!(f.error_message, "cannot open /runpod-volume/model.bin: not found");
        let f = Failure::new("E", "a/b.rs is a path").with_traceback("caused by: disk").reported();
        assert_eq!(
            (f.error_message.as_str(), f.error_traceback.as_deref()),
            ("a/b.rs is a path", Some("caused by: disk"))
        );
    }

    #[cfg(feature = "anyhow")]
    #[test]
    fn anyhow_keeps_a_chosen_failure_and_reports_the_chain() {
        let f = Failure::from(anyhow::Error::from(Failure::new("Quota", "over")));
        assert_eq!(f, Failure::new("Quota", "over"));
        let f = Failure::from(anyhow::anyhow!("disk on fire").context("loading the model"));
        assert_eq!((f.error_type.as_str(), f.error_message.as_str()), ("Error", "loading the model"));
        let tb = f.error_traceback.unwrap();
        assert!(
            tb.contains("loading the model") && tb.contains("Caused by:") && tb.contains("disk on fire"),
            "{tb}"
        );
    }
}

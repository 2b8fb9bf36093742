//! The workers' own command-line handling: `-h`/`--help` prints the worker's settings, then
//! the runtime's flags (`runpod-worker` parses and lists those: [`RUNTIME_FLAGS`]).

use runpod_worker::RUNTIME_FLAGS;
use std::io::Write;

/// Prints `help` and then the runtime's flags ([`RUNTIME_FLAGS`]) to stdout and returns true when the command line asks
/// for it (`-h` or `--help`), so `main` can return before loading anything.
pub fn help_requested(help: &str) -> bool {
    help_requested_in(std::env::args().skip(1), help, &mut std::io::stdout())
}

/// [`help_requested`] over explicit arguments (the program name left out) and output.
pub fn help_requested_in(args: impl IntoIterator<Item = String>, help: &str, out: &mut impl Write) -> bool {
    if !args.into_iter().any(|a| a == "-h" || a == "--help") {
        return false;
    }
    // No panic when stdout is a closed pipe (`worker --help | head -1`).
    let _ = writeln!(out, "{help}\n\n{RUNTIME_FLAGS}");
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn help_is_printed_only_when_asked() {
        let args = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let mut out = Vec::new();
        assert!(!help_requested_in(args(&["--serve-api", "--port", "8000"]), "HELP", &mut out));
        assert!(out.is_empty());
        for flag in ["-h", "--help"] {
            let mut out = Vec::new();
            assert!(help_requested_in(args(&["--serve-api", flag]), "HELP text", &mut out));
            assert_eq!(String::from_utf8(out).unwrap(), format!("HELP text\n\n{RUNTIME_FLAGS}\n"));
        }
    }
}

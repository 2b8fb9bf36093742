//! Messages on stderr in cargo's shape: a right-aligned verb (`     Created ...`), `error: ...`,
//! `warning: ...`, coloured on a terminal unless `CARGO_TERM_COLOR=never` or `NO_COLOR` says
//! otherwise.

use std::io::{IsTerminal, Write};

const GREEN: &str = "\x1b[1;32m";
const CYAN: &str = "\x1b[1;36m";
const RED: &str = "\x1b[1;31m";
const YELLOW: &str = "\x1b[1;33m";
const RESET: &str = "\x1b[0m";

/// Whether stderr gets colours.
pub(crate) fn color() -> bool {
    match std::env::var("CARGO_TERM_COLOR").as_deref() {
        Ok("always") => true,
        Ok("never") => false,
        _ => std::env::var_os("NO_COLOR").is_none() && std::io::stderr().is_terminal(),
    }
}

fn print(style: &str, head: &str, aligned: bool, message: &str) {
    let head = if aligned { format!("{head:>12}") } else { head.to_owned() };
    let line = match color() {
        true => format!("{style}{head}{RESET} {message}\n"),
        false => format!("{head} {message}\n"),
    };
    // One write per message: lines of the worker's own output do not cut into it.
    let _ = std::io::stderr().lock().write_all(line.as_bytes());
}

/// `     Created package ...`: a step done or begun.
pub(crate) fn status(verb: &str, message: impl std::fmt::Display) {
    print(GREEN, verb, true, &message.to_string());
}

/// `     Serving ...`: where to look (a URL, a file).
pub(crate) fn note(verb: &str, message: impl std::fmt::Display) {
    print(CYAN, verb, true, &message.to_string());
}

/// `warning: ...`.
pub(crate) fn warn(message: impl std::fmt::Display) {
    print(YELLOW, "warning:", false, &message.to_string());
}

/// `error: ...`.
pub(crate) fn error(message: impl std::fmt::Display) {
    print(RED, "error:", false, &message.to_string());
}

/// `text` without its terminal colour codes (`ESC [ ... letter`), for the console page.
pub(crate) fn strip_ansi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\x1b' && chars.peek() == Some(&'[') {
            chars.next();
            for c in chars.by_ref() {
                if ('\x40'..='\x7e').contains(&c) {
                    break;
                }
            }
            continue;
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::strip_ansi;

    #[test]
    fn colour_codes_are_removed_and_text_kept() {
        assert_eq!(strip_ansi("\x1b[0m\x1b[1m\x1b[38;5;9merror[E0308]\x1b[0m: x"), "error[E0308]: x");
        assert_eq!(strip_ansi("plain é \x1b"), "plain é \x1b");
    }
}

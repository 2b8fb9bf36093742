//! `--input`: JSON text, `@FILE` or `@-` (stdin).

use anyhow::Context;
use serde_json::Value;
use std::io::Read;

/// Reads and parses the `--input` value.
pub(crate) fn parse(arg: &str) -> anyhow::Result<Value> {
    let text = match arg.strip_prefix('@') {
        Some("-") => {
            let mut s = String::new();
            std::io::stdin().read_to_string(&mut s).context("reading --input from stdin")?;
            s
        }
        Some(path) => {
            std::fs::read_to_string(path).with_context(|| format!("reading --input file {path}"))?
        }
        None => arg.to_owned(),
    };
    serde_json::from_str(&text).context("--input is not valid JSON")
}

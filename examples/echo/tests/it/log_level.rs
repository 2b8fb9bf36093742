//! The log level of a worker binary: `--log-level`, else `RUNPOD_LOG_LEVEL`, else
//! `RUNPOD_DEBUG_LEVEL`, else INFO; an unknown level is named in a warning.

use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_echo");

/// Runs one local test job with `env` and `args`; returns its log (stderr).
fn log_of(env: &[(&str, &str)], args: &[&str]) -> String {
    let mut c = Command::new(BIN);
    for (k, _) in std::env::vars() {
        if k.starts_with("RUNPOD_") || k.starts_with("BUCKET_") || k == "RUST_LOG" {
            c.env_remove(k);
        }
    }
    c.envs(env.iter().copied()).args(args).args(["--test-input", r#"{"input": {"message": "hi"}}"#]);
    let out = c.output().expect("echo runs");
    assert!(out.status.success(), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("COMPLETED"));
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn has_info(log: &str) -> bool {
    log.lines().any(|l| l.contains(" INFO ") && l.contains("job completed"))
}

#[test]
fn level_comes_from_the_flag_then_runpod_log_level_then_runpod_debug_level() {
    assert!(has_info(&log_of(&[], &[])), "INFO by default");
    assert!(!has_info(&log_of(&[("RUNPOD_DEBUG_LEVEL", "WARN")], &[])), "RUNPOD_DEBUG_LEVEL=WARN");
    assert!(!has_info(&log_of(&[("RUNPOD_LOG_LEVEL", "warn")], &[])), "RUNPOD_LOG_LEVEL=warn");
    let both = [("RUNPOD_LOG_LEVEL", "INFO"), ("RUNPOD_DEBUG_LEVEL", "ERROR")];
    assert!(has_info(&log_of(&both, &[])), "RUNPOD_LOG_LEVEL wins over RUNPOD_DEBUG_LEVEL");
    let flag = log_of(&[("RUNPOD_LOG_LEVEL", "INFO")], &["--log-level", "WARN"]);
    assert!(!has_info(&flag), "--log-level wins: {flag}");
    let bad = log_of(&[("RUNPOD_LOG_LEVEL", "loud")], &[]);
    assert!(bad.contains("unknown log level \"loud\""), "{bad}");
    assert!(has_info(&bad), "an unknown level falls back to INFO: {bad}");
}

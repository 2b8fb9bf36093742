//! `minilm_dir` decides between a model folder, a loud SKIPPED line (local) and a failure (CI):
//! each case runs this test binary again as a child process, so the environment is its own.
//! (`harness = false`: `main` is the child's probe and the parent's checks.)

use std::process::{Command, Output};

use example_support::test_models::minilm_dir;

/// Set for the child process: its `main` only reports what `minilm_dir` returns.
const PROBE_ENV: &str = "EXAMPLE_SUPPORT_PROBE";

fn main() {
    if std::env::var_os(PROBE_ENV).is_some() {
        // The child: report what `minilm_dir` gives in the environment the parent set.
        println!("found: {:?}", minilm_dir());
        return;
    }
    a_missing_model_skips_locally_and_fails_under_ci();
    println!("test a_missing_model_skips_locally_and_fails_under_ci ... ok");
    a_folder_with_weights_is_found();
    println!("test a_folder_with_weights_is_found ... ok");
}

fn run_probe(dir: &std::path::Path, ci: bool) -> Output {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.env(PROBE_ENV, "1").env("RUNPOD_TEST_MINILM_DIR", dir).env_remove("CI");
    if ci {
        cmd.env("CI", "true");
    }
    cmd.output().unwrap()
}

fn a_missing_model_skips_locally_and_fails_under_ci() {
    let tmp = tempfile::tempdir().unwrap();
    let missing = tmp.path().join("no-model");

    let out = run_probe(&missing, false);
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("found: None"), "{stdout}");
    let line =
        format!("SKIPPED: all-MiniLM-L6-v2 not found at {} (run ./scripts/test.sh)", missing.display());
    assert!(stderr.contains(&line), "{stderr}");

    let out = run_probe(&missing, true);
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(!out.status.success(), "{stdout}\n{stderr}");
    assert!(stderr.contains("CI is set: scripts/test.d/40-models.sh must provide it"), "{stderr}");
    assert!(!stderr.contains("SKIPPED"), "{stderr}");
}

fn a_folder_with_weights_is_found() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("model.safetensors"), b"").unwrap();
    for ci in [false, true] {
        let out = run_probe(tmp.path(), ci);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{stdout}");
        assert!(stdout.contains(&format!("found: Some({:?})", tmp.path())), "{stdout}");
    }
}

//! `runpod-local hub`: `check` on the repository's own listings (the template and each
//! example) and on broken ones, `tests` writing the template's tests.json from its
//! test_input.json, and `run`'s refusals. (Each example's cases run against its worker in the
//! example's own tests.)

use crate::common::BIN;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn hub(args: &[&str]) -> Output {
    Command::new(BIN).arg("hub").args(args).output().unwrap()
}

fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

/// A scratch folder, removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Self {
        let p = std::env::temp_dir().join(format!("runpod-local-hub-cli-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(p.join(".runpod")).unwrap();
        Scratch(p)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn every_listing_of_the_repository_passes_the_check() {
    for dir in [
        "templates/worker",
        "examples/echo",
        "examples/embeddings",
        "examples/text-generation",
        "examples/bulk-embeddings",
    ] {
        let out = hub(&["check", root().join(dir).to_str().unwrap()]);
        assert!(out.status.success(), "{dir}: {}", text(&out));
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(stdout.starts_with("ok: ") && stdout.contains("pass the check"), "{dir}: {stdout}");
        assert!(!text(&out).contains("error: "), "{dir}: {}", text(&out));
    }
    // The template is what a new worker starts from: not even a warning there.
    let out = hub(&["check", root().join("templates/worker").to_str().unwrap()]);
    assert_eq!(String::from_utf8_lossy(&out.stderr), "", "template warnings");
}

#[test]
fn the_templates_tests_json_is_what_hub_tests_writes_from_its_test_input() {
    let scratch = Scratch::new("template");
    let template = root().join("templates/worker");
    let out_file = scratch.0.join("tests.json");
    let out = hub(&[
        "tests",
        template.to_str().unwrap(),
        "--timeout-ms",
        "30000",
        "--out",
        out_file.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout), format!("wrote {}\n", out_file.display()));
    let written = std::fs::read_to_string(&out_file).unwrap();
    let committed = std::fs::read_to_string(template.join(".runpod/tests.json")).unwrap();
    assert_eq!(
        written, committed,
        "regenerate with: runpod-local hub tests templates/worker --timeout-ms 30000"
    );
}

#[test]
fn check_names_the_file_and_path_of_each_error_and_exits_1() {
    let s = Scratch::new("broken");
    std::fs::write(
        s.0.join(".runpod/hub.json"),
        r#"{"title": "T", "description": "D", "type": "serverless", "category": "text",
            "config": {"runsOn": "GPU", "containerDiskInGb": 10, "gpuIds": "AMPERE_16"}}"#,
    )
    .unwrap();
    std::fs::write(
        s.0.join(".runpod/tests.json"),
        r#"{"tests": [{"name": "a", "input": {}, "timeout": 1000}], "config": {"cpuFlavor": "cpu3c"}}"#,
    )
    .unwrap();
    let out = hub(&["check", s.0.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let hub_json = s.0.join(".runpod/hub.json").display().to_string();
    let tests_json = s.0.join(".runpod/tests.json").display().to_string();
    for line in [
        format!("error: {hub_json}: $.category: \"text\" is not one of"),
        format!("error: {hub_json}: $.config: `gpuCount` is required"),
        format!("error: {tests_json}: $.config: `gpuTypeId` is required"),
        format!("warning: {tests_json}: $.config.cpuFlavor: is for CPU tests"),
    ] {
        assert!(stderr.contains(&line), "no {line:?} in:\n{stderr}");
    }
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!("failed: 4 error(s) in {}\n", s.0.join(".runpod").display())
    );

    // A --schema document: a case without a required field is an error too.
    std::fs::write(
        s.0.join(".runpod/hub.json"),
        r#"{"title": "T", "description": "D", "type": "serverless", "category": "language",
            "config": {"runsOn": "CPU", "containerDiskInGb": 10, "cpuFlavor": "cpu3c"}}"#,
    )
    .unwrap();
    let schema = s.0.join("schema.json");
    std::fs::write(&schema, r#"{"input": {"type": "object", "required": ["prompt"]}, "output": null}"#)
        .unwrap();
    assert!(hub(&["check", s.0.to_str().unwrap()]).status.success());
    let out = hub(&["check", s.0.to_str().unwrap(), "--schema", schema.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out).contains("$.tests[0].input: has no `prompt`, which the schema requires"),
        "{}",
        text(&out)
    );
}

#[test]
fn tests_refuses_what_is_not_a_job_and_writes_nothing() {
    let s = Scratch::new("tests");
    std::fs::copy(root().join("templates/worker/.runpod/hub.json"), s.0.join(".runpod/hub.json")).unwrap();
    std::fs::write(s.0.join("test_input.json"), r#"{"text": "no input field"}"#).unwrap();
    let out = hub(&["tests", s.0.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out).contains("must be a job, {\"input\": {...}}"), "{}", text(&out));
    assert!(!s.0.join(".runpod/tests.json").exists());
    // No hub.json: it says which file it needs.
    std::fs::remove_file(s.0.join(".runpod/hub.json")).unwrap();
    std::fs::write(s.0.join("test_input.json"), r#"{"input": {"text": "a"}}"#).unwrap();
    let out = hub(&["tests", s.0.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out).contains("cannot read") && text(&out).contains(".runpod/hub.json"), "{}", text(&out));
}

#[test]
fn run_reports_a_worker_that_exits_and_an_unknown_case() {
    let s = Scratch::new("run");
    for f in ["hub.json", "tests.json"] {
        std::fs::copy(root().join("templates/worker/.runpod").join(f), s.0.join(".runpod").join(f)).unwrap();
    }
    let dir = s.0.to_str().unwrap();
    let out = hub(&["run", dir, "--", "sh", "-c", "echo no model here >&2; exit 3"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let t = text(&out);
    assert!(
        t.contains("the worker exited (exit status: 3) before it was ready") && t.contains("no model here"),
        "{t}"
    );

    let out = hub(&["run", dir, "--case", "nope", "--", "sh", "-c", "sleep 30"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("--case names none of its cases"), "{}", text(&out));

    let out = hub(&["run", dir, "--env", "NOEQUALS", "--", "true"]);
    assert_eq!(out.status.code(), Some(2), "a usage error: {}", text(&out));
    let out = hub(&["run", dir]);
    assert_eq!(out.status.code(), Some(2), "the worker command is required: {}", text(&out));
}

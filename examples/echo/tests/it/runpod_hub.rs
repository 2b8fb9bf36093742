//! The echo example's Runpod Hub listing: `.runpod/hub.json` and `.runpod/tests.json` pass the
//! publishing guide's checks and every case passes against the echo binary through a local
//! endpoint, as the Hub runs them; cases that fail, time out or meet a dead worker say so.

use runpod_local::hub::{self, HubRun, Listing, RunError, Severity};
use serde_json::{json, Value};
use std::path::Path;
use std::time::Duration;
use tokio::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_echo");

fn example_dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn the_listing_passes_the_check() {
    let report = hub::check(example_dir(), None);
    assert!(report.passed(), "{report}");
    // The only warnings: the Dockerfile and README the Hub takes from a repository's root
    // (this example's are the repository's own, docs/hub.md).
    for p in &report.problems {
        assert_eq!(p.severity, Severity::Warning);
        assert!(p.message.contains("the Hub needs a"), "{p}");
    }
}

#[test]
fn the_cases_have_what_the_workers_schema_requires() {
    let out = std::process::Command::new(BIN).arg("--schema").output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let schema: Value = serde_json::from_slice(&out.stdout).unwrap();
    let report = hub::check(example_dir(), Some(&schema));
    assert!(report.passed(), "{report}");
    // The schema allows no other field: a case with one is an error naming it.
    let tests = json!({"tests": [{"name": "a", "input": {"message": "hi", "loud": true}}, {"name": "b", "input": {}}]});
    let report = hub::check_inputs_against_schema(&tests, &schema, Path::new("tests.json"));
    let errors: Vec<String> = report.errors().map(|p| format!("{}: {}", p.path, p.message)).collect();
    assert_eq!(
        errors,
        [
            "$.tests[0].input.loud: is not a property of the schema, which allows no others",
            "$.tests[1].input: has no `message`, which the schema requires"
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_case_passes_against_the_worker() {
    let listing = Listing::read(example_dir()).unwrap();
    let names: Vec<String> = listing.tests["tests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap().to_owned())
        .collect();
    let results = HubRun::new(listing, Command::new(BIN)).run().await.unwrap();
    assert_eq!(results.iter().map(|r| r.name.clone()).collect::<Vec<_>>(), names, "every case ran, in order");
    for r in &results {
        assert!(r.passed(), "{r}");
        assert_eq!((r.http_status, r.job_status.as_deref()), (Some(200), Some("COMPLETED")));
    }
    assert_eq!(
        results[0].output,
        Some(json!({"echo": "hello from the Hub hello from the Hub", "repeat": 2}))
    );
}

/// A listing in a temp folder: the echo example's hub.json with these cases.
fn listing_with(cases: Value) -> (tempfile_dir::Dir, Listing) {
    let dir = tempfile_dir::Dir::new();
    let mut listing = Listing::read(example_dir()).unwrap();
    listing.dir = dir.0.clone();
    listing.tests["tests"] = cases;
    (dir, listing)
}

/// A scratch folder removed on drop (no tempfile in echo's dev-dependencies).
mod tempfile_dir {
    use std::path::PathBuf;

    pub(super) struct Dir(pub(super) PathBuf);

    impl Dir {
        pub(super) fn new() -> Self {
            static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
            let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let p = std::env::temp_dir().join(format!("echo-hub-{}-{n}", std::process::id()));
            std::fs::create_dir_all(&p).unwrap();
            Dir(p)
        }
    }

    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_and_slow_cases_fail_with_the_reason_and_the_rest_run() {
    let (_dir, listing) = listing_with(json!([
        {"name": "refused", "input": {"message": "hi", "repeat": 0}, "timeout": 20000},
        {"name": "unknown_field", "input": {"message": "hi", "loud": true}, "timeout": 20000},
        {"name": "too_slow", "input": {"message": "hi", "repeat": 3, "delay_ms": 2000}, "timeout": 1500},
        {"name": "fine", "input": {"message": "still here"}, "timeout": 20000}
    ]));
    let mut seen = Vec::new();
    let (tx, rx) = std::sync::mpsc::channel();
    let results = HubRun::new(listing, Command::new(BIN))
        .on_case(move |r| tx.send(r.name.clone()).unwrap())
        .run()
        .await
        .unwrap();
    seen.extend(rx.try_iter());
    assert_eq!(seen, ["refused", "unknown_field", "too_slow", "fine"], "on_case saw each case as it ended");
    let why = |i: usize| results[i].failure.clone().unwrap_or_default();
    assert!(
        why(0).starts_with("the job ended FAILED")
            && why(0).contains("repeat")
            && why(0).contains("1 to 100"),
        "{}",
        why(0)
    );
    assert!(why(1).starts_with("the job ended FAILED") && why(1).contains("loud"), "{}", why(1));
    assert!(why(2).starts_with("no result within the case's timeout of 1500 ms"), "{}", why(2));
    assert!(results[2].elapsed >= Duration::from_millis(1500));
    assert!(results[3].passed(), "{}", results[3]);
    for r in &results[..3] {
        assert_eq!(r.http_status, Some(200), "/runsync answered; the job did not complete: {r}");
        assert!(!r.passed());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_that_does_not_start_or_a_broken_listing_runs_nothing() {
    // The worker exits at once: its exit status and last lines are the error.
    let (_dir, listing) = listing_with(json!([{"name": "a", "input": {"message": "hi"}}]));
    let mut bad = Command::new(BIN);
    bad.args(["--test-input", "{oops"]);
    let err = HubRun::new(listing.clone(), bad).run().await.unwrap_err();
    let RunError::WorkerExited { status, log } = &err else { panic!("{err}") };
    assert!(status.contains("exit status"), "{err}");
    assert!(log.contains("bad test input: not JSON"), "the worker's own message: {err}");

    // A command that does not exist.
    let err = HubRun::new(listing.clone(), Command::new("/nonexistent/worker")).run().await.unwrap_err();
    assert!(matches!(err, RunError::Spawn(_)), "{err}");

    // A listing that breaks a rule is refused before anything starts.
    let mut broken = listing;
    broken.tests["tests"][0]["input"] = json!("hi");
    let err = HubRun::new(broken, Command::new(BIN)).run().await.unwrap_err();
    let RunError::Invalid(report) = &err else { panic!("{err}") };
    assert!(report.to_string().contains("$.tests[0].input: must be an object"), "{report}");
}

//! The echo snippet of README.md ("The smallest worker") and its unit test ("Testing it")
//! compile, run, and answer what the README shows; and the README still holds exactly this code
//! (so they cannot drift apart).

// README-BEGIN
use runpod_worker::{handler_fn, Job, JobContext};

#[derive(serde::Deserialize)]
struct Input {
    message: String,
    #[serde(default = "one")]
    repeat: u32,
}
fn one() -> u32 {
    1
}
#[derive(serde::Serialize)]
struct Output {
    echo: String,
    repeat: u32,
}

async fn echo(job: Job<Input>, ctx: JobContext) -> Result<Output, String> {
    let Input { message, repeat } = job.input;
    if !(1..=100).contains(&repeat) {
        return Err(format!("repeat must be between 1 and 100, got {repeat}")); // fails the job
    }
    ctx.progress("echoing"); // queued, sent in order, never after the result
    Ok(Output { echo: vec![message; repeat as usize].join(" "), repeat })
}
// README-END

// README-TEST-BEGIN
#[cfg(test)]
mod tests {
    use super::*;
    use runpod_worker::testing::TestContext;

    #[tokio::test]
    async fn echo_repeats_and_reports_progress() {
        let (ctx, sent) = TestContext::new();
        let out = echo(Job::new("t1", Input { message: "hi".into(), repeat: 2 }), ctx).await.unwrap();
        assert_eq!((out.echo.as_str(), out.repeat), ("hi hi", 2));
        assert_eq!(sent.progress(), ["echoing"]);
        let (ctx, _) = TestContext::new();
        assert!(echo(Job::new("t2", Input { message: "hi".into(), repeat: 0 }), ctx).await.is_err());
    }
}
// README-TEST-END

#[tokio::test]
async fn readme_echo_snippet_answers_as_shown() {
    let result: runpod_worker::TestOutcome = runpod_worker::Worker::new(handler_fn(echo))
        .run_test_job(serde_json::json!({"input": {"message": "hi", "repeat": 2}}))
        .await
        .unwrap();
    // The README shows: {"id":"local_test","output":{"echo":"hi hi","repeat":2},"status":"COMPLETED"}
    let shown: serde_json::Value = serde_json::from_str(
        r#"{"id":"local_test","output":{"echo":"hi hi","repeat":2},"status":"COMPLETED"}"#,
    )
    .unwrap();
    let got = serde_json::json!({"id": result.id, "output": result.output, "status": result.status});
    assert_eq!(got, shown);
    assert_eq!(result.progress, ["echoing"]);
    let readme = include_str!("../../../../README.md");
    assert!(readme.contains(r#"--test-input '{"input": {"message": "hi", "repeat": 2}}'"#));
    assert!(readme.contains(&shown.to_string()), "README no longer shows {shown}");

    let failed: runpod_worker::TestOutcome = runpod_worker::Worker::new(handler_fn(echo))
        .run_test_job(serde_json::json!({"input": {"message": "hi", "repeat": 0}}))
        .await
        .unwrap();
    assert_eq!(failed.status, runpod_worker::JobStatus::Failed, "{failed:?}");
    assert_eq!(failed.error.unwrap().error_message, "repeat must be between 1 and 100, got 0");
}

/// The text between `// {name}-BEGIN` and `// {name}-END` in this file.
fn block(name: &str) -> &'static str {
    let me = include_str!("readme_echo.rs");
    let begin = format!("// {name}-BEGIN\n");
    let start = me.find(&begin).unwrap() + begin.len();
    let end = me.find(&format!("// {name}-END")).unwrap();
    &me[start..end]
}

#[test]
fn readme_holds_these_snippets() {
    let readme = include_str!("../../../../README.md");
    for name in ["README", "README-TEST"] {
        let snippet = block(name);
        assert!(
            readme.contains(snippet),
            "README.md's {name} snippet differs from tests/it/readme_echo.rs:\n{snippet}"
        );
    }
}

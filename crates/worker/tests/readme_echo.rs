//! The echo snippet of README.md ("Writing a worker") compiles, runs, and answers what the README
//! shows; and the README still holds exactly this code (so the two cannot drift apart).

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

#[tokio::test]
async fn readme_echo_snippet_answers_as_shown() {
    let result = runpod_worker::Worker::new(handler_fn(echo))
        .run_test_job(serde_json::json!({"input": {"message": "hi", "repeat": 2}}))
        .await
        .unwrap();
    // The README shows: {"id":"local_test","output":{"echo":"hi hi","repeat":2},"status":"COMPLETED"}
    let shown: serde_json::Value = serde_json::from_str(
        r#"{"id":"local_test","output":{"echo":"hi hi","repeat":2},"status":"COMPLETED"}"#,
    )
    .unwrap();
    assert_eq!(result, shown);
    let readme = include_str!("../../../README.md");
    assert!(readme.contains(r#"--test-input '{"input": {"message": "hi", "repeat": 2}}'"#));
    assert!(readme.contains(&shown.to_string()), "README no longer shows {shown}");

    let failed = runpod_worker::Worker::new(handler_fn(echo))
        .run_test_job(serde_json::json!({"input": {"message": "hi", "repeat": 0}}))
        .await
        .unwrap();
    assert_eq!(failed["status"], "FAILED", "{failed}");
}

#[test]
fn readme_holds_this_snippet() {
    let me = include_str!("readme_echo.rs");
    let start = me.find("// README-BEGIN\n").unwrap() + "// README-BEGIN\n".len();
    let end = me.find("// README-END").unwrap();
    let snippet = &me[start..end];
    let readme = include_str!("../../../README.md");
    assert!(
        readme.contains(snippet),
        "README.md's echo snippet differs from tests/readme_echo.rs:\n{snippet}"
    );
}

//! The smallest useful Runpod worker: echoes a message, with progress and optional streaming.
//!
//! ```text
//! cargo run -p echo -- --test-input '{"input": {"message": "hi", "repeat": 2}}'
//! cargo run -p echo -- --serve-api --port 8000   # then: curl localhost:8000/v2/local/runsync -d ...
//! cargo run -p echo -- --schema                  # the JSON Schemas derived from the types below
//! ```

#![forbid(unsafe_code)]

use runpod_worker::{handler_fn, Job, JobContext, Worker};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::process::ExitCode;
use std::time::Duration;

/// The job's `input`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct EchoInput {
    /// What to echo.
    message: String,
    /// How many times to repeat the message.
    #[serde(default = "one")]
    #[schemars(range(min = 1, max = 100))]
    repeat: u32,
    /// Stream each repetition as a partial output.
    #[serde(default)]
    stream: bool,
    /// Pause between repetitions, in ms (to watch progress).
    #[serde(default)]
    #[schemars(range(max = 60_000))]
    delay_ms: u64,
}

fn one() -> u32 {
    1
}

/// The job's `output`.
#[derive(Debug, Serialize, JsonSchema)]
struct EchoOutput {
    /// The message, repeated, separated by spaces.
    echo: String,
    /// How many times it was repeated.
    repeat: u32,
}

async fn echo(job: Job<EchoInput>, ctx: JobContext) -> Result<EchoOutput, String> {
    let EchoInput { message, repeat, stream, delay_ms } = job.input;
    if !(1..=100).contains(&repeat) {
        return Err(format!("repeat must be between 1 and 100, got {repeat}"));
    }
    let delay = Duration::from_millis(delay_ms.min(60_000));
    let mut parts = Vec::with_capacity(repeat as usize);
    for i in 1..=repeat {
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        if stream {
            ctx.stream(&message).await.map_err(|e| e.to_string())?;
        }
        parts.push(message.clone());
        ctx.progress(serde_json::json!({"done": i, "of": repeat}));
    }
    Ok(EchoOutput { echo: parts.join(" "), repeat })
}

#[tokio::main]
async fn main() -> ExitCode {
    // `schema_from_types`: the types above become `--schema`, the input check before each job,
    // and the local endpoint's form and /openapi.json.
    Worker::new(handler_fn(echo)).schema_from_types().start().await
}

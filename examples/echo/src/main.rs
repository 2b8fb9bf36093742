//! The smallest useful Runpod worker: echoes a message, with progress and optional streaming.
//!
//! ```text
//! cargo run -p echo -- --test-input '{"input": {"message": "hi", "repeat": 2}}'
//! cargo run -p echo -- --serve-api --port 8000   # then: curl localhost:8000/v2/local/runsync -d ...
//! ```

#![forbid(unsafe_code)]

use runpod_worker::{handler_fn, Job, JobContext};
use serde::{Deserialize, Serialize};
use std::process::ExitCode;
use std::time::Duration;

/// The job's `input`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct EchoInput {
    /// What to echo.
    message: String,
    /// How many times (1 to 100).
    #[serde(default = "one")]
    repeat: u32,
    /// Stream each repetition as a partial output.
    #[serde(default)]
    stream: bool,
    /// Pause between repetitions, in ms (to watch progress; at most 60000).
    #[serde(default)]
    delay_ms: u64,
}

fn one() -> u32 {
    1
}

/// The job's `output`.
#[derive(Debug, Serialize)]
struct EchoOutput {
    echo: String,
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
    runpod_worker::start(handler_fn(echo)).await
}

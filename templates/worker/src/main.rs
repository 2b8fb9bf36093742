//! A Runpod Serverless worker. Replace `Input`, `Output` and `WordCount::handle` with your own;
//! load what every job needs (a model, a tokenizer, a client) in `WordCount::load`, once.
//!
//! ```text
//! cargo run -- --test-input '{"input": {"text": "a b a", "top": 1}}'
//! cargo run -- --serve-api --port 8000    # then POST localhost:8000/v2/local/runsync
//! ```

use std::collections::HashMap;
use std::process::ExitCode;

use runpod_worker::{async_trait, Handler, Job, JobContext, Worker};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

// `JsonSchema`: this type is the worker's input schema (`--schema`, the check before each job,
// the console's form, /openapi.json), with the doc comments, the default and the range below.
/// The job's `input`: a client sends `{"input": {"text": "...", "top": 3}}`. Input that does not
/// fit fails the job with a message naming the field.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct Input {
    /// The text to count words in.
    text: String,
    /// How many of the most frequent words to return.
    #[serde(default = "three")]
    #[schemars(range(min = 1, max = 1000))]
    top: usize,
}

fn three() -> usize {
    3
}

/// The job's `output`, sent back as JSON.
#[derive(Debug, Serialize, JsonSchema)]
struct Output {
    /// Number of words in the text.
    words: usize,
    /// The `top` most frequent words with their counts, most frequent first.
    top: Vec<(String, usize)>,
}

/// The worker: one instance serves every job, so state loaded here is loaded once.
struct WordCount {
    /// Longest text accepted, in bytes (a stand-in for what a real worker loads at start).
    max_bytes: usize,
}

impl WordCount {
    /// Loads the worker's state before the first job; an error here stops the worker at start.
    fn load() -> Result<Self, String> {
        let max_bytes = match std::env::var("MAX_BYTES") {
            Ok(v) => v.parse().map_err(|_| format!("MAX_BYTES={v:?} is not a number"))?,
            Err(_) => 1 << 20,
        };
        Ok(Self { max_bytes })
    }
}

#[async_trait]
impl Handler for WordCount {
    type Input = Input;
    type Output = Output;
    /// The job's `error` text when it fails.
    type Error = String;

    async fn handle(&self, job: Job<Input>, ctx: JobContext) -> Result<Output, String> {
        let Input { text, top } = job.input;
        if text.len() > self.max_bytes {
            return Err(format!("text is {} bytes, more than the {} allowed", text.len(), self.max_bytes));
        }
        ctx.progress("counting"); // shows in the job's status while it runs
        let mut counts: HashMap<&str, usize> = HashMap::new();
        for word in text.split_whitespace() {
            *counts.entry(word).or_default() += 1;
        }
        let words = counts.values().sum();
        let mut ranked: Vec<(String, usize)> = counts.into_iter().map(|(w, n)| (w.to_owned(), n)).collect();
        ranked.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        ranked.truncate(top);
        Ok(Output { words, top: ranked })
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let handler = match WordCount::load() {
        Ok(h) => h,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    // Reads the platform's RUNPOD_* environment (or --test-input, --serve-api, --schema), checks
    // each job's input against the types' schema, runs jobs until SIGTERM, finishes the running
    // ones; 0 after a clean shutdown.
    Worker::new(handler).schema_from_types().start().await
}

//! Handler errors choose their `error_type`: an enum's variants, a `Failure` returned as it is
//! or inside a boxed error, and the untyped errors (`String`, boxed errors), each reported in
//! the SDK's JSON error report, through a real `runpod-local` endpoint over HTTP.

use crate::common;

use common::*;
use futures::stream;
use runpod_worker::{async_trait, handler_fn, stream_fn, Failure, Handler, Job, JobContext, Worker};
use serde_json::{json, Value};

/// A model worker's errors, each variant with its own `error_type`.
#[derive(Debug, thiserror::Error)]
enum ModelError {
    #[error("the model is not loaded yet")]
    ModelNotLoaded,
    #[error("the prompt has {0} tokens, over the model's 8")]
    PromptTooLong(usize),
    #[error("cannot read the weights")]
    Weights(#[source] std::io::Error),
}

impl From<ModelError> for Failure {
    fn from(e: ModelError) -> Failure {
        let error_type = match e {
            ModelError::ModelNotLoaded => "ModelNotLoaded",
            ModelError::PromptTooLong(_) => "PromptTooLong",
            ModelError::Weights(_) => "WeightsUnreadable",
        };
        Failure::from_error(error_type, &e)
    }
}

struct Model;

#[async_trait]
impl Handler for Model {
    type Input = String;
    type Output = usize;
    type Error = ModelError;

    async fn handle(&self, job: Job<String>, _ctx: JobContext) -> Result<usize, ModelError> {
        match job.input.as_str() {
            "unloaded" => Err(ModelError::ModelNotLoaded),
            "weights" => Err(ModelError::Weights(std::io::Error::other("model.safetensors: truncated"))),
            prompt if prompt.len() > 8 => Err(ModelError::PromptTooLong(prompt.len())),
            prompt => Ok(prompt.len()),
        }
    }
}

/// Runs `inputs` as jobs on `worker` through a local endpoint; returns their final statuses.
async fn statuses<H: Handler>(worker: Worker<H>, inputs: &[Value]) -> Vec<Value> {
    let ep = endpoint(|b| b).await;
    let w = spawn(&ep, worker);
    let mut ids = Vec::new();
    for input in inputs {
        ids.push(run(&ep, json!({ "input": input })).await);
    }
    let mut out = Vec::new();
    for id in &ids {
        out.push(wait_final(&ep, id, 20).await);
    }
    w.stop().await.unwrap();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_variant_of_an_enum_reports_its_own_error_type() {
    let inputs = [json!("unloaded"), json!("a prompt far too long"), json!("weights"), json!("short")];
    let s = statuses(Worker::new(Model).concurrency(2), &inputs).await;

    let r = report(&s[0]);
    assert_eq!(s[0]["status"], "FAILED", "{}", s[0]);
    assert_eq!(r["error_type"], "ModelNotLoaded");
    assert_eq!(r["error_message"], "the model is not loaded yet");
    assert_eq!(r["error_traceback"], "");
    assert_eq!(r["worker_id"], "w1");
    assert!(r["hostname"].is_string() && r["runpod_version"] == "1.12.0", "{r}");

    let r = report(&s[1]);
    assert_eq!(r["error_type"], "PromptTooLong");
    assert_eq!(r["error_message"], "the prompt has 21 tokens, over the model's 8");

    let r = report(&s[2]);
    assert_eq!(r["error_type"], "WeightsUnreadable");
    assert_eq!(r["error_message"], "cannot read the weights");
    assert_eq!(r["error_traceback"], "caused by: model.safetensors: truncated");

    assert_eq!(s[3]["status"], "COMPLETED", "{}", s[3]);
    assert_eq!(s[3]["output"], 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_and_untyped_errors_through_handler_fn_and_stream_fn() {
    // `Failure` itself as the error type, with a traceback.
    let direct = handler_fn(|job: Job<String>, _ctx: JobContext| async move {
        match job.input.as_str() {
            "quota" => Err(Failure::new("QuotaExceeded", "100 jobs a day").with_traceback("at step 3")),
            other => Ok(other.to_owned()),
        }
    });
    let s = statuses(Worker::new(direct), &[json!("quota")]).await;
    let r = report(&s[0]);
    assert_eq!((&r["error_type"], &r["error_message"]), (&json!("QuotaExceeded"), &json!("100 jobs a day")));
    assert_eq!(r["error_traceback"], "at step 3");

    // Boxed errors: a `Failure` inside keeps its type; any other error is `Error`.
    type BoxError = Box<dyn std::error::Error + Send + Sync>;
    let boxed = handler_fn(|job: Job<String>, _ctx: JobContext| async move {
        match job.input.as_str() {
            "chosen" => Err::<String, BoxError>(Failure::new("Chosen", "picked in a box").into()),
            _ => Err(std::io::Error::other("plain io").into()),
        }
    });
    let plain = handler_fn(|job: Job<String>, _ctx: JobContext| async move { Err::<(), _>(job.input) });
    let s = statuses(Worker::new(boxed), &[json!("chosen"), json!("io")]).await;
    assert_eq!(
        (report(&s[0])["error_type"].clone(), report(&s[1])["error_type"].clone()),
        (json!("Chosen"), json!("Error"))
    );
    assert_eq!(report(&s[1])["error_message"], "plain io");
    let s = statuses(Worker::new(plain), &[json!("a plain string")]).await;
    assert_eq!(
        (report(&s[0])["error_type"].clone(), report(&s[0])["error_message"].clone()),
        (json!("Error"), json!("a plain string"))
    );

    // A stream's error converts as the stream's own error type does.
    let words = stream_fn(|job: Job<String>, _ctx: JobContext| {
        stream::iter(vec![Ok("one".to_owned()), Err(ModelError::PromptTooLong(job.input.len()))])
    });
    let s = statuses(Worker::new(words), &[json!("twelve chars")]).await;
    assert_eq!(s[0]["status"], "FAILED", "{}", s[0]);
    assert_eq!(report(&s[0])["error_type"], "PromptTooLong");
}

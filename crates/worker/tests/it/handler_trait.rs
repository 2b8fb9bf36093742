//! A `Handler` implemented on a struct (the shape model-serving workers use): one instance,
//! loaded before the first job-take, serves every job, also concurrently; each job arrives with
//! its id, typed input, webhook, policy and s3Config, and its context carries the same.

use crate::common;

use common::*;
use runpod_worker::{async_trait, Handler, Job, JobContext, Worker};
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

static LOADS: AtomicUsize = AtomicUsize::new(0);

/// Stands in for a model: loading it is counted, and each instance has its own address.
struct Model {
    weights: Vec<u8>,
    calls: AtomicUsize,
}

impl Model {
    fn load() -> Model {
        LOADS.fetch_add(1, Ordering::SeqCst);
        Model { weights: vec![1, 2, 3], calls: AtomicUsize::new(0) }
    }
}

#[derive(Deserialize)]
struct Prompt {
    text: String,
}

#[derive(Serialize)]
struct Answer {
    text: String,
    instance: usize,
    call: usize,
    webhook: Option<String>,
    execution_timeout: Option<u64>,
    bucket: Option<String>,
    ctx_bucket: Option<String>,
    ctx_job_id: String,
}

#[async_trait]
impl Handler for Model {
    type Input = Prompt;
    type Output = Answer;
    type Error = String;

    async fn handle(&self, job: Job<Prompt>, ctx: JobContext) -> Result<Answer, String> {
        tokio::time::sleep(Duration::from_millis(200)).await;
        Ok(Answer {
            text: format!("{} ({} weights)", job.input.text, self.weights.len()),
            instance: self as *const Model as usize,
            call: self.calls.fetch_add(1, Ordering::SeqCst) + 1,
            webhook: job.webhook.clone(),
            execution_timeout: job.policy.as_ref().and_then(|p| p.execution_timeout),
            bucket: job.s3_config.as_ref().map(|c| c.bucket_name.clone()),
            ctx_bucket: ctx.s3_config().map(|c| c.bucket_name.clone()),
            ctx_job_id: ctx.job_id().to_owned(),
        })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_instance_serves_every_job_with_its_parts() {
    let ep = endpoint(|b| b).await;
    let model = Model::load();
    let w = spawn(&ep, Worker::new(model).concurrency(3));
    let s3 = json!({"accessId": "AKIDHANDLER", "accessSecret": "SECRETHANDLER", "bucketName": "b1",
                    "endpointUrl": "http://127.0.0.1:1"});
    let mut ids = Vec::new();
    for i in 0..6 {
        let body = json!({"input": {"text": format!("p{i}")}, "webhook": "http://127.0.0.1:1/hook",
                          "policy": {"executionTimeout": 60000}, "s3Config": s3});
        ids.push(run(&ep, body).await);
    }
    let mut instances = Vec::new();
    let mut calls = Vec::new();
    for (i, id) in ids.iter().enumerate() {
        let s = wait_final(&ep, id, 30).await;
        assert_eq!(s["status"], "COMPLETED", "{s}");
        let out = &s["output"];
        assert_eq!(out["text"], format!("p{i} (3 weights)"));
        assert_eq!(out["webhook"], "http://127.0.0.1:1/hook");
        assert_eq!(out["execution_timeout"], 60000);
        assert_eq!(out["bucket"], "b1");
        assert_eq!(out["ctx_bucket"], "b1");
        assert_eq!(out["ctx_job_id"], id.as_str());
        assert!(!s.to_string().contains("SECRETHANDLER"), "no secret in the status: {s}");
        instances.push(out["instance"].as_u64().unwrap());
        calls.push(out["call"].as_u64().unwrap());
    }
    instances.dedup();
    assert_eq!(instances.len(), 1, "one shared instance");
    calls.sort();
    assert_eq!(calls, (1..=6).collect::<Vec<u64>>(), "every call on that one instance");
    assert_eq!(LOADS.load(Ordering::SeqCst), 1, "loaded once");
    w.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_arc_handler_is_shared_with_the_caller() {
    let ep = endpoint(|b| b).await;
    let model = Arc::new(Model { weights: vec![9], calls: AtomicUsize::new(0) });
    let w = spawn(&ep, Worker::new(model.clone()));
    let id = run(&ep, json!({"input": {"text": "x"}})).await;
    assert_eq!(wait_final(&ep, &id, 30).await["output"]["text"], "x (1 weights)");
    assert_eq!(model.calls.load(Ordering::SeqCst), 1, "the caller's instance served the job");
    w.stop().await.unwrap();
}

//! A job's other fields (e.g. `batchId` of a batch job) reach the handler's `Job`, through a
//! real runpod-local over HTTP.

use crate::common;

use common::*;
use runpod_protocol::JobRequest;
use runpod_worker::{handler_fn, Job, JobContext, Worker};
use serde_json::{json, Value};

async fn fields(job: Job<Value>, _ctx: JobContext) -> Result<Value, String> {
    Ok(json!({"batch": job.batch_id(), "extra": job.extra}))
}

#[tokio::test]
async fn batch_id_and_other_fields_reach_the_handler() {
    let ep = endpoint(|b| b).await;
    let w = spawn(&ep, Worker::new(handler_fn(fields)));
    let extra = json!({"batchId": "batch_01j9abc123", "priority": 3});
    ep.queue_with_fields("job-1", JobRequest::new(json!({"n": 1})), extra.as_object().unwrap().clone())
        .unwrap();
    let done = wait_final(&ep, "job-1", 30).await;
    assert_eq!(done["status"], "COMPLETED", "{done}");
    assert_eq!(done["output"]["batch"], "batch_01j9abc123");
    assert_eq!(done["output"]["extra"], extra);
    // A job without them has none.
    let id = run(&ep, json!({"input": {"n": 2}})).await;
    let done = wait_final(&ep, &id, 30).await;
    assert_eq!(done["output"], json!({"batch": null, "extra": {}}));
    w.stop().await.unwrap();
}

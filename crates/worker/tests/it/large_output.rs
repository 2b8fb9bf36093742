//! An output over the platform's result limit: with the job's bucket (SeaweedFS on 127.0.0.1,
//! see `scripts/test.d/30-s3.sh`) it is uploaded and the output becomes its presigned URL;
//! without one the job fails saying why. Through a real runpod-local over HTTP.

use crate::common;

use common::*;
use runpod_s3::test_support::TestS3;
use runpod_worker::{handler_fn, Job, JobContext, Worker};
use serde_json::{json, Value};

/// `{"blob": "xxxx..."}` of `n` bytes.
async fn big(job: Job<usize>, _ctx: JobContext) -> Result<Value, String> {
    Ok(json!({"blob": "x".repeat(job.input)}))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_output_goes_to_the_bucket_and_a_small_one_stays_inline() {
    let Some(s3) = TestS3::start() else { return };
    let storage = s3.new_bucket("large-output").await;
    let ep = endpoint(|b| b).await;
    // A 64 KiB limit stands for the platform's 10 MB (the path is the same).
    let w = spawn(&ep, Worker::new(handler_fn(big)).max_result_bytes(64 * 1024).debugger(true));
    let s3_config = json!({"accessId": s3.access_key, "accessSecret": s3.secret_key, "bucketName": storage.bucket(), "endpointUrl": s3.endpoint});

    let id = run(&ep, json!({"input": 200_000, "s3Config": s3_config})).await;
    let status = wait_final(&ep, &id, 60).await;
    assert_eq!(status["status"], "COMPLETED", "{status}");
    let out = &status["output"];
    assert_eq!(out["key"], format!("{id}/output.json"), "{out}");
    assert_eq!(out["contentType"], "application/json");
    assert_eq!(out["inline"], false);
    let timings: Vec<&str> = out["rp_debugger"]["timestamps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(timings, ["decode_input", "handler", "upload_output"], "{out}");
    // A plain GET of the presigned URL returns the output itself.
    let fetched: Value = reqwest::get(out["url"].as_str().unwrap()).await.unwrap().json().await.unwrap();
    assert_eq!(fetched["blob"].as_str().unwrap().len(), 200_000);
    assert!(!status.to_string().contains(&s3.secret_key), "no secret in the answer");

    let id = run(&ep, json!({"input": 10, "s3Config": s3_config})).await;
    let status = wait_final(&ep, &id, 60).await;
    assert_eq!(status["output"]["blob"], "xxxxxxxxxx", "small outputs are inline: {status}");
    w.stop().await.unwrap();
}

#[tokio::test]
async fn without_a_bucket_a_large_output_fails_clearly() {
    let ep = endpoint(|b| b).await;
    let w = spawn(&ep, Worker::new(handler_fn(big)).max_result_bytes(64 * 1024));
    let id = run(&ep, json!({"input": 200_000})).await;
    let status = wait_final(&ep, &id, 60).await;
    assert_eq!(status["status"], "FAILED", "{status}");
    let r = report(&status);
    assert_eq!(r["error_type"], "OutputTooLarge");
    assert!(r["error_message"].as_str().unwrap().contains("65536-byte limit"), "{r}");
    w.stop().await.unwrap();
}

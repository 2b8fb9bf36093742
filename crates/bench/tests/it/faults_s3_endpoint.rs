//! Fault test: jobs whose `s3Config.endpointUrl` points at the worker's own loopback or at cloud
//! metadata. A real `runpod-bench-worker` process, started as on the platform (no
//! `RUNPOD_ALLOW_PRIVATE_S3_ENDPOINTS`), uploads to the job's bucket: each such job must end
//! `FAILED` saying the endpoint was refused, with no connection made (a listener on the
//! loopback port counts them) and no secret in any answer or log. With the switch set to
//! `private` loopback stays refused; set to `true`, the same worker binary uploads to the real
//! S3 server (SeaweedFS on 127.0.0.1), so the guard is what stopped the others.

use crate::common;

use common::{captured_logs, endpoint, Client, Secrets, WorkerProcess};
use runpod_s3::test_support::{counting_listener, TestS3};
use serde_json::{json, Value};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

fn s3_config(secrets: &Secrets, endpoint: &str, bucket: &str) -> Value {
    json!({"accessId": secrets.access_id, "accessSecret": secrets.access_secret,
           "bucketName": bucket, "endpointUrl": endpoint})
}

/// Runs one upload job per `(endpoint, bucket)` on a worker started with `policy_env` (if any);
/// returns the final status of each, every client answer, and the worker's output.
async fn run_uploads(
    secrets: &Secrets,
    name: &str,
    policy_env: Option<&str>,
    jobs: &[(String, String)],
) -> (Vec<Value>, String, String) {
    let ep = endpoint(secrets).bind("127.0.0.1:0").await.unwrap();
    let client = Client::new(&ep, &secrets.api_key);
    let mut env = ep.worker_env(name);
    if let Some(v) = policy_env {
        env.push(("RUNPOD_ALLOW_PRIVATE_S3_ENDPOINTS".into(), v.into()));
    }
    let worker = WorkerProcess::spawn(env, 4);
    let mut ids = Vec::new();
    for (endpoint_url, bucket) in jobs {
        let body =
            json!({"input": {"upload": "out.txt"}, "s3Config": s3_config(secrets, endpoint_url, bucket)});
        ids.push(client.run(body).await);
    }
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut finals = Vec::new();
    for id in &ids {
        finals.push(client.wait_final(id, deadline).await);
    }
    let log = worker.log();
    drop(worker);
    (finals, client.all_answers(), log)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_endpoints_on_loopback_or_metadata_are_refused() {
    let secrets = Secrets::new();
    let (port, connections) = counting_listener().await.unwrap();
    let refused: Vec<(String, String)> = [
        format!("http://127.0.0.1:{port}"),
        format!("http://localhost:{port}"),
        format!("http://[::ffff:127.0.0.1]:{port}"),
        "http://169.254.169.254".to_owned(),
    ]
    .into_iter()
    .map(|e| (e, "bucket".to_owned()))
    .collect();

    for (name, policy) in [("w-s3-default", None), ("w-s3-private", Some("private"))] {
        let (finals, answers, log) = run_uploads(&secrets, name, policy, &refused).await;
        for ((endpoint, _), st) in refused.iter().zip(&finals) {
            assert_eq!(st["status"], "FAILED", "{name} {endpoint}: {st}");
            let error = st["error"].to_string();
            assert!(
                error.contains("refused to connect to the S3 endpoint")
                    && error.contains("RUNPOD_ALLOW_PRIVATE_S3_ENDPOINTS"),
                "{name} {endpoint}: {error}"
            );
        }
        secrets.assert_absent(&format!("{name}: client answers"), &answers);
        secrets.assert_absent(&format!("{name}: worker output"), &log);
    }
    assert_eq!(connections.load(Ordering::SeqCst), 0, "a refused endpoint was connected to");
    eprintln!("MEASURED: {} refused S3 endpoints x 2 policies: all FAILED, 0 connections", refused.len());

    // The same worker binary with the switch set to true reaches the real S3 server on loopback.
    let Some(s3) = TestS3::start() else { return };
    let bucket = s3.new_bucket("guard").await;
    let real =
        Secrets { access_id: s3.access_key.clone(), access_secret: s3.secret_key.clone(), ..Secrets::new() };
    let jobs = vec![(s3.endpoint.clone(), bucket.bucket().to_owned())];
    let (finals, _, _) = run_uploads(&real, "w-s3-any", Some("true"), &jobs).await;
    assert_eq!(finals[0]["status"], "COMPLETED", "{}", finals[0]);
    let url = finals[0]["output"]["url"].as_str().expect("presigned URL");
    let body = reqwest::get(url).await.unwrap().text().await.unwrap();
    assert_eq!(body, "uploaded by runpod-bench-worker");
    secrets.assert_absent("endpoint log", &captured_logs());
}

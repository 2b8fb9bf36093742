//! End-to-end storage: a real `runpod-local` endpoint, the runtime worker, and a real S3 server
//! (SeaweedFS on 127.0.0.1, see `scripts/test.d/30-s3.sh`). Jobs carry an `s3Config`; results
//! come back as presigned URLs fetched with a plain HTTP GET; bad credentials fail the job with
//! a clear message and no secret in any answer or log line.
//!
//! A test binary of its own, not a module of `tests/it`: it installs the process's global log
//! subscriber to read every line the process logs, and other tests in `tests/it` install theirs.

#[path = "it/common/mod.rs"]
mod common;

use common::*;
use runpod_s3::test_support::TestS3;
use runpod_s3::Uploaded;
use runpod_worker::{handler_fn, Job, JobContext, Worker};
use serde::Deserialize;
use serde_json::{json, Value};
use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};

/// Every log line of this test binary (all targets, DEBUG and up), to look for leaked secrets.
///
/// Neither the secret key nor the access key id may appear in any of them: the AWS SDK's own
/// orchestrator prints the key id at DEBUG, and runpod-s3 caps the SDK's targets at INFO.
fn logs() -> Arc<Mutex<Vec<u8>>> {
    static LOGS: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    LOGS.get_or_init(|| {
        let buf = Arc::new(Mutex::new(Vec::new()));
        let sink = buf.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::DEBUG)
            .with_ansi(false)
            .with_writer(move || Capture(sink.clone()))
            .finish();
        tracing::subscriber::set_global_default(subscriber).expect("first subscriber");
        buf
    })
    .clone()
}

struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(data);
        Ok(data.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn s3_config(s3: &TestS3, bucket: &str, secret: &str) -> Value {
    json!({"accessId": s3.access_key, "accessSecret": secret, "bucketName": bucket, "endpointUrl": s3.endpoint})
}

#[derive(Deserialize)]
struct Echo {
    text: String,
}

/// Uploads the input text and returns where it went.
async fn upload_text(job: Job<Echo>, ctx: JobContext) -> Result<Uploaded, String> {
    ctx.upload_bytes("result.txt", job.input.text, "text/plain").await.map_err(|e| e.to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_uploads_its_result_and_the_url_serves_it() {
    let logs = logs();
    let Some(s3) = TestS3::start() else { return };
    let storage = s3.new_bucket("e2e-upload").await;
    let ep = endpoint(|b| b).await;
    let w = spawn(&ep, Worker::new(handler_fn(upload_text)));

    let id = run(&ep, json!({"input": {"text": "hello from the worker"}, "s3Config": s3_config(&s3, storage.bucket(), &s3.secret_key)})).await;
    let status = wait_final(&ep, &id, 60).await;
    assert_eq!(status["status"], "COMPLETED", "{status}");
    let out = &status["output"];
    assert_eq!(out["key"], format!("{id}/result.txt"));
    assert_eq!(out["bucket"], storage.bucket());
    assert_eq!(out["inline"], false);

    // A plain HTTP GET of the presigned URL returns the bytes.
    let resp = reqwest::get(out["url"].as_str().unwrap()).await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "text/plain");
    assert_eq!(resp.text().await.unwrap(), "hello from the worker");

    let text = status.to_string();
    assert!(!text.contains(&s3.secret_key), "the s3Config secret is in the status answer");
    let log_text = String::from_utf8_lossy(&logs.lock().unwrap()).into_owned();
    assert!(!log_text.contains(&s3.secret_key), "secret in logs");
    assert!(!log_text.contains(&s3.access_key), "access key id in the DEBUG log");
    w.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_credentials_fail_the_job_clearly_and_the_worker_goes_on() {
    let logs = logs();
    let Some(s3) = TestS3::start() else { return };
    let storage = s3.new_bucket("e2e-creds").await;
    let ep = endpoint(|b| b).await;
    let w = spawn(&ep, Worker::new(handler_fn(upload_text)));

    let wrong = "e2e-WRONG-secret-9f8e7d6c5b4a";
    let bad =
        run(&ep, json!({"input": {"text": "x"}, "s3Config": s3_config(&s3, storage.bucket(), wrong)})).await;
    let status = wait_final(&ep, &bad, 60).await;
    assert_eq!(status["status"], "FAILED", "{status}");
    let message = report(&status)["error_message"].as_str().unwrap_or_default().to_owned();
    assert!(message.contains("SignatureDoesNotMatch"), "{message}");
    assert!(message.contains("check the access key id and secret key"), "{message}");
    assert!(message.contains(&format!("{bad}/result.txt")), "names the object: {message}");

    // The worker is still there: the next job, with the right key, completes.
    let good = run(
        &ep,
        json!({"input": {"text": "ok"}, "s3Config": s3_config(&s3, storage.bucket(), &s3.secret_key)}),
    )
    .await;
    let ok = wait_final(&ep, &good, 60).await;
    assert_eq!(ok["status"], "COMPLETED", "{ok}");

    let log_text = String::from_utf8_lossy(&logs.lock().unwrap()).into_owned();
    assert!(log_text.contains("SignatureDoesNotMatch"), "the failure is logged");
    for secret in [wrong, s3.secret_key.as_str()] {
        assert!(
            !status.to_string().contains(secret) && !ok.to_string().contains(secret),
            "secret in an answer"
        );
        assert!(!log_text.contains(secret), "secret {secret} in the logs");
    }
    assert!(log_text.contains(" DEBUG "), "the DEBUG log was captured");
    assert!(!log_text.contains(&s3.access_key), "access key id in the DEBUG log");
    w.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_downloads_an_s3_input_and_uploads_a_file() {
    let _ = logs();
    let Some(s3) = TestS3::start() else { return };
    let storage = s3.new_bucket("e2e-dl").await;
    storage.upload_bytes("inputs/words.txt", "some input words", "text/plain").await.unwrap();
    let ep = endpoint(|b| b).await;

    #[derive(Deserialize)]
    struct Urls {
        urls: Vec<String>,
    }
    let handler = handler_fn(|job: Job<Urls>, ctx: JobContext| async move {
        let downloads = ctx.download(&job.input.urls).await.map_err(|e| e.to_string())?;
        let text = std::fs::read_to_string(&downloads.files()[0]).map_err(|e| e.to_string())?;
        let out = downloads.dir().join("upper.txt");
        std::fs::write(&out, text.to_uppercase()).map_err(|e| e.to_string())?;
        let uploaded = ctx.upload_file("upper.txt", &out, None).await.map_err(|e| e.to_string())?;
        Ok::<_, String>(json!({"uploaded": uploaded, "dir": downloads.dir()}))
    });
    let w = spawn(&ep, Worker::new(handler));
    let input = json!({"urls": [format!("s3://{}/inputs/words.txt", storage.bucket())]});
    let id =
        run(&ep, json!({"input": input, "s3Config": s3_config(&s3, storage.bucket(), &s3.secret_key)})).await;
    let status = wait_final(&ep, &id, 60).await;
    assert_eq!(status["status"], "COMPLETED", "{status}");
    let url = status["output"]["uploaded"]["url"].as_str().unwrap();
    assert_eq!(reqwest::get(url).await.unwrap().text().await.unwrap(), "SOME INPUT WORDS");
    let dir = std::path::PathBuf::from(status["output"]["dir"].as_str().unwrap());
    assert!(!dir.exists(), "the job's download dir {dir:?} is gone after the job");
    w.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_storage_results_come_back_inline_and_loopback_downloads_are_refused() {
    let logs = logs();
    if std::env::var_os("BUCKET_ENDPOINT_URL").is_some()
        || std::env::var_os("RUNPOD_ALLOW_PRIVATE_DOWNLOAD_URLS").is_some()
    {
        eprintln!("SKIPPED: BUCKET_* or RUNPOD_ALLOW_PRIVATE_DOWNLOAD_URLS is set in this environment");
        return;
    }
    let ep = endpoint(|b| b).await;
    let handler = handler_fn(|job: Job<Value>, ctx: JobContext| async move {
        if let Some(url) = job.input["download"].as_str() {
            return ctx.download(&[url]).await.map(|_| json!("downloaded")).map_err(|e| e.to_string());
        }
        let not_configured = ctx.s3().await.err().map(|e| e.to_string());
        let uploaded = ctx.upload_bytes("hi.txt", "hi", "text/plain").await.map_err(|e| e.to_string())?;
        Ok::<_, String>(json!({"uploaded": uploaded, "s3_error": not_configured}))
    });
    let w = spawn(&ep, Worker::new(handler));

    let id = run(&ep, json!({"input": {}})).await;
    let status = wait_final(&ep, &id, 60).await;
    assert_eq!(status["status"], "COMPLETED", "{status}");
    assert_eq!(status["output"]["uploaded"]["url"], "data:text/plain;base64,aGk=");
    assert_eq!(status["output"]["uploaded"]["inline"], true);
    assert!(status["output"]["s3_error"].as_str().unwrap().contains("no S3 storage configured"), "{status}");
    let log_text = String::from_utf8_lossy(&logs.lock().unwrap()).into_owned();
    assert!(log_text.contains("returning the data inline"), "the fallback is logged");

    let target = format!("{}/health", ep.endpoint_url());
    let id = run(&ep, json!({"input": {"download": target}})).await;
    let status = wait_final(&ep, &id, 60).await;
    assert_eq!(status["status"], "FAILED", "{status}");
    let message = report(&status)["error_message"].as_str().unwrap_or_default().to_owned();
    assert!(
        message.contains("refused to download") && message.contains("RUNPOD_ALLOW_PRIVATE_DOWNLOAD_URLS"),
        "{message}"
    );
    w.stop().await.unwrap();
}

//! No secret in any log line: every log of the test's thread, at TRACE, is captured while a job
//! with `s3Config` and an API key goes through queue, take, stream, result, webhook and errors.

use crate::common;

use common::Api;
use runpod_local::LocalEndpoint;
use serde_json::json;
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A log sink that keeps everything written to it.
#[derive(Clone, Default)]
struct Sink(Arc<Mutex<Vec<u8>>>);

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn secrets_never_reach_the_log() {
    let sink = Sink::default();
    let writer = sink.clone();
    // This thread's subscriber, not the process's: the other tests of this binary run beside
    // it. The endpoint's tasks run on this thread (the test's runtime has only this one).
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let ep = LocalEndpoint::builder()
        .api_key("KEYSECRET")
        .webhook_retry_delay(Duration::from_millis(10))
        .bind("127.0.0.1:0")
        .await
        .unwrap();
    let api = Api::new(&ep, Some("KEYSECRET"));
    let s3 = json!({"accessId": "IDSECRET", "accessSecret": "S3SECRET", "bucketName": "b", "endpointUrl": "http://127.0.0.1:1"});
    // The webhook points at a closed port, so its failures are logged too.
    let body = json!({"input": 1, "s3Config": s3, "webhook": "http://127.0.0.1:1/hook?token=HOOKSECRET"});
    let (_, run) = api.post("run", &body).await;
    let id = run["id"].as_str().unwrap().to_owned();
    api.wget("job-take/w1").await;
    api.wpost(&format!("job-stream/w1/{id}"), &json!({"output": 1})).await;
    api.wpost(&format!("job-done/w1/{id}"), &json!({"output": 2, "stopPod": true})).await;
    let bad = json!({"input": 1, "s3Config": {"accessId": "IDSECRET", "accessSecret": 123456789}});
    assert_eq!(api.post("run", &bad).await.0, 400);
    let wrong = Api { key: Some("WRONGSECRET".into()), ..Api::new(&ep, None) };
    assert_eq!(wrong.post("run", &json!({"input": 1})).await.0, 401);
    tokio::time::sleep(Duration::from_millis(500)).await;
    ep.shutdown().await;

    let log = String::from_utf8_lossy(&sink.0.lock().unwrap()).into_owned();
    assert!(log.contains(&id), "the log was captured: {log}");
    assert!(log.contains("webhook"), "the webhook failures were logged: {log}");
    for secret in ["KEYSECRET", "IDSECRET", "S3SECRET", "123456789", "HOOKSECRET", "WRONGSECRET"] {
        assert!(!log.contains(secret), "{secret} in the log:\n{log}");
    }
}

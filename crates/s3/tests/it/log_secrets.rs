//! The AWS SDK prints the access key id at DEBUG (its orchestrator logs the resolved identity
//! when it resolves an endpoint). With a subscriber that lets everything through at TRACE, as
//! `RUST_LOG=trace` would, neither the key id nor the secret may reach a log line from any of
//! this crate's operations against a real S3 server (SeaweedFS on 127.0.0.1), good keys or bad;
//! our own DEBUG lines still do.

use runpod_s3::test_support::TestS3;
use runpod_s3::{quiet_sdk, DownloadOptions, Downloader, Storage, StorageConfig, TransferOptions};
use std::io::Write;
use std::sync::{Arc, Mutex};

#[derive(Clone, Default)]
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

#[tokio::test]
async fn sdk_debug_output_never_carries_the_keys() {
    if std::env::var("RUST_LOG").is_ok_and(|f| f.contains("aws")) {
        eprintln!("SKIPPED: RUST_LOG names an aws target, which lifts the cap on purpose");
        return;
    }
    let Some(s3) = TestS3::start() else { return };
    let logs = Capture::default();
    let sink = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || sink.clone())
        .finish();
    // Thread-local: this current-thread runtime polls every task on this thread.
    let _guard = tracing::subscriber::set_default(subscriber);

    let good = s3.new_bucket("quiet").await.for_job("job-q").unwrap();
    let up = good.upload_bytes("a.txt", "hello", "text/plain").await.unwrap();
    assert_eq!(reqwest::get(&up.url).await.unwrap().text().await.unwrap(), "hello");
    // Multipart (create, parts, complete) and a stream.
    let small_parts = good.clone().with_transfer_options(
        TransferOptions::default().with_multipart_threshold(5 << 20).with_part_size(5 << 20),
    );
    let path = std::env::temp_dir().join(format!("runpod-s3-quiet-{}", std::process::id()));
    std::fs::write(&path, vec![7u8; 11 << 20]).unwrap();
    small_parts.upload_file("big.bin", &path, None).await.unwrap();
    std::fs::remove_file(&path).unwrap();
    // A download of an s3:// URL (GetObject).
    let downloader = Downloader::new(DownloadOptions::default()).unwrap().with_storage(Some(good.clone()));
    let files =
        downloader.download_for_job("job-q", &[format!("s3://{}/job-q/a.txt", good.bucket())]).await.unwrap();
    drop(files);
    // A direct SDK call through the documented wrapper.
    quiet_sdk(good.client().list_objects_v2().bucket(good.bucket()).send()).await.unwrap();

    // Wrong keys: the failure is logged by us, the keys are not.
    let (bad_id, bad_secret) = ("AKIDQUIETTEST0001", "quiet-WRONG-secret-5a4b3c2d1e");
    let bad = Storage::new(&StorageConfig::new(&s3.endpoint, bad_id, bad_secret, good.bucket())).unwrap();
    assert!(bad.upload_bytes("b.txt", "x", "text/plain").await.is_err());

    let text = String::from_utf8_lossy(&logs.0.lock().unwrap()).into_owned();
    assert!(text.contains("DEBUG") || text.contains("INFO"), "the log was captured: {text}");
    for leaked in [s3.access_key.as_str(), s3.secret_key.as_str(), bad_id, bad_secret] {
        let lines: Vec<&str> = text.lines().filter(|l| l.contains(leaked)).collect();
        assert!(lines.is_empty(), "{leaked} is in the log:\n{}", lines.join("\n"));
    }
    // The SDK's per-operation DEBUG lines (the identity is printed among them) are all gone.
    let orchestrator: Vec<&str> = text
        .lines()
        .filter(|l| (l.contains(" DEBUG ") || l.contains(" TRACE ")) && l.contains("orchestrat"))
        .take(5)
        .collect();
    assert!(orchestrator.is_empty(), "SDK operation details got through:\n{}", orchestrator.join("\n"));
}

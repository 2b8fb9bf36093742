//! The download helper against a real HTTP server on 127.0.0.1 (axum) and a real S3 server:
//! round trip, redirects, retries, the size cap and the loopback refusal.

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::Router;
use runpod_s3::test_support::TestS3;
use runpod_s3::{DownloadError, DownloadOptions, Downloader};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

#[derive(Default)]
struct Counters {
    flaky: AtomicUsize,
}

fn body_bytes() -> Vec<u8> {
    (0..300_000u32).map(|i| (i % 251) as u8).collect()
}

/// Serves `/file.bin`, `/redirect` (to the file), `/to-file-scheme`, `/flaky` (503 once, then the
/// file), `/always-500`, `/chunked` (no Content-Length), `/missing` (404).
async fn serve() -> (String, Arc<Counters>) {
    let counters = Arc::new(Counters::default());
    let app = Router::new()
        .route("/file.bin", get(|| async { body_bytes() }))
        .route("/redirect", get(|| async { Redirect::temporary("/file.bin") }))
        .route("/to-file-scheme", get(|| async { Redirect::temporary("file:///etc/passwd") }))
        .route(
            "/flaky",
            get(|State(c): State<Arc<Counters>>| async move {
                if c.flaky.fetch_add(1, Ordering::SeqCst) == 0 {
                    StatusCode::SERVICE_UNAVAILABLE.into_response()
                } else {
                    body_bytes().into_response()
                }
            }),
        )
        .route("/always-500", get(|| async { StatusCode::INTERNAL_SERVER_ERROR }))
        .route(
            "/chunked",
            get(|| async {
                let chunks = (0..10).map(|_| Ok::<_, std::io::Error>(vec![7u8; 10_000]));
                Response::builder()
                    .header(header::CONTENT_TYPE, "application/octet-stream")
                    .body(Body::from_stream(futures::stream::iter(chunks)))
                    .unwrap()
            }),
        )
        .with_state(counters.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}"), counters)
}

fn allow_private() -> DownloadOptions {
    DownloadOptions::default().with_allow_private(true)
}

#[tokio::test]
async fn downloads_http_redirect_and_s3_urls_into_a_temp_dir_removed_on_drop() {
    let Some(s3) = TestS3::start() else { return };
    let (base, _) = serve().await;
    let storage = s3.new_bucket("dl").await;
    let object = b"bytes stored in S3".to_vec();
    storage.upload_bytes("inputs/audio.wav", object.clone(), "audio/wav").await.unwrap();

    let downloader = Downloader::new(allow_private()).unwrap().with_storage(Some(storage.clone()));
    let urls = vec![
        format!("{base}/file.bin"),
        format!("{base}/redirect"),
        format!("s3://{}/inputs/audio.wav", storage.bucket()),
    ];
    let downloads = downloader.download_for_job("job-42", &urls).await.unwrap();
    let dir = downloads.dir().to_owned();
    assert!(dir.file_name().unwrap().to_string_lossy().starts_with("runpod-job-job-42-"), "{dir:?}");
    let files = downloads.files();
    assert_eq!(files.len(), 3);
    assert_eq!(files[0].file_name().unwrap(), "0-file.bin");
    assert_eq!(files[1].file_name().unwrap(), "1-redirect");
    assert_eq!(files[2].file_name().unwrap(), "2-audio.wav");
    assert_eq!(std::fs::read(&files[0]).unwrap(), body_bytes());
    assert_eq!(std::fs::read(&files[1]).unwrap(), body_bytes());
    assert_eq!(std::fs::read(&files[2]).unwrap(), object);

    drop(downloads);
    assert!(!dir.exists(), "the job's download dir is removed");

    // The size cap holds for s3:// objects too.
    let capped = Downloader::new(allow_private().with_max_bytes(5)).unwrap().with_storage(Some(storage));
    let err = capped.download(&[urls[2].as_str()]).await.unwrap_err();
    assert!(matches!(err, DownloadError::TooLarge { limit: 5, .. }), "{err}");
}

#[tokio::test]
async fn loopback_is_refused_without_the_allow_flag() {
    let (base, _) = serve().await;
    let downloader = Downloader::new(DownloadOptions::default()).unwrap();
    let port = base.rsplit(':').next().unwrap();
    for url in [format!("{base}/file.bin"), format!("http://localhost:{port}/file.bin")] {
        let err = downloader.download(&[url.as_str()]).await.unwrap_err();
        assert!(matches!(err, DownloadError::Blocked { .. }), "{url}: {err}");
        let text = err.to_string();
        assert!(text.contains("RUNPOD_ALLOW_PRIVATE_DOWNLOAD_URLS"), "{text}");
    }
}

#[tokio::test]
async fn names_resolve_through_the_guard_when_private_addresses_are_allowed() {
    let (base, _) = serve().await;
    let port = base.rsplit(':').next().unwrap();
    let downloader = Downloader::new(allow_private()).unwrap();
    let got = downloader.download(&[format!("http://localhost:{port}/file.bin")]).await.unwrap();
    assert_eq!(std::fs::read(&got.files()[0]).unwrap(), body_bytes());
}

#[tokio::test]
async fn redirects_are_checked_again() {
    let (base, _) = serve().await;
    let downloader = Downloader::new(allow_private()).unwrap();
    let err = downloader.download(&[format!("{base}/to-file-scheme")]).await.unwrap_err();
    assert!(matches!(err, DownloadError::InvalidUrl { .. }), "{err}");
    assert!(err.to_string().contains("file"), "{err}");
}

#[tokio::test]
async fn retries_server_errors_and_gives_up_clearly() {
    let (base, counters) = serve().await;
    let downloader = Downloader::new(allow_private()).unwrap();
    let got = downloader.download(&[format!("{base}/flaky")]).await.unwrap();
    assert_eq!(std::fs::read(&got.files()[0]).unwrap(), body_bytes());
    assert_eq!(counters.flaky.load(Ordering::SeqCst), 2, "one 503, then success");

    let err = downloader.download(&[format!("{base}/always-500?token=SECRET123")]).await.unwrap_err();
    assert!(matches!(err, DownloadError::Status { status: 500, .. }), "{err}");
    assert!(!err.to_string().contains("SECRET123"), "query strings are redacted: {err}");
}

#[tokio::test]
async fn the_size_cap_holds_with_and_without_content_length() {
    let (base, _) = serve().await;
    let downloader = Downloader::new(allow_private().with_max_bytes(50_000)).unwrap();
    for path in ["/file.bin", "/chunked"] {
        let err = downloader.download(&[format!("{base}{path}")]).await.unwrap_err();
        assert!(matches!(err, DownloadError::TooLarge { limit: 50_000, .. }), "{path}: {err}");
    }
    let ok = Downloader::new(allow_private().with_max_bytes(100_000)).unwrap();
    let got = ok.download(&[format!("{base}/chunked")]).await.unwrap();
    assert_eq!(std::fs::metadata(&got.files()[0]).unwrap().len(), 100_000);
}

#[tokio::test]
async fn a_failed_url_fails_the_batch_with_its_name() {
    let (base, _) = serve().await;
    let downloader = Downloader::new(allow_private()).unwrap();
    let err =
        downloader.download(&[format!("{base}/file.bin"), format!("{base}/missing")]).await.unwrap_err();
    assert!(matches!(err, DownloadError::Status { status: 404, .. }), "{err}");
    assert!(err.to_string().contains("/missing"), "{err}");
}

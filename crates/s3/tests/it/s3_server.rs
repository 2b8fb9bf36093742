//! Storage against a real S3-compatible server (SeaweedFS on 127.0.0.1, see
//! `scripts/test.d/30-s3.sh`): uploads, presigned GETs fetched over plain HTTP, both checksum
//! modes, multipart streams, and the errors of bad credentials, missing buckets and dead servers.

use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region, RequestChecksumCalculation};
use aws_sdk_s3::primitives::ByteStream;
use bytes::Bytes;
use runpod_s3::test_support::{unique_bucket, TestS3};
use runpod_s3::{Storage, StorageConfig, StorageError, TransferOptions, Uploader};
use std::time::Duration;

fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len).map(|i| (i as u32).wrapping_mul(2654435761).to_le_bytes()[1] ^ seed).collect()
}

async fn http_get(url: &str) -> reqwest::Response {
    reqwest::get(url).await.expect("GET presigned URL")
}

#[tokio::test]
async fn upload_bytes_returns_a_presigned_url_that_plain_http_can_fetch() {
    let Some(s3) = TestS3::start() else { return };
    let storage = s3.new_bucket("bytes").await.for_job("job-123").unwrap();
    let data = pattern(100_000, 7);
    let up = storage.upload_bytes("result.bin", data.clone(), "application/x-test").await.unwrap();
    assert_eq!(up.key.as_deref(), Some("job-123/result.bin"));
    assert_eq!(up.bucket.as_deref(), Some(storage.bucket()));
    assert_eq!(up.size, data.len() as u64);
    assert!(!up.inline);
    assert!(up.url.starts_with(&s3.endpoint), "{}", up.url);
    assert!(up.url.contains("X-Amz-Expires=604800"), "7 days by default: {}", up.url);

    let resp = http_get(&up.url).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "application/x-test");
    assert_eq!(resp.bytes().await.unwrap().as_ref(), &data[..]);

    // A tampered signature is refused: the URL really is signed.
    let tampered = up.url.replace("X-Amz-Signature=", "X-Amz-Signature=00");
    assert_eq!(http_get(&tampered).await.status(), 403);
}

#[tokio::test]
async fn presign_expiry_is_configurable_and_bounded() {
    let Some(s3) = TestS3::start() else { return };
    let storage = s3.new_bucket("expiry").await.for_job("j").unwrap();
    let short = storage.clone().with_presign_expiry(Duration::from_secs(90)).unwrap();
    let up = short.upload_bytes("a.txt", "hello", "text/plain").await.unwrap();
    assert!(up.url.contains("X-Amz-Expires=90"), "{}", up.url);
    assert_eq!(http_get(&up.url).await.text().await.unwrap(), "hello");
    let err = storage.with_presign_expiry(Duration::from_secs(8 * 24 * 3600)).unwrap_err();
    assert!(matches!(err, StorageError::PresignExpiry(_)), "{err}");
}

#[tokio::test]
async fn both_checksum_modes_are_accepted_by_the_server() {
    let Some(s3) = TestS3::start() else { return };
    // Our client: checksums only when required.
    let storage = s3.new_bucket("checksums").await;
    storage.upload_bytes("when-required.txt", "one", "text/plain").await.unwrap();
    // The SDK's default (checksums whenever supported) against the same bucket.
    let conf = aws_sdk_s3::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .endpoint_url(&s3.endpoint)
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new(&s3.access_key, &s3.secret_key, None, None, "test"))
        .force_path_style(true)
        .request_checksum_calculation(RequestChecksumCalculation::WhenSupported)
        .build();
    let default_client = aws_sdk_s3::Client::from_conf(conf);
    default_client
        .put_object()
        .bucket(storage.bucket())
        .key("when-supported.txt")
        .body(ByteStream::from_static(b"two"))
        .send()
        .await
        .unwrap();
    for (key, want) in [("when-required.txt", "one"), ("when-supported.txt", "two")] {
        let got = storage.client().get_object().bucket(storage.bucket()).key(key).send().await.unwrap();
        assert_eq!(got.body.collect().await.unwrap().into_bytes().as_ref(), want.as_bytes());
    }
}

#[tokio::test]
async fn files_and_streams_upload_single_and_multipart() {
    let Some(s3) = TestS3::start() else { return };
    let opts = TransferOptions::default()
        .with_multipart_threshold(6 * 1024 * 1024)
        .with_part_size(5 * 1024 * 1024)
        .with_concurrency(3);
    let storage = s3.new_bucket("files").await.for_job("job-f").unwrap().with_transfer_options(opts);
    let dir = tempfile::tempdir().unwrap();

    for (name, len) in [("small.png", 1000usize), ("large.bin", 13 * 1024 * 1024 + 17)] {
        let data = pattern(len, 3);
        let path = dir.path().join(name);
        std::fs::write(&path, &data).unwrap();
        let up = storage.upload_file(name, &path, None).await.unwrap();
        assert_eq!(up.size, len as u64);
        let resp = http_get(&up.url).await;
        assert_eq!(resp.status(), 200, "{name}");
        if name.ends_with(".png") {
            assert_eq!(resp.headers()["content-type"], "image/png");
        }
        assert!(resp.bytes().await.unwrap() == data, "{name} round trip");
    }

    // A stream of odd-sized chunks: short (one PUT) and long (3 parts of 5 MiB + a tail).
    for (name, len) in [("short-stream.txt", 4096usize), ("long-stream.bin", 16 * 1024 * 1024 + 5)] {
        let data = pattern(len, 9);
        let chunks: Vec<Result<Bytes, std::io::Error>> =
            data.chunks(777_777).map(|c| Ok(Bytes::copy_from_slice(c))).collect();
        let up = storage
            .upload_stream(name, futures::stream::iter(chunks), "application/octet-stream")
            .await
            .unwrap();
        assert_eq!(up.size, len as u64, "{name}");
        assert!(http_get(&up.url).await.bytes().await.unwrap() == data, "{name} round trip");
    }

    // An AsyncRead (here a file) through the same path.
    let path = dir.path().join("large.bin");
    let up = storage
        .upload_reader("reader.bin", tokio::fs::File::open(&path).await.unwrap(), "x/y")
        .await
        .unwrap();
    assert_eq!(up.size, 13 * 1024 * 1024 + 17);
    assert_eq!(http_get(&up.url).await.bytes().await.unwrap().len() as u64, up.size);
}

#[tokio::test]
async fn a_failing_stream_aborts_the_upload_with_a_clear_error() {
    let Some(s3) = TestS3::start() else { return };
    let opts = TransferOptions::default().with_part_size(5 * 1024 * 1024);
    let storage = s3.new_bucket("abort").await.with_transfer_options(opts);
    let chunks: Vec<Result<Bytes, std::io::Error>> =
        vec![Ok(Bytes::from(vec![1u8; 6 * 1024 * 1024])), Err(std::io::Error::other("encoder crashed"))];
    let err = storage.upload_stream("broken.bin", futures::stream::iter(chunks), "x/y").await.unwrap_err();
    assert!(err.to_string().contains("encoder crashed"), "{err}");
    let head = storage.client().head_object().bucket(storage.bucket()).key("broken.bin").send().await;
    assert!(head.is_err(), "no object is left behind");
}

#[tokio::test]
async fn uploader_uses_storage_when_configured() {
    let Some(s3) = TestS3::start() else { return };
    let storage = s3.new_bucket("uploader").await.for_job("job-u").unwrap();
    let up = Uploader::new(Some(storage)).upload_bytes("x.json", "{}", "application/json").await.unwrap();
    assert!(!up.inline && up.key.as_deref() == Some("job-u/x.json"));
    assert_eq!(http_get(&up.url).await.text().await.unwrap(), "{}");
}

#[tokio::test]
async fn wrong_credentials_fail_clearly_without_the_secret() {
    let Some(s3) = TestS3::start() else { return };
    let good = s3.new_bucket("creds").await;
    let secret = "WRONG-secret-value-0123456789";
    let access = "WRONGaccessKEYid";
    for config in [
        StorageConfig::new(&s3.endpoint, s3.access_key.as_str(), secret, good.bucket()),
        StorageConfig::new(&s3.endpoint, access, secret, good.bucket()),
    ] {
        let storage = Storage::new(&config).unwrap().for_job("job-w").unwrap();
        let err = storage.upload_bytes("out.txt", "data", "text/plain").await.unwrap_err();
        let text = err.to_string();
        let debug = format!("{err:?} {storage:?}");
        eprintln!("wrong credentials: {text}");
        assert!(matches!(err, StorageError::Request { operation: "PutObject", .. }), "{text}");
        assert!(text.contains("check the access key id and secret key"), "{text}");
        assert!(text.contains(good.bucket()) && text.contains("job-w/out.txt"), "{text}");
        for leaked in [secret, access, s3.secret_key.as_str()] {
            assert!(!text.contains(leaked) && !debug.contains(leaked), "secret leaked: {text} / {debug}");
        }
    }
}

#[tokio::test]
async fn missing_bucket_and_dead_server_fail_clearly() {
    let Some(s3) = TestS3::start() else { return };
    let missing = Storage::new(&s3.config(&unique_bucket("missing"))).unwrap();
    let err = missing.upload_bytes("a.txt", "x", "text/plain").await.unwrap_err().to_string();
    eprintln!("missing bucket: {err}");
    assert!(err.contains("NoSuchBucket"), "{err}");

    // A port nobody listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let dead = StorageConfig::new(format!("http://127.0.0.1:{port}"), "AKIDDEAD", "SECRETDEAD", "b");
    let err = Storage::new(&dead).unwrap().upload_bytes("a.txt", "x", "text/plain").await.unwrap_err();
    let text = err.to_string();
    eprintln!("dead server: {text}");
    assert!(text.contains("could not reach the S3 endpoint"), "{text}");
    assert!(!text.contains("SECRETDEAD") && !text.contains("AKIDDEAD"), "{text}");

    let err = Storage::new(&StorageConfig::new("not a url", "k", "s", "b")).unwrap_err();
    assert!(matches!(err, StorageError::InvalidConfig(_)), "{err}");
}

#[tokio::test]
async fn object_names_cannot_escape_the_job_prefix() {
    let Some(s3) = TestS3::start() else { return };
    let storage = Storage::new(&s3.config("unused")).unwrap().for_job("job-n").unwrap();
    for bad in ["../other-job/x", "/abs", "a/../../b", ""] {
        let err = storage.upload_bytes(bad, "x", "text/plain").await.unwrap_err();
        assert!(matches!(err, StorageError::InvalidName { .. }), "{bad:?}: {err}");
    }
    assert!(storage.for_job("../x").is_err());
}

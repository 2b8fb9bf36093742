//! The S3 snippet of docs/runpod-worker.md ("Files in S3"), run as a worker against a real runpod-local
//! endpoint and a real S3 server (SeaweedFS, started by `scripts/test.d/30-s3.sh`): its inputs are
//! `s3://` URLs, its outputs presigned URLs fetched with a plain GET. That page must hold this
//! code verbatim, so the two cannot drift apart.

use runpod_local::LocalEndpoint;
use runpod_s3::test_support::TestS3;
use runpod_worker::{Config, Worker};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

// README-BEGIN
use runpod_worker::runpod_s3::{Bytes, Uploaded};
use runpod_worker::{handler_fn, Job, JobContext};

#[derive(serde::Deserialize)]
struct Input {
    files: Vec<String>, // s3://bucket/key (read with the job's keys) or http(s) URLs
}
#[derive(serde::Serialize)]
struct Output {
    counts: Uploaded, // {"url", "bucket", "key", "size", "contentType", "inline"}
    numbers: Uploaded,
}

type Error = Box<dyn std::error::Error + Send + Sync>;

async fn count_words(job: Job<Input>, ctx: JobContext) -> Result<Output, Error> {
    // Into a temporary directory, deleted when `inputs` is dropped.
    let inputs = ctx.download(&job.input.files).await?;
    let mut counts = String::new();
    for file in inputs.files() {
        let text = tokio::fs::read_to_string(file).await?;
        counts += &format!("{}\n", text.split_whitespace().count());
    }
    let path = inputs.dir().join("counts.txt");
    tokio::fs::write(&path, counts).await?;
    // As `{job_id}/counts.txt` (multipart when large); the content type from the name.
    let counts = ctx.upload_file("counts.txt", &path, None).await?;
    // `ctx.s3()` is the job's bucket itself: here, a stream uploaded chunk by chunk.
    let chunks = futures::stream::iter((1..=3).map(|i| Ok(Bytes::from(format!("{i}\n")))));
    let numbers = ctx.s3().await?.upload_stream("numbers.txt", chunks, "text/plain").await?;
    Ok(Output { counts, numbers })
}
// README-END

const KEY: &str = "readme-key";

async fn wait_final(http: &reqwest::Client, api: &str, id: &str) -> Value {
    let until = Instant::now() + Duration::from_secs(60);
    loop {
        let status: Value = http
            .get(format!("{api}/status/{id}"))
            .bearer_auth(KEY)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if !matches!(status["status"].as_str(), Some("IN_QUEUE" | "IN_PROGRESS")) {
            return status;
        }
        assert!(Instant::now() < until, "job {id} did not end in 60 s: {status}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readme_s3_snippet_reads_s3_inputs_and_returns_presigned_urls() {
    let Some(s3) = TestS3::start() else { return };
    let storage = s3.new_bucket("readme").await;
    storage.upload_bytes("inputs/a.txt", "one two three", "text/plain").await.unwrap();
    storage.upload_bytes("inputs/b.txt", "four five", "text/plain").await.unwrap();

    let ep = LocalEndpoint::builder().api_key(KEY).bind("127.0.0.1:0").await.unwrap();
    let config = Config::from_vars(ep.worker_env("w1")).unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let worker = Worker::new(handler_fn(count_words)).config(config).shutdown_on(async {
        let _ = stopped.await;
    });
    let worker = tokio::spawn(worker.run());

    let http = reqwest::Client::new();
    let api = ep.endpoint_url();
    let bucket = storage.bucket();
    let request = json!({
        "input": {"files": [format!("s3://{bucket}/inputs/a.txt"), format!("s3://{bucket}/inputs/b.txt")]},
        "s3Config": {"accessId": s3.access_key, "accessSecret": s3.secret_key, "bucketName": bucket, "endpointUrl": s3.endpoint},
    });
    let run: Value = http
        .post(format!("{api}/run"))
        .bearer_auth(KEY)
        .json(&request)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = run["id"].as_str().unwrap().to_owned();
    let status = wait_final(&http, &api, &id).await;
    assert_eq!(status["status"], "COMPLETED", "{status}");

    let counts = &status["output"]["counts"];
    assert_eq!(counts["key"], format!("{id}/counts.txt"));
    assert_eq!(counts["bucket"], bucket);
    assert_eq!(counts["contentType"], "text/plain; charset=utf-8"); // from the name
    assert_eq!(counts["inline"], false);
    let numbers = &status["output"]["numbers"];
    assert_eq!(numbers["key"], format!("{id}/numbers.txt"));

    // Plain GETs of the presigned URLs return what the handler wrote.
    for (out, body) in [(counts, "3\n2\n"), (numbers, "1\n2\n3\n")] {
        let url = out["url"].as_str().unwrap();
        let resp = reqwest::get(url).await.unwrap();
        assert_eq!(resp.status(), 200, "{url}");
        assert_eq!(resp.text().await.unwrap(), body);
        // What docs/runpod-worker.md says: the access key id is in the URL (X-Amz-Credential), the secret is not.
        let parsed = reqwest::Url::parse(url).unwrap();
        let credential =
            parsed.query_pairs().find(|(k, _)| k == "X-Amz-Credential").map(|(_, v)| v.into_owned()).unwrap();
        assert!(credential.starts_with(&format!("{}/", s3.access_key)), "{credential}");
        assert!(!url.contains(&s3.secret_key), "the secret key is in a presigned URL");
    }
    assert!(!status.to_string().contains(&s3.secret_key), "the secret key is in the status answer");

    let _ = stop.send(());
    tokio::time::timeout(Duration::from_secs(60), worker).await.unwrap().unwrap().unwrap();
    ep.shutdown().await;
}

#[test]
fn readme_holds_this_snippet() {
    let me = include_str!("readme_s3.rs");
    let start = me.find("// README-BEGIN\n").unwrap() + "// README-BEGIN\n".len();
    let end = me.find("// README-END").unwrap();
    let snippet = &me[start..end];
    let readme = include_str!("../../../../docs/runpod-worker.md");
    assert!(
        readme.contains(snippet),
        "docs/runpod-worker.md's S3 snippet differs from tests/it/readme_s3.rs:\n{snippet}"
    );
}

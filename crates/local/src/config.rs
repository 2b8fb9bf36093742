//! Settings of a local endpoint and the builder that sets them.

use crate::webhook::WebhookTargets;
use runpod_protocol::limits;
use std::path::PathBuf;
use std::time::Duration;

/// Requests allowed per window for one group of routes (`0` requests = no limit).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
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
#[non_exhaustive]
#[must_use]
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

    /// Sets the limit of `POST /run` (`None`: no limit).
    pub fn with_run(mut self, limit: impl Into<Option<RateLimit>>) -> Self {
        self.run = limit.into();
        self
    }

    /// Sets the limit of `POST /runsync` (`None`: no limit).
    pub fn with_runsync(mut self, limit: impl Into<Option<RateLimit>>) -> Self {
        self.runsync = limit.into();
        self
    }

    /// Sets the limit of `GET /status` and `GET /stream` (`None`: no limit).
    pub fn with_status(mut self, limit: impl Into<Option<RateLimit>>) -> Self {
        self.status = limit.into();
        self
    }

    /// Sets the limit of `POST /cancel` (`None`: no limit).
    pub fn with_cancel(mut self, limit: impl Into<Option<RateLimit>>) -> Self {
        self.cancel = limit.into();
        self
    }

    /// Sets the limit of `POST /purge-queue` (`None`: no limit).
    pub fn with_purge(mut self, limit: impl Into<Option<RateLimit>>) -> Self {
        self.purge = limit.into();
        self
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
    pub header_timeout: Duration,
    pub body_timeout: Duration,
    /// `None`: derived from the open-files limit (see `connections::default_max`).
    pub max_connections: Option<usize>,
    pub max_retained_bytes: usize,
    pub webhook_concurrency: usize,
    pub webhook_timeout: Duration,
    pub webhook_targets: WebhookTargets,
    pub data_dir: Option<PathBuf>,
    pub fsync: bool,
    pub shutdown_grace: Duration,
    /// Host names served besides IP addresses and loopback names (`request_guard`).
    pub allowed_hosts: Vec<String>,
    /// The worker's schema: inputs are checked against it, `/openapi.json` and the console's
    /// form show it.
    pub schema: Option<std::sync::Arc<runpod_protocol::WorkerSchema>>,
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
            header_timeout: Duration::from_secs(30),
            body_timeout: Duration::from_secs(60),
            max_connections: None,
            max_retained_bytes: 512 << 20,
            webhook_concurrency: 32,
            webhook_timeout: Duration::from_secs(10),
            webhook_targets: WebhookTargets::default(),
            data_dir: None,
            fsync: false,
            shutdown_grace: Duration::from_secs(10),
            allowed_hosts: Vec::new(),
            schema: None,
        }
    }
}

/// Configures and starts a [`crate::LocalEndpoint`]. Every setting has the platform's default;
/// the time-based ones can be shortened so that tests of timeouts run in milliseconds.
#[derive(Debug, Clone, Default)]
#[must_use]
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

    /// How long a connection may take to send a request's headers, and stay idle between
    /// requests, before it is closed (default 30 s). A request in progress (a long poll included)
    /// is not idle.
    pub fn header_timeout(mut self, d: Duration) -> Self {
        self.config.header_timeout = d;
        self
    }

    /// How long a request body may take to arrive (default 60 s); later is answered `408`.
    pub fn body_timeout(mut self, d: Duration) -> Self {
        self.config.body_timeout = d;
        self
    }

    /// Connections served at once (default: the open-files limit less 128, between 64 and
    /// 16384). At the cap a new connection closes the oldest idle one, or is answered `503`
    /// when none is idle.
    pub fn max_connections(mut self, n: usize) -> Self {
        self.config.max_connections = Some(n.max(1));
        self
    }

    /// Bytes finished jobs may hold in all: outputs, unread stream chunks and the inputs of jobs
    /// that can still be retried (default 512 MiB). When a result arrives that would pass it,
    /// the results closest to their expiry are dropped first (not the new one), with a log line.
    pub fn max_retained_bytes(mut self, n: usize) -> Self {
        self.config.max_retained_bytes = n;
        self
    }

    /// Webhook deliveries in flight at once (default 32); the others wait their turn.
    pub fn webhook_concurrency(mut self, n: usize) -> Self {
        self.config.webhook_concurrency = n.max(1);
        self
    }

    /// How long one webhook attempt may take, connecting included (default 10 s).
    pub fn webhook_timeout(mut self, d: Duration) -> Self {
        self.config.webhook_timeout = d;
        self
    }

    /// Which addresses webhooks may be sent to (default: public, private and loopback; not
    /// link-local, so never a cloud metadata service).
    pub fn webhook_targets(mut self, targets: WebhookTargets) -> Self {
        self.config.webhook_targets = targets;
        self
    }

    /// Keeps jobs and pending webhooks in `dir` (created if missing; one file, `jobs.redb`), so
    /// that they survive a restart, a SIGKILL included. Unset (the default): everything is in
    /// memory and gone when the process ends. A directory that cannot be used makes
    /// [`LocalEndpointBuilder::bind`] fail with a [`crate::DataDirError`] inside its error.
    /// (Feature `persistence`, on by default.)
    #[cfg(feature = "persistence")]
    pub fn data_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.config.data_dir = Some(dir.into());
        self
    }

    /// With a data directory, also `fsync` every commit, so that jobs survive a power loss or
    /// an OS crash as well, at the cost of a disk flush per commit (default off: a commit
    /// survives the process being killed, not the machine going down).
    #[cfg(feature = "persistence")]
    pub fn fsync(mut self, on: bool) -> Self {
        self.config.fsync = on;
        self
    }

    /// How long [`crate::LocalEndpoint::shutdown`] waits for requests in flight and pending
    /// webhooks (default 10 s).
    pub fn shutdown_grace(mut self, d: Duration) -> Self {
        self.config.shutdown_grace = d;
        self
    }

    /// Also serves requests whose `Host` is `name` (a name, not an address: IP addresses,
    /// `localhost` and `*.localhost` are always served); `.example.com` allows its subdomains,
    /// `*` any name and any `Origin` (the guard off). Others get `403`: a DNS-rebinding guard
    /// (docs/client-api.md, "Requests from web pages").
    pub fn allowed_host(mut self, name: impl Into<String>) -> Self {
        self.config.allowed_hosts.push(name.into());
        self
    }

    /// The worker's schema (what `<worker> --schema` prints): `/run`, `/runsync` and the
    /// console answer `400` naming the field for an input that breaks it (where the platform
    /// would queue the job and the worker fail it with the same words), `/openapi.json` puts it
    /// in the request and response bodies, and the console builds a form from it.
    pub fn schema(mut self, schema: runpod_protocol::WorkerSchema) -> Self {
        self.config.schema = Some(std::sync::Arc::new(schema));
        self
    }

    /// The settings, for [`LocalEndpointBuilder::bind`] (in the crate root, beside what it starts).
    pub(crate) fn into_config(self) -> Config {
        self.config
    }
}

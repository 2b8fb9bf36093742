//! Limits and defaults the platform documents (docs/limits.md gives the source of each).

/// Default `policy.executionTimeout`: 10 minutes, in ms.
pub const DEFAULT_EXECUTION_TIMEOUT_MS: u64 = 600_000;
/// `policy.executionTimeout` must be greater than this, in ms.
pub const MIN_EXECUTION_TIMEOUT_MS: u64 = 5_000;
/// Default `policy.ttl` (time a job may wait in the queue): 24 hours, in ms.
pub const DEFAULT_TTL_MS: u64 = 86_400_000;
/// Smallest accepted `policy.ttl`, in ms.
pub const MIN_TTL_MS: u64 = 10_000;
/// Largest accepted `policy.ttl`: one week, in ms.
pub const MAX_TTL_MS: u64 = 604_800_000;

/// Largest `/run` request body, in bytes (10 MB).
pub const MAX_RUN_PAYLOAD_BYTES: usize = 10 * 1024 * 1024;
/// Largest `/runsync` request body, in bytes (20 MB).
pub const MAX_RUNSYNC_PAYLOAD_BYTES: usize = 20 * 1024 * 1024;
/// Largest streamed chunk a worker may post, in bytes (1 MB).
pub const MAX_STREAM_CHUNK_BYTES: usize = 1024 * 1024;

/// How long `/runsync` waits by default before answering with the current status, in ms.
pub const DEFAULT_RUNSYNC_WAIT_MS: u64 = 90_000;
/// Smallest `?wait=` accepted by `/runsync`, in ms.
pub const MIN_RUNSYNC_WAIT_MS: u64 = 1_000;
/// Largest `?wait=` accepted by `/runsync`, in ms.
pub const MAX_RUNSYNC_WAIT_MS: u64 = 300_000;

/// How long a finished `/run` job stays readable, in ms (30 min).
pub const RUN_RESULT_RETENTION_MS: u64 = 30 * 60 * 1000;
/// How long a finished `/runsync` job stays readable, in ms (1 min).
pub const RUNSYNC_RESULT_RETENTION_MS: u64 = 60 * 1000;

/// Default heartbeat period of a worker (`RUNPOD_PING_INTERVAL`), in ms.
pub const DEFAULT_PING_INTERVAL_MS: u64 = 10_000;

/// Load-balancing endpoints: largest request and response body, in bytes (30 MB).
pub const MAX_LOAD_BALANCER_PAYLOAD_BYTES: usize = 30 * 1024 * 1024;
/// Load-balancing endpoints: longest time one request may be processed before the platform
/// cuts it with `524`, in ms (5.5 min).
pub const LOAD_BALANCER_PROCESSING_TIMEOUT_MS: u64 = 330_000;
/// Load-balancing endpoints: how long a request waits for a healthy worker before the platform
/// answers `400`, in ms (2 min).
pub const LOAD_BALANCER_NO_WORKER_TIMEOUT_MS: u64 = 120_000;
/// Load-balancing workers: the default application port (`PORT`).
pub const LOAD_BALANCER_DEFAULT_PORT: u16 = 80;
/// Load-balancing workers: the default health path (`HEALTH_CHECK_PATH`).
pub const LOAD_BALANCER_DEFAULT_HEALTH_PATH: &str = "/ping";

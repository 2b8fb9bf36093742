//! Webhook delivery: when a job ends, POST its `/status` JSON to the job's `webhook`.
//!
//! At most `webhook_concurrency` deliveries are in flight; the others wait for a slot (a
//! receiver that never answers holds a slot only until the webhook timeout). An attempt counts
//! as delivered on a 2xx answer only: a redirect is not followed (the platform asks for a 200;
//! following would turn the POST into a body-less GET), it is a failed attempt like any other
//! status, and every failed attempt is logged with its cause. With a data directory a delivery
//! stays pending there until it is delivered or given up, so a restart resumes it.

mod target;

pub use target::WebhookTargets;

use serde::{Deserialize, Serialize};
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// A webhook delivery not yet delivered or given up: what the data directory keeps of it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct PendingHook {
    pub url: String,
    pub body: runpod_protocol::StatusResponse,
    /// Attempts made so far.
    pub attempts: u32,
}

/// How deliveries are made.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    pub concurrency: usize,
    pub timeout: Duration,
    pub attempts: u32,
    pub retry_delay: Duration,
    pub targets: WebhookTargets,
    /// A delivery not done at shutdown is kept for the next start (a data directory).
    pub kept: bool,
}

/// Where a delivery's progress is recorded (the data directory, through the job service),
/// so that a restart resumes it. Deliveries under key 0 are not recorded.
pub(crate) trait Ledger: Send + Sync + 'static {
    /// An attempt of delivery `key` failed; `hook` counts it.
    fn attempted(&self, key: u64, hook: &PendingHook);
    /// Delivery `key` is over (delivered or given up).
    fn finished(&self, key: u64);
}

/// The deliveries of one endpoint: a cheap-to-clone handle.
#[derive(Clone)]
pub(crate) struct Webhooks(Arc<Inner>);

struct Inner {
    settings: Settings,
    slots: Semaphore,
    tracker: TaskTracker,
    /// The HTTP client, built on the first webhook: loading the CA bundle was most of the
    /// endpoint's start-up (callgrind), and most endpoints never send a webhook.
    client: OnceLock<Option<reqwest::Client>>,
    /// Cancelled when the endpoint shuts down: a delivery waiting for a retry tries once more.
    shutdown: CancellationToken,
    /// Cancelled once the grace period of a shutdown is over: deliveries still pending stop.
    stop: CancellationToken,
    ledger: OnceLock<Arc<dyn Ledger>>,
}

impl Webhooks {
    pub(crate) fn new(settings: Settings, shutdown: CancellationToken) -> Self {
        Webhooks(Arc::new(Inner {
            slots: Semaphore::new(settings.concurrency),
            settings,
            tracker: TaskTracker::new(),
            client: OnceLock::new(),
            shutdown,
            stop: CancellationToken::new(),
            ledger: OnceLock::new(),
        }))
    }

    /// Records deliveries' progress through `ledger` from now on (set once).
    pub(crate) fn set_ledger(&self, ledger: Arc<dyn Ledger>) {
        let _ = self.0.ledger.set(ledger);
    }

    /// The HTTP client (`None`, logged once, if it cannot be built).
    fn client(&self) -> Option<reqwest::Client> {
        let s = &self.0.settings;
        self.0
            .client
            .get_or_init(|| {
                let built = reqwest::Client::builder()
                    .timeout(s.timeout)
                    .connect_timeout(s.timeout)
                    .redirect(reqwest::redirect::Policy::none())
                    .no_proxy()
                    .dns_resolver(Arc::new(target::Guarded(s.targets)))
                    .build();
                match built {
                    Ok(c) => Some(c),
                    Err(e) => {
                        tracing::error!("cannot build the webhook HTTP client: {e}; webhooks are not sent");
                        None
                    }
                }
            })
            .clone()
    }

    /// Waits up to `grace` for the deliveries in progress, each given one more attempt at once
    /// if it waits for a retry (the shutdown token is cancelled by then); stops the rest.
    pub(crate) async fn finish(&self, grace: Duration) {
        self.0.tracker.close();
        if tokio::time::timeout(grace, self.0.tracker.wait()).await.is_err() {
            self.0.stop.cancel();
            self.0.tracker.wait().await;
        }
    }

    fn attempted(&self, key: u64, hook: &PendingHook) {
        if let (Some(l), true) = (self.0.ledger.get(), key != 0) {
            l.attempted(key, hook);
        }
    }

    /// The delivery is over (delivered or given up): no longer pending in the data directory.
    fn finished(&self, key: u64) {
        if let (Some(l), true) = (self.0.ledger.get(), key != 0) {
            l.finished(key);
        }
    }

    /// Delivers `hook` in the background (pending under `key` in the data directory, 0
    /// without one): up to `attempts` tries in all, `retry_delay` apart, until one is answered
    /// 2xx.
    pub(crate) fn send(&self, key: u64, mut hook: PendingHook) {
        let Some(http) = self.client() else { return };
        let hooks = self.clone();
        let attempts = self.0.settings.attempts;
        // Only the host is logged: a webhook URL may carry a token in its path or query.
        let host =
            url::Url::parse(&hook.url).ok().and_then(|u| u.host_str().map(str::to_owned)).unwrap_or_default();
        self.0.tracker.spawn(async move {
            let inner = &hooks.0;
            let job = hook.body.id.clone();
            loop {
                hook.attempts += 1;
                let attempt = hook.attempts;
                let outcome = tokio::select! {
                    o = hooks.deliver(&http, &hook) => o,
                    _ = inner.stop.cancelled() => return hooks.not_delivered(&job, &host),
                };
                match outcome {
                    Ok(()) => {
                        tracing::debug!(job = %job, host = %host, attempt, "webhook delivered");
                        return hooks.finished(key);
                    }
                    Err(cause) => {
                        tracing::warn!(job = %job, host = %host, attempt, "webhook attempt failed: {cause}")
                    }
                }
                if hook.attempts >= attempts {
                    tracing::warn!(job = %job, host = %host, "webhook given up after {attempts} attempts");
                    return hooks.finished(key);
                }
                if inner.shutdown.is_cancelled() {
                    // The one more attempt a shutdown allows was made.
                    return hooks.not_delivered(&job, &host);
                }
                hooks.attempted(key, &hook);
                tokio::select! {
                    _ = tokio::time::sleep(inner.settings.retry_delay) => {}
                    // Shutting down: try once more now rather than after the delay.
                    _ = inner.shutdown.cancelled() => {}
                }
            }
        });
    }

    /// One attempt: `Ok` on a 2xx answer, else what went wrong.
    async fn deliver(&self, http: &reqwest::Client, hook: &PendingHook) -> Result<(), String> {
        let _slot = self.0.slots.acquire().await.map_err(|_| "shutting down".to_string())?;
        let timeout = self.0.settings.timeout;
        match http.post(&hook.url).json(&hook.body).send().await {
            Ok(r) if r.status().is_success() => Ok(()),
            Ok(r) if r.status().is_redirection() => {
                Err(format!("answered {} (a redirect: not followed, not delivered)", r.status()))
            }
            Ok(r) => Err(format!("answered {}", r.status())),
            Err(e) if e.is_timeout() => Err(format!("timed out after {} ms", timeout.as_millis())),
            Err(e) if e.is_connect() => Err(format!("could not connect: {}", causes(&e))),
            Err(e) => Err(causes(&e)),
        }
    }

    /// Shutting down with the delivery not done: kept in the data directory for the next start,
    /// or lost without one.
    fn not_delivered(&self, job: &str, host: &str) {
        if self.0.settings.kept {
            tracing::warn!(job = %job, host = %host, "webhook not delivered before shutdown; kept for the next start");
        } else {
            tracing::warn!(job = %job, host = %host, "webhook not delivered before shutdown (no --data-dir: it is lost)");
        }
    }
}

/// What went wrong, from the outermost error to its root, without the URL (it may carry a
/// token).
fn causes(e: &reqwest::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut next: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(e);
    while let Some(s) = next {
        let text = s.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        next = s.source();
    }
    if parts.is_empty() {
        let text = e.to_string();
        parts.push(match e.url() {
            Some(u) => text.replace(u.as_str(), "<webhook>"),
            None => text,
        });
    }
    parts.join(": ")
}

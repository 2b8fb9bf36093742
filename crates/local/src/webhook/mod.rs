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

use crate::server::Shared;
use crate::store::journal::PendingHook;
use crate::store::Ended;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// The deliveries of one endpoint.
pub(crate) struct Webhooks {
    slots: Arc<Semaphore>,
    tracker: TaskTracker,
    /// The HTTP client, built on the first webhook: loading the CA bundle was most of the
    /// endpoint's start-up (callgrind), and most endpoints never send a webhook.
    client: std::sync::OnceLock<Option<reqwest::Client>>,
    /// Cancelled once the grace period of a shutdown is over: deliveries still pending stop.
    stop: CancellationToken,
}

impl Webhooks {
    pub(crate) fn new(concurrency: usize) -> Self {
        Webhooks {
            slots: Arc::new(Semaphore::new(concurrency)),
            tracker: TaskTracker::new(),
            client: std::sync::OnceLock::new(),
            stop: CancellationToken::new(),
        }
    }

    /// The HTTP client (`None`, logged once, if it cannot be built).
    fn client(&self, sh: &Shared) -> Option<reqwest::Client> {
        self.client
            .get_or_init(|| {
                let built = reqwest::Client::builder()
                    .timeout(sh.cfg.webhook_timeout)
                    .connect_timeout(sh.cfg.webhook_timeout)
                    .redirect(reqwest::redirect::Policy::none())
                    .no_proxy()
                    .dns_resolver(Arc::new(target::Guarded(sh.cfg.webhook_targets)))
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
        self.tracker.close();
        if tokio::time::timeout(grace, self.tracker.wait()).await.is_err() {
            self.stop.cancel();
            self.tracker.wait().await;
        }
    }
}

/// Sends `ended`'s webhook in the background, if it has one.
pub(crate) fn dispatch(sh: &Arc<Shared>, ended: Ended) {
    let Some(url) = ended.webhook else { return };
    let hook = PendingHook { url, body: ended.status, attempts: 0 };
    resume(sh, ended.hook_key, hook);
}

/// Delivers `hook` (pending under `key` in the data directory, 0 without one): up to
/// `webhook_attempts` tries in all, `webhook_retry_delay` apart, until one is answered 2xx.
pub(crate) fn resume(sh: &Arc<Shared>, key: u64, mut hook: PendingHook) {
    let Some(http) = sh.webhooks.client(sh) else { return };
    let sh = sh.clone();
    let attempts = sh.cfg.webhook_attempts;
    // Only the host is logged: a webhook URL may carry a token in its path or query.
    let host =
        url::Url::parse(&hook.url).ok().and_then(|u| u.host_str().map(str::to_owned)).unwrap_or_default();
    let tracker = sh.webhooks.tracker.clone();
    tracker.spawn(async move {
        let job = hook.body.id.clone();
        loop {
            hook.attempts += 1;
            let attempt = hook.attempts;
            let outcome = tokio::select! {
                o = deliver(&sh, &http, &hook) => o,
                _ = sh.webhooks.stop.cancelled() => return not_delivered(&sh, &job, &host),
            };
            match outcome {
                Ok(()) => {
                    tracing::debug!(job = %job, host = %host, attempt, "webhook delivered");
                    return finished(&sh, key);
                }
                Err(cause) => {
                    tracing::warn!(job = %job, host = %host, attempt, "webhook attempt failed: {cause}")
                }
            }
            if hook.attempts >= attempts {
                tracing::warn!(job = %job, host = %host, "webhook given up after {attempts} attempts");
                return finished(&sh, key);
            }
            if sh.shutdown.is_cancelled() {
                // The one more attempt a shutdown allows was made.
                return not_delivered(&sh, &job, &host);
            }
            sh.lock().journal.hook_attempted(key, &hook);
            sh.kick_writer();
            tokio::select! {
                _ = tokio::time::sleep(sh.cfg.webhook_retry_delay) => {}
                // Shutting down: try once more now rather than after the delay.
                _ = sh.shutdown.cancelled() => {}
            }
        }
    });
}

/// One attempt: `Ok` on a 2xx answer, else what went wrong.
async fn deliver(sh: &Shared, http: &reqwest::Client, hook: &PendingHook) -> Result<(), String> {
    let _slot = sh.webhooks.slots.acquire().await.map_err(|_| "shutting down".to_string())?;
    let timeout = sh.cfg.webhook_timeout;
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

/// The delivery is over (delivered or given up): no longer pending in the data directory.
fn finished(sh: &Shared, key: u64) {
    sh.lock().journal.hook_finished(key);
    sh.kick_writer();
}

/// Shutting down with the delivery not done: kept in the data directory for the next start,
/// or lost without one.
fn not_delivered(sh: &Shared, job: &str, host: &str) {
    if sh.cfg.data_dir.is_some() {
        tracing::warn!(job = %job, host = %host, "webhook not delivered before shutdown; kept for the next start");
    } else {
        tracing::warn!(job = %job, host = %host, "webhook not delivered before shutdown (no --data-dir: it is lost)");
    }
}

//! Webhook delivery: when a job ends, POST its `/status` JSON to the job's `webhook`.

use crate::server::Shared;
use crate::store::Ended;

/// Sends `ended`'s webhook in the background, if it has one: up to `webhook_attempts` tries,
/// `webhook_retry_delay` apart, until one is answered with a 2xx status.
pub(crate) fn dispatch(sh: &Shared, ended: Ended) {
    let Some(url) = ended.webhook else { return };
    let Some(http) = sh.http() else { return };
    let attempts = sh.cfg.webhook_attempts;
    let delay = sh.cfg.webhook_retry_delay;
    let shutdown = sh.shutdown.clone();
    let body = ended.status;
    // Only the host is logged: a webhook URL may carry a token in its path or query.
    let host =
        reqwest::Url::parse(&url).ok().and_then(|u| u.host_str().map(str::to_owned)).unwrap_or_default();
    tokio::spawn(async move {
        for attempt in 1..=attempts {
            match http.post(&url).json(&body).send().await {
                Ok(r) if r.status().is_success() => {
                    tracing::debug!(job = %body.id, host = %host, attempt, "webhook delivered");
                    return;
                }
                Ok(r) => {
                    tracing::warn!(job = %body.id, host = %host, attempt, status = %r.status(), "webhook refused")
                }
                Err(e) => {
                    tracing::warn!(job = %body.id, host = %host, attempt, error = %e.without_url(), "webhook failed")
                }
            }
            if attempt < attempts {
                tokio::select! {
                    _ = tokio::time::sleep(delay) => {}
                    _ = shutdown.cancelled() => return,
                }
            }
        }
        tracing::warn!(job = %body.id, host = %host, "webhook given up after {attempts} attempts");
    });
}

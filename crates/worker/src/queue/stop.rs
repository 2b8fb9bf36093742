//! The stop channel: a long poll on `job-stop` that names jobs to abandon (cancelled by the
//! client, or timed out by the platform). Those jobs are cancelled and send no result.

use crate::context::CancelReason;
use crate::queue::backoff::Backoff;
use crate::queue::worker_api::Api;
use crate::JobContext;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// Jobs whose handler runs now, by id, so a stop signal can cancel them. A job enters when
/// its handler starts and leaves when the handler ends (its result may still be on its way:
/// see [`HeldJobs`](crate::queue::held_jobs::HeldJobs) for that longer lifetime).
#[derive(Clone, Default)]
pub(crate) struct RunningHandlers(Arc<Mutex<HashMap<String, JobContext>>>);

impl RunningHandlers {
    pub(crate) fn insert(&self, ctx: &JobContext) {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).insert(ctx.job_id().to_owned(), ctx.clone());
    }

    pub(crate) fn remove(&self, id: &str) {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).remove(id);
    }

    /// Cancels the job `id` if it runs here; true when it did.
    pub(crate) fn stop(&self, id: &str, reason: CancelReason) -> bool {
        let ctx = self.0.lock().unwrap_or_else(PoisonError::into_inner).get(id).cloned();
        match ctx {
            Some(ctx) => {
                ctx.cancel(reason);
                true
            }
            None => false,
        }
    }
}

/// Polls `url` until `end` fires.
pub(crate) async fn stop_loop(api: Api, url: String, running: RunningHandlers, end: CancellationToken) {
    let mut backoff = Backoff::new(Duration::from_millis(250), Duration::from_secs(30));
    loop {
        let started = Instant::now();
        let res = tokio::select! {
            r = api.stop_signals(&url) => r,
            _ = end.cancelled() => return,
        };
        let delay = match res {
            Ok(Some(ids)) => {
                for id in &ids {
                    if running.stop(id, CancelReason::Stopped) {
                        tracing::info!(job_id = %id, "stop signal: cancelling the job");
                    } else {
                        tracing::debug!(job_id = %id, "stop signal for a job not running here");
                    }
                }
                // A server that answers at once instead of holding the poll must not make us spin.
                if ids.is_empty() && started.elapsed() < Duration::from_millis(500) {
                    Some(backoff.next_delay())
                } else {
                    backoff.reset();
                    None
                }
            }
            Ok(None) => Some(Duration::from_secs(5)),
            Err(e) if matches!(e.status, Some(404 | 405 | 501)) => {
                tracing::debug!("the endpoint has no stop channel ({e}); asking again later");
                Some(Duration::from_secs(30))
            }
            Err(e) => {
                let d = backoff.next_delay();
                tracing::warn!("stop channel: {e}; retrying in {} ms", d.as_millis());
                Some(d)
            }
        };
        if let Some(d) = delay {
            tokio::select! {
                _ = tokio::time::sleep(d) => {}
                _ = end.cancelled() => return,
            }
        }
    }
}

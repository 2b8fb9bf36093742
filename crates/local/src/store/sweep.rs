//! The time-based rules: execution timeouts, queue expiry, lost workers, result retention.

use super::entry::{ms, reset_for_queue, Ended};
use super::Store;
use crate::config::Config;
use runpod_protocol::JobStatus;
use tokio::time::Instant;

impl Store {
    /// re-queued), result retention. Returns the jobs that ended and whether any was re-queued.
    pub(crate) fn sweep(&mut self, cfg: &Config, now: Instant) -> (Vec<Ended>, bool) {
        let mut ended = Vec::new();
        let mut stops = Vec::new();
        let mut expired = Vec::new();
        for e in self.jobs.values_mut() {
            let running_too_long = e.started_at.is_some_and(|s| now - s >= e.execution_timeout);
            match e.status {
                JobStatus::InProgress if running_too_long => {
                    let msg = format!("job timed out after {} ms of execution", ms(e.execution_timeout));
                    ended.push(Self::end(e, &mut self.counters, JobStatus::TimedOut, Some(msg), now));
                    if let Some(w) = &e.worker_id {
                        stops.push((w.clone(), e.id.clone()));
                    }
                }
                JobStatus::InQueue if now - e.queued_at >= e.ttl => {
                    let msg = format!("job expired in the queue after {} ms (ttl)", ms(e.ttl));
                    ended.push(Self::end(e, &mut self.counters, JobStatus::TimedOut, Some(msg), now));
                    expired.push(e.id.clone());
                }
                _ => {}
            }
        }
        for (w, id) in stops {
            tracing::warn!(worker = %w, job = %id, "job timed out; telling its worker to stop");
            self.announce_stop(&w, &id);
        }
        if !expired.is_empty() {
            self.queue.retain(|id| !expired.contains(id));
            self.low_queue.retain(|id| !expired.contains(id));
        }
        let requeued = self.drop_lost_jobs(cfg, now);
        self.jobs.retain(|_, e| e.finished_at.is_none_or(|f| now - f < e.retention));
        (ended, requeued)
    }

    /// Re-queues, at the front (at-least-once), the running jobs of workers silent for longer
    /// than the grace period (those workers are forgotten), and the running jobs that a worker
    /// reporting its jobs in its pings has left out of them for that long (the worker is told to
    /// stop them). Returns true when a job was re-queued.
    fn drop_lost_jobs(&mut self, cfg: &Config, now: Instant) -> bool {
        let lost: Vec<String> = self
            .workers
            .iter()
            .filter(|(_, w)| w.open_polls == 0 && now - w.last_seen > cfg.ping_grace)
            .map(|(id, _)| id.clone())
            .collect();
        for w in &lost {
            self.workers.remove(w);
        }
        let mut ids: Vec<(Instant, String, String, &'static str)> = Vec::new();
        for e in self.jobs.values().filter(|e| e.status == JobStatus::InProgress) {
            let Some(w) = e.worker_id.as_deref() else { continue };
            let reason = if lost.iter().any(|l| l == w) {
                "worker lost (no request within the ping grace); job re-queued"
            } else if self.workers.get(w).is_some_and(|wk| wk.reports_jobs)
                && now - e.last_listed > cfg.ping_grace
            {
                "job missing from its worker's pings for the ping grace; job re-queued"
            } else {
                continue;
            };
            ids.push((e.submitted_at, e.id.clone(), w.to_owned(), reason));
        }
        // Re-queued at the front, oldest first.
        ids.sort();
        let requeued = !ids.is_empty();
        for (_, id, w, reason) in ids.into_iter().rev() {
            let Some(e) = self.jobs.get_mut(&id) else { continue };
            tracing::warn!(worker = %w, job = %id, "{reason}");
            reset_for_queue(e, now);
            e.changed.notify_waiters();
            let low = e.low_priority();
            self.counters.retried += 1;
            if low {
                self.low_queue.push_front(id.clone())
            } else {
                self.queue.push_front(id.clone())
            }
            self.announce_stop(&w, &id);
        }
        requeued
    }
}

//! The time-based rules: execution timeouts, queue expiry, lost workers, result retention.

use super::entry::{ms, reset_for_queue, Ended};
use super::Store;
use crate::config::Config;
use runpod_protocol::JobStatus;
use std::cmp::Reverse;
use std::time::Duration;
use tokio::time::Instant;

/// The longest a sweep goes without looking at the active jobs (a safety net; the deadline
/// hint is exact).
const RESCAN_WHEN_IDLE: Duration = Duration::from_secs(60);

impl Store {
    /// Applies every time-based rule: execution timeouts, queue expiry, lost workers (their jobs
    /// re-queued), result retention. Returns the jobs that ended and whether any was re-queued.
    pub(crate) fn sweep(&mut self, cfg: &Config, now: Instant) -> (Vec<Ended>, bool) {
        let mut ended = Vec::new();
        let mut stops = Vec::new();
        let mut expired = std::collections::HashSet::new();
        // The active jobs are looked at only once one of them may be due (`Index::next_due`):
        // looking at each of them every 100 ms took 8 % of the endpoint's CPU with 60 k jobs
        // queued (`perf`, runpod-bench with --jobs 1000000).
        let todo: Vec<String> = if self.index.next_due.is_none_or(|d| now >= d) {
            let mut todo = Vec::new();
            let mut next = now + RESCAN_WHEN_IDLE;
            for id in &self.index.active {
                match self.jobs.get(id.as_str()).map(|e| e.deadline()) {
                    Some(Some(at)) if at > now => next = next.min(at),
                    Some(None) => {}
                    _ => todo.push(id.clone()),
                }
            }
            self.index.next_due = Some(next);
            todo
        } else {
            Vec::new()
        };
        // Every job in `todo` is due (its deadline was checked above, on this same state).
        for id in &todo {
            let Some(e) = self.jobs.get_mut(id) else {
                self.index.active.remove(id);
                continue;
            };
            let msg = match e.status {
                JobStatus::InProgress => {
                    format!("job timed out after {} ms of execution", ms(e.execution_timeout))
                }
                JobStatus::InQueue => format!("job expired in the queue after {} ms (ttl)", ms(e.ttl)),
                _ => continue,
            };
            let queued = e.status == JobStatus::InQueue;
            let end = Self::end(e, &mut self.counters, &mut self.index, JobStatus::TimedOut, Some(msg), now);
            ended.push(end);
            if queued {
                expired.insert(e.id.clone());
            } else if let Some(w) = &e.worker_id {
                stops.push((w.clone(), e.id.clone()));
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
        self.drop_expired_results(now);
        (ended, requeued)
    }

    /// Forgets the ended jobs whose retention has passed.
    fn drop_expired_results(&mut self, now: Instant) {
        while let Some(Reverse((at, _))) = self.index.expiry.peek() {
            if *at > now {
                break;
            }
            let Some(Reverse((_, id))) = self.index.expiry.pop() else { break };
            let gone =
                self.jobs.get(&id).is_some_and(|e| e.finished_at.is_some_and(|f| now - f >= e.retention));
            if gone {
                self.jobs.remove(&id);
            }
        }
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
        if lost.is_empty() && !self.workers.values().any(|wk| wk.reports_jobs) {
            return false; // no job can be lost: leave the active jobs alone
        }
        let mut ids: Vec<(Instant, String, String, &'static str)> = Vec::new();
        let running = self.index.active.iter().filter_map(|id| self.jobs.get(id));
        for e in running.filter(|e| e.status == JobStatus::InProgress) {
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
            self.index.due_at(e.deadline());
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

#[cfg(test)]
mod tests {
    use super::super::Origin;
    use super::*;
    use runpod_protocol::{JobDone, JobRequest};
    use std::time::Duration;

    fn fail(store: &mut Store, id: &str, now: Instant) {
        assert_eq!(store.take("w", 1, now).len(), 1);
        let done = JobDone { error: Some("boom".into()), ..Default::default() };
        store.done("w", id, done, now).unwrap();
    }

    #[test]
    fn retention_follows_retries_and_ttl_changes() {
        let cfg = Config { run_retention: Duration::from_secs(10), ..Config::default() };
        let mut s = Store::default();
        let t0 = Instant::now();
        let id = s.submit(&cfg, JobRequest::new(1.into()), Origin::Run, t0).unwrap();
        fail(&mut s, &id, t0);
        // Retried at 5 s: the expiry the first end scheduled (10 s) must not drop it.
        s.retry(&cfg, &id, t0 + Duration::from_secs(5)).unwrap();
        s.sweep(&cfg, t0 + Duration::from_secs(11));
        assert_eq!(s.get(&id).unwrap().status(), JobStatus::InQueue);
        // Ends again at 12 s: kept until 22 s.
        fail(&mut s, &id, t0 + Duration::from_secs(12));
        s.sweep(&cfg, t0 + Duration::from_secs(21));
        assert!(s.get(&id).is_ok());
        s.sweep(&cfg, t0 + Duration::from_secs(22));
        assert!(s.get(&id).is_err(), "dropped once its retention passed");

        // A shorter `/status?ttl=` takes effect; a longer one keeps the job past the old expiry.
        let a = s.submit(&cfg, JobRequest::new(1.into()), Origin::Run, t0).unwrap();
        fail(&mut s, &a, t0);
        s.set_retention(&a, Duration::from_secs(1)).unwrap();
        s.sweep(&cfg, t0 + Duration::from_secs(1));
        assert!(s.get(&a).is_err());
        let b = s.submit(&cfg, JobRequest::new(1.into()), Origin::Run, t0).unwrap();
        fail(&mut s, &b, t0);
        s.set_retention(&b, Duration::from_secs(60)).unwrap();
        s.sweep(&cfg, t0 + Duration::from_secs(30));
        assert!(s.get(&b).is_ok());
        s.sweep(&cfg, t0 + Duration::from_secs(60));
        assert!(s.get(&b).is_err());
    }

    #[test]
    fn timeouts_still_apply_to_active_jobs() {
        let cfg = Config { execution_timeout: Duration::from_secs(5), ..Config::default() };
        let mut s = Store::default();
        let t0 = Instant::now();
        let id = s.submit(&cfg, JobRequest::new(1.into()), Origin::Run, t0).unwrap();
        s.take("w", 1, t0);
        let (ended, _) = s.sweep(&cfg, t0 + Duration::from_secs(5));
        assert_eq!(ended.len(), 1);
        assert_eq!(s.get(&id).unwrap().status(), JobStatus::TimedOut);
        assert!(s.index.active.is_empty());
    }

    #[test]
    fn the_deadline_hint_skips_idle_sweeps_and_misses_no_deadline() {
        use runpod_protocol::Policy;
        let cfg = Config { execution_timeout: Duration::from_secs(30), ..Config::default() };
        let mut s = Store::default();
        let t0 = Instant::now();
        let sec = |n: u64| t0 + Duration::from_secs(n);
        let with_ttl = |ms: u64| {
            let mut r = JobRequest::new(1.into());
            r.policy = Some(Policy { ttl: Some(ms), ..Policy::default() });
            r
        };
        // A: queue ttl 60 s. The first sweep looks, and then not before 60 s.
        let a = s.submit(&cfg, with_ttl(60_000), Origin::Run, t0).unwrap();
        s.sweep(&cfg, sec(1));
        assert_eq!(s.index.next_due, Some(sec(60)));
        // B, queued later with a 10 s ttl, lowers the hint and expires on time.
        let b = s.submit(&cfg, with_ttl(10_000), Origin::Run, sec(2)).unwrap();
        assert_eq!(s.index.next_due, Some(sec(12)));
        s.sweep(&cfg, sec(11));
        assert_eq!(s.get(&b).unwrap().status(), JobStatus::InQueue);
        let (ended, _) = s.sweep(&cfg, sec(12));
        assert_eq!(ended.len(), 1);
        assert_eq!(s.get(&b).unwrap().status(), JobStatus::TimedOut);
        // A starts at 13 s: its 30 s execution timeout, not its queue ttl, is what counts.
        assert_eq!(s.take("w", 1, sec(13)).len(), 1);
        s.sweep(&cfg, sec(42));
        assert_eq!(s.get(&a).unwrap().status(), JobStatus::InProgress);
        let (ended, _) = s.sweep(&cfg, sec(43));
        assert_eq!(ended.len(), 1);
        assert_eq!(s.get(&a).unwrap().status(), JobStatus::TimedOut);
        // Nothing active: the next look is the idle safety net.
        assert_eq!(s.index.next_due, Some(sec(43) + RESCAN_WHEN_IDLE));
    }
}

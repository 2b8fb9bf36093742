//! The time-based rules: execution timeouts, queue expiry, lost workers, result retention, and
//! the bound on the bytes finished jobs hold.

use super::entry::{ms, reset_for_queue, Ended};
use super::Store;
use crate::config::Config;
use runpod_protocol::JobStatus;
use std::collections::HashSet;
use tokio::time::Instant;

/// What one sweep did.
#[derive(Debug, Default)]
pub(crate) struct Swept {
    /// Jobs that ended (timed out or expired in the queue).
    pub ended: Vec<Ended>,
    /// True when a job went back to the queue.
    pub requeued: bool,
    /// Finished jobs forgotten (expired, or dropped to stay under the byte bound).
    pub dropped: usize,
}

impl Store {
    /// Applies every time-based rule: execution timeouts, queue expiry, lost workers (their jobs
    /// re-queued), result retention, and the bound on retained bytes. Looks only at the jobs
    /// due, the running jobs of workers that list theirs in pings, and the workers.
    pub(crate) fn sweep(&mut self, cfg: &Config, now: Instant) -> Swept {
        let mut swept = Swept::default();
        let mut expired = HashSet::new();
        let mut stops = Vec::new();
        while self.index.deadlines.first().is_some_and(|(at, _)| *at <= now) {
            let Some((_, id)) = self.index.deadlines.pop_first() else { break };
            let Some(e) = self.jobs.get_mut(&id) else { continue };
            e.deadline_at = None;
            let msg = match e.status {
                JobStatus::InProgress => {
                    format!("job timed out after {} ms of execution", ms(e.execution_timeout))
                }
                JobStatus::InQueue => format!("job expired in the queue after {} ms (ttl)", ms(e.ttl)),
                _ => continue,
            };
            let queued = e.status == JobStatus::InQueue;
            let worker = e.worker_id.clone();
            if let Some(end) = self.end(&id, JobStatus::TimedOut, Some(msg), now) {
                swept.ended.push(end);
            }
            if queued {
                expired.insert(id);
            } else if let Some(w) = worker {
                stops.push((w, id));
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
        swept.requeued = self.drop_lost_jobs(cfg, now);
        let expired = self.drop_expired_results(now);
        self.drop_over_bound(None);
        swept.dropped = expired + self.log_dropped_over_bound();
        if swept.dropped > 0 {
            self.shrink();
        }
        swept
    }

    /// Gives back the room of tables that emptied: a map sized for 100,000 jobs keeps about
    /// 60 MB when they are gone (an entry is some 600 bytes).
    fn shrink(&mut self) {
        fn roomy(len: usize, capacity: usize) -> bool {
            capacity > 1024 && len * 4 < capacity
        }
        if roomy(self.jobs.len(), self.jobs.capacity()) {
            let before = self.jobs.capacity();
            self.jobs.shrink_to(self.jobs.len() * 2);
            self.freed += (before - self.jobs.capacity()) * std::mem::size_of::<(String, super::Entry)>();
        }
        for q in [&mut self.queue, &mut self.low_queue] {
            if roomy(q.len(), q.capacity()) {
                q.shrink_to(q.len() * 2);
            }
        }
    }

    /// Forgets the finished jobs whose retention has passed; returns how many.
    fn drop_expired_results(&mut self, now: Instant) -> usize {
        let mut n = 0;
        while self.index.expiry.first().is_some_and(|(at, _)| *at <= now) {
            let Some((_, id)) = self.index.expiry.pop_first() else { break };
            self.remove(&id);
            n += 1;
        }
        n
    }

    /// Forgets the finished jobs closest to their expiry, sparing `keep` (a result that just
    /// arrived, whose `/runsync` caller has yet to read it), until they hold at most
    /// `max_retained_bytes`, counting them for the next sweep's log. Called when a result
    /// arrives, so the bound holds at every moment, and by each sweep.
    pub(super) fn drop_over_bound(&mut self, keep: Option<&str>) {
        let mut over = self.retained_bytes.saturating_sub(self.max_retained_bytes);
        if over == 0 {
            return;
        }
        let kept = keep.and_then(|id| self.jobs.get(id)).map_or(0, |e| e.retained_bytes());
        if kept > self.max_retained_bytes {
            // Over the bound on its own: the others would go for nothing; the sweep drops it.
            return;
        }
        let mut victims = Vec::new();
        for (_, id) in &self.index.expiry {
            if over == 0 {
                break;
            }
            if Some(id.as_str()) == keep {
                continue;
            }
            let held = self.jobs.get(id).map_or(0, |e| e.retained_bytes());
            over = over.saturating_sub(held);
            victims.push(id.clone());
        }
        for id in &victims {
            self.remove(id);
        }
        self.dropped_over_bound += victims.len();
    }

    /// Logs, in one line, the finished jobs dropped for the byte bound since the previous call;
    /// returns how many.
    fn log_dropped_over_bound(&mut self) -> usize {
        let n = std::mem::take(&mut self.dropped_over_bound);
        if n > 0 {
            tracing::warn!(
                dropped = n,
                max_retained_bytes = self.max_retained_bytes,
                "finished jobs dropped before their retention ended: the results retained would exceed the bound (see --max-retained-mb)"
            );
        }
        n
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
        let mut ids: Vec<(Instant, String, String, &'static str)> = Vec::new();
        for w in &lost {
            let Some(worker) = self.workers.remove(w) else { continue };
            for id in worker.running {
                let Some(e) = self.jobs.get(&id) else { continue };
                ids.push((
                    e.submitted_at,
                    id,
                    w.clone(),
                    "worker lost (no request within the ping grace); job re-queued",
                ));
            }
        }
        for (w, worker) in self.workers.iter().filter(|(_, wk)| wk.reports_jobs) {
            for id in &worker.running {
                let Some(e) = self.jobs.get(id) else { continue };
                if now - e.last_listed > cfg.ping_grace {
                    ids.push((
                        e.submitted_at,
                        id.clone(),
                        w.clone(),
                        "job missing from its worker's pings for the ping grace; job re-queued",
                    ));
                }
            }
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
            if let Some(worker) = self.workers.get_mut(&w) {
                worker.running.remove(&id);
            }
            self.index_deadline(&id);
            self.journal.job(&id);
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
    use runpod_protocol::{JobDone, JobRequest, Policy};
    use std::time::Duration;

    fn fail(store: &mut Store, id: &str, now: Instant) {
        assert_eq!(store.take("w", 1, now).len(), 1);
        let done = JobDone { error: Some("boom".into()), ..Default::default() };
        store.done("w", id, done, 10, now).unwrap();
    }

    fn submit(s: &mut Store, cfg: &Config, input: serde_json::Value, now: Instant) -> String {
        s.submit(cfg, JobRequest::new(input), 10, Origin::Run, now).unwrap()
    }

    #[test]
    fn retention_follows_retries_and_ttl_changes() {
        let cfg = Config { run_retention: Duration::from_secs(10), ..Config::default() };
        let mut s = Store::default();
        let t0 = Instant::now();
        let id = submit(&mut s, &cfg, 1.into(), t0);
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
        let a = submit(&mut s, &cfg, 1.into(), t0);
        fail(&mut s, &a, t0);
        s.set_retention(&a, Duration::from_secs(1)).unwrap();
        s.sweep(&cfg, t0 + Duration::from_secs(1));
        assert!(s.get(&a).is_err());
        let b = submit(&mut s, &cfg, 1.into(), t0);
        fail(&mut s, &b, t0);
        s.set_retention(&b, Duration::from_secs(60)).unwrap();
        s.sweep(&cfg, t0 + Duration::from_secs(30));
        assert!(s.get(&b).is_ok());
        s.sweep(&cfg, t0 + Duration::from_secs(60));
        assert!(s.get(&b).is_err());
    }

    /// 300,000 `/status?ttl=` calls kept 300,000 index entries (27.7 MB) past the job's end.
    #[test]
    fn ttl_calls_keep_one_index_entry_per_job() {
        let cfg = Config::default();
        let mut s = Store::default();
        let t0 = Instant::now();
        let id = submit(&mut s, &cfg, 1.into(), t0);
        fail(&mut s, &id, t0);
        for ms in (1..=300_000u64).rev() {
            s.set_retention(&id, Duration::from_millis(ms + 1000)).unwrap();
        }
        assert_eq!(s.index.expiry.len(), 1);
        s.sweep(&cfg, t0 + Duration::from_millis(1001));
        assert!(s.get(&id).is_err());
        assert!(s.index.expiry.is_empty() && s.index.deadlines.is_empty());
        // Calls on a job still running keep no entry at all.
        let r = submit(&mut s, &cfg, 1.into(), t0);
        for ms in 1..1000 {
            s.set_retention(&r, Duration::from_millis(ms)).unwrap();
        }
        assert!(s.index.expiry.is_empty());
    }

    #[test]
    fn timeouts_still_apply_to_active_jobs() {
        let cfg = Config { execution_timeout: Duration::from_secs(5), ..Config::default() };
        let mut s = Store::default();
        let t0 = Instant::now();
        let id = submit(&mut s, &cfg, 1.into(), t0);
        s.take("w", 1, t0);
        let swept = s.sweep(&cfg, t0 + Duration::from_secs(5));
        assert_eq!(swept.ended.len(), 1);
        assert_eq!(s.get(&id).unwrap().status(), JobStatus::TimedOut);
        assert!(s.index.deadlines.is_empty());
    }

    #[test]
    fn deadlines_are_met_in_order() {
        let cfg = Config { execution_timeout: Duration::from_secs(30), ..Config::default() };
        let mut s = Store::default();
        let t0 = Instant::now();
        let sec = |n: u64| t0 + Duration::from_secs(n);
        let with_ttl = |ms: u64| {
            let mut r = JobRequest::new(1.into());
            r.policy = Some(Policy { ttl: Some(ms), ..Policy::default() });
            r
        };
        let a = s.submit(&cfg, with_ttl(60_000), 10, Origin::Run, t0).unwrap();
        let b = s.submit(&cfg, with_ttl(10_000), 10, Origin::Run, sec(2)).unwrap();
        s.sweep(&cfg, sec(11));
        assert_eq!(s.get(&b).unwrap().status(), JobStatus::InQueue);
        assert_eq!(s.sweep(&cfg, sec(12)).ended.len(), 1);
        assert_eq!(s.get(&b).unwrap().status(), JobStatus::TimedOut);
        // A starts at 13 s: its 30 s execution timeout, not its queue ttl, is what counts.
        assert_eq!(s.take("w", 1, sec(13)).len(), 1);
        s.sweep(&cfg, sec(42));
        assert_eq!(s.get(&a).unwrap().status(), JobStatus::InProgress);
        assert_eq!(s.sweep(&cfg, sec(43)).ended.len(), 1);
        assert_eq!(s.get(&a).unwrap().status(), JobStatus::TimedOut);
        assert!(s.index.deadlines.is_empty());
    }

    #[test]
    fn finished_jobs_drop_what_cannot_be_read_again_and_stay_under_the_byte_bound() {
        let cfg = Config::default();
        let mut s = Store::new(2500);
        let t0 = Instant::now();
        let done = |s: &mut Store, id: &str, out: usize| {
            assert_eq!(s.take("w", 1, t0).len(), 1);
            let d = JobDone { output: Some(serde_json::json!(1)), ..Default::default() };
            s.done("w", id, d, out, t0).unwrap();
        };
        let a = s.submit(&cfg, JobRequest::new(1.into()), 5000, Origin::Run, t0).unwrap();
        done(&mut s, &a, 1000);
        assert!(s.get(&a).unwrap().input.is_none(), "a COMPLETED job drops its input");
        assert_eq!(s.retained_bytes, 1000);
        let b = s.submit(&cfg, JobRequest::new(1.into()), 700, Origin::Run, t0).unwrap();
        fail(&mut s, &b, t0);
        assert!(s.get(&b).unwrap().input.is_some(), "a FAILED job keeps it for /retry");
        assert_eq!(s.retained_bytes, 1000 + 700);
        let c = s.submit(&cfg, JobRequest::new(1.into()), 10, Origin::RunSync, t0).unwrap();
        let d = s.submit(&cfg, JobRequest::new(1.into()), 10, Origin::RunSync, t0).unwrap();
        done(&mut s, &c, 600);
        assert_eq!(s.retained_bytes, 2300);
        // Over 2500 as d's result arrives, before any sweep: c's (a runsync result, 1 min
        // retention) expires first, so it goes; d's own, just arrived, is spared.
        done(&mut s, &d, 600);
        assert!(s.get(&c).is_err() && s.get(&d).is_ok() && s.get(&a).is_ok() && s.get(&b).is_ok());
        assert_eq!(s.retained_bytes, 2300);
        // The next sweep counts the drop (and logs it once); nothing more is over the bound.
        assert_eq!(s.sweep(&cfg, t0).dropped, 1);
        assert_eq!(s.sweep(&cfg, t0).dropped, 0);
        // A result bigger than the bound on its own drops nothing as it arrives (the others
        // would go for nothing); the next sweep drops it, once its caller could read it.
        let e = s.submit(&cfg, JobRequest::new(1.into()), 10, Origin::RunSync, t0).unwrap();
        done(&mut s, &e, 5000);
        assert!(s.get(&e).is_ok() && s.get(&a).is_ok() && s.get(&b).is_ok() && s.get(&d).is_ok());
        assert!(s.sweep(&cfg, t0).dropped >= 1);
        assert!(s.get(&e).is_err());
        assert!(s.retained_bytes <= 2500, "{}", s.retained_bytes);
    }

    #[test]
    fn lost_worker_checks_look_at_running_jobs_only() {
        let cfg = Config { ping_grace: Duration::from_secs(5), max_queue: 100_000, ..Config::default() };
        let mut s = Store::default();
        let t0 = Instant::now();
        for i in 0..50_000 {
            submit(&mut s, &cfg, i.into(), t0);
        }
        let jobs = s.take("w", 2, t0);
        s.ping("w", &[&jobs[0].id], false, t0 + Duration::from_secs(1));
        assert!(!s.sweep(&cfg, t0 + Duration::from_secs(5)).requeued);
        // The job left out of the pings is re-queued; the listed one stays.
        let swept = s.sweep(&cfg, t0 + Duration::from_millis(5001));
        assert!(swept.requeued);
        assert_eq!(s.get(&jobs[1].id).unwrap().status(), JobStatus::InQueue);
        assert_eq!(s.get(&jobs[0].id).unwrap().status(), JobStatus::InProgress);
        let h = s.health(&cfg, t0 + Duration::from_millis(5001));
        assert_eq!((h.jobs.in_progress, h.jobs.in_queue), (1, 49_999));
    }
}

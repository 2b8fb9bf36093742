//! The heartbeat: `GET ping/{worker}?job_id=...` every `RUNPOD_PING_INTERVAL`.
//!
//! It runs on its own OS thread, with its own single-threaded runtime and HTTP client, so
//! nothing a handler does (blocking a thread for minutes on CPU work, starving a runtime)
//! can delay it; the platform would otherwise think the worker dead and re-queue its jobs.

use crate::config::{with_query, Config};
use crate::held_jobs::HeldJobs;
use crate::worker_api::VERSION;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A running heartbeat thread; [`Heartbeat::stop`] ends it.
pub(crate) struct Heartbeat {
    stop: mpsc::Sender<()>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Heartbeat {
    /// Starts pinging at once, then every `interval`.
    pub(crate) fn start(cfg: Arc<Config>, interval: Duration, held: HeldJobs) -> std::io::Result<Heartbeat> {
        let (stop, stopped) = mpsc::channel();
        let thread = std::thread::Builder::new().name("runpod-heartbeat".into()).spawn(move || {
            let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
                Ok(rt) => rt,
                Err(e) => return tracing::error!("heartbeat: no runtime: {e}"),
            };
            let client = match crate::http::reqwest_builder(&cfg)
                .timeout(interval.clamp(Duration::from_secs(1), Duration::from_secs(10)))
                .build()
            {
                Ok(c) => c,
                Err(e) => return tracing::error!("heartbeat: no HTTP client: {e}"),
            };
            let mut next = Instant::now();
            loop {
                rt.block_on(ping(&client, &cfg, &held));
                next += interval;
                let now = Instant::now();
                if next < now {
                    next = now + interval; // a slow ping: skip the missed beats
                }
                match stopped.recv_timeout(next - now) {
                    Err(RecvTimeoutError::Timeout) => continue,
                    _ => break,
                }
            }
            tracing::debug!("heartbeat stopped");
        })?;
        Ok(Heartbeat { stop, thread: Some(thread) })
    }

    /// Stops the heartbeat (after the current ping, if one is in flight).
    pub(crate) fn stop(mut self) {
        let _ = self.stop.send(());
        drop(self.thread.take());
    }
}

impl Drop for Heartbeat {
    fn drop(&mut self) {
        let _ = self.stop.send(());
    }
}

async fn ping(client: &reqwest::Client, cfg: &Config, held: &HeldJobs) {
    let ids = held.csv();
    let mut pairs: Vec<(&str, &str)> = Vec::new();
    if let Some(ids) = ids.as_deref() {
        pairs.push(("job_id", ids));
    }
    pairs.push(("runpod_version", VERSION));
    let url = with_query(&cfg.ping_url, &pairs);
    let mut req = client.get(&url);
    if let Some(k) = &cfg.api_key {
        req = req.header(reqwest::header::AUTHORIZATION, k.expose());
    }
    match req.send().await {
        Ok(r) if r.status().is_success() => tracing::trace!(jobs = ids.as_deref().unwrap_or(""), "ping"),
        Ok(r) => tracing::warn!("ping answered {}", r.status()),
        Err(e) => tracing::warn!("ping failed: {e}"),
    }
}

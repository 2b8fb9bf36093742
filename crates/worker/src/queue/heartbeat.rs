//! The heartbeat: `GET ping/{worker}?job_id=...` every `RUNPOD_PING_INTERVAL`.
//!
//! It runs on its own OS thread, with its own single-threaded runtime and HTTP client, so
//! nothing a handler does (blocking a thread for minutes on CPU work, starving a runtime)
//! can delay it; the platform would otherwise think the worker dead and re-queue its jobs.
//!
//! Every held job is listed in every beat, however many there are: the ids are split over as
//! many pings as it takes to keep each URL under [`MAX_PING_URL`] bytes (one ping up to about
//! 200 UUIDs). The endpoint counts a job as alive when any ping lists it (runpod-local keeps a
//! "last listed" time per job), so a beat of several pings lists them all. The Python SDK
//! sends one ping and cuts its list at 64 KiB, leaving the rest out.

use crate::config::{with_query, Config};
use crate::queue::held_jobs::HeldJobs;
use crate::queue::worker_api::encode_id;
use crate::version::SDK_VERSION;
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
            let client = match crate::queue::http::reqwest_builder(&cfg)
                // Twice the interval, as the Python SDK: a slow answer still counts.
                .timeout((2 * interval).clamp(Duration::from_secs(1), Duration::from_secs(20)))
                .build()
            {
                Ok(c) => c,
                Err(e) => return tracing::error!("heartbeat: no HTTP client: {e}"),
            };
            let mut next = Instant::now();
            loop {
                rt.block_on(beat(&client, &cfg, &held));
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

/// The longest ping URL sent, in bytes. Proxies refuse longer request lines (nginx's default
/// buffer holds 8 KiB; Cloudflare and AWS load balancers take 16 KiB), and past 64 KiB an HTTP
/// client cannot even build the request.
pub(crate) const MAX_PING_URL: usize = 8000;

/// How many pings of one beat are in flight at once.
const PINGS_AT_ONCE: usize = 8;

/// One beat: the held jobs' ids in as many pings as [`ping_urls`] makes, up to
/// [`PINGS_AT_ONCE`] at a time, so that a beat takes about one round trip and one slow or
/// failed ping does not hold up the others. Failures are logged once per beat, with counts and
/// never a URL (it may carry 8 KB of ids).
async fn beat(client: &reqwest::Client, cfg: &Config, held: &HeldJobs) {
    use futures::StreamExt;
    let ids = held.ids();
    let urls = ping_urls(&cfg.ping_url, &ids, MAX_PING_URL);
    let failures: Vec<String> = futures::stream::iter(&urls)
        .map(|url| async move {
            let mut req = client.get(url);
            if let Some(k) = &cfg.api_key {
                req = req.header(reqwest::header::AUTHORIZATION, k.expose());
            }
            match req.send().await {
                Ok(r) if r.status().is_success() => None,
                Ok(r) => Some(format!("answered {}", r.status())),
                Err(e) => Some(crate::queue::http::error_chain(&e.without_url())),
            }
        })
        .buffer_unordered(PINGS_AT_ONCE)
        .filter_map(std::future::ready)
        .collect()
        .await;
    match failures.first() {
        None => tracing::trace!(jobs = ids.len(), pings = urls.len(), "ping"),
        Some(why) => tracing::warn!(
            "ping failed: {why} ({} of {} ping(s) of this beat failed; {} job(s) held)",
            failures.len(),
            urls.len(),
            ids.len()
        ),
    }
}

/// The URLs of one beat: `ping_url` with `job_id=<ids, comma separated>&runpod_version=..`,
/// the ids split so that no URL is longer than `max_len` (an id too long for any URL goes alone),
/// or one URL without `job_id` when no job is held. Ids are percent-encoded as in job URLs.
fn ping_urls(ping_url: &str, ids: &[String], max_len: usize) -> Vec<String> {
    let version = ("runpod_version", SDK_VERSION);
    if ids.is_empty() {
        return vec![with_query(ping_url, &[version])];
    }
    let fixed = with_query(ping_url, &[("job_id", ""), version]).len();
    let mut urls = Vec::new();
    let mut csv = String::new();
    for id in ids {
        let id = encode_id(id);
        if !csv.is_empty() && fixed + csv.len() + 1 + id.len() > max_len {
            urls.push(with_query(ping_url, &[("job_id", &csv), version]));
            csv.clear();
        }
        if !csv.is_empty() {
            csv.push(',');
        }
        csv.push_str(&id);
    }
    urls.push(with_query(ping_url, &[("job_id", &csv), version]));
    urls
}

#[cfg(test)]
mod tests {
    use super::*;

    const URL: &str = "http://127.0.0.1:1/v2/ep/ping/w1?gpu=x";

    fn uuids(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("{i:08x}-0000-4000-8000-000000000000")).collect()
    }

    #[test]
    fn no_job_one_ping_without_job_id() {
        assert_eq!(ping_urls(URL, &[], MAX_PING_URL), [format!("{URL}&runpod_version={SDK_VERSION}")]);
    }

    #[test]
    fn few_jobs_one_ping_listing_them_all() {
        let urls = ping_urls(URL, &["a".into(), "b/c".into()], MAX_PING_URL);
        assert_eq!(urls, [format!("{URL}&job_id=a,b%2Fc&runpod_version={SDK_VERSION}")]);
    }

    /// 2,000 UUIDs (74 KB of ids): every URL within the limit, every id listed exactly once,
    /// in order, and no more pings than it takes.
    #[test]
    fn many_jobs_are_split_over_pings_within_the_limit() {
        let ids = uuids(2000);
        let urls = ping_urls(URL, &ids, MAX_PING_URL);
        assert!(urls.iter().all(|u| u.len() <= MAX_PING_URL), "{:?}", urls.iter().map(String::len).max());
        let listed: Vec<String> = urls
            .iter()
            .flat_map(|u| {
                let q = url::Url::parse(u).unwrap();
                let ids = q.query_pairs().find(|(k, _)| k == "job_id").unwrap().1.into_owned();
                assert!(q.query_pairs().any(|(k, v)| k == "runpod_version" && v == SDK_VERSION));
                ids.split(',').map(str::to_owned).collect::<Vec<_>>()
            })
            .collect();
        assert_eq!(listed, ids);
        // n ids of 36 characters take 37 n - 1 bytes: as many per URL as fit, no fewer.
        let fixed = format!("{URL}&job_id=&runpod_version={SDK_VERSION}").len();
        let per_url = (MAX_PING_URL - fixed + 1) / 37;
        assert_eq!(urls.len(), ids.len().div_ceil(per_url));
    }

    #[test]
    fn an_id_longer_than_the_limit_goes_alone() {
        let ids = vec!["a".to_owned(), "x".repeat(MAX_PING_URL), "b".to_owned()];
        let urls = ping_urls(URL, &ids, MAX_PING_URL);
        assert_eq!(urls.len(), 3);
        assert!(urls[0].contains("job_id=a&") && urls[2].contains("job_id=b&"));
    }
}

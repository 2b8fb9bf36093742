//! When and how long to wait before sending a request again.

use rand::Rng;
use std::time::{Duration, SystemTime};

/// Retry settings: exponential backoff with jitter, honouring the server's `Retry-After`.
///
/// Idempotent calls (`status`, `stream`, `cancel`, `retry`, `purge_queue`, `health`) are retried
/// on `429`, `5xx`, timeouts and network errors. Calls that queue a job (`run`, `run_sync`) are
/// retried only when the job cannot have been queued: on `429` (the server refused it) and on
/// failures to connect (nothing was sent). They are never retried after a `5xx`, a timeout or
/// a broken connection, because the server may have queued the job already.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
#[must_use]
pub struct RetryPolicy {
    /// Retries after the first attempt (0 disables retrying).
    pub max_retries: u32,
    /// Backoff before the first retry; doubled for each later one.
    pub base_delay: Duration,
    /// Longest backoff between two attempts.
    pub max_delay: Duration,
    /// Longest `Retry-After` the client waits out; a longer one ends the retries at once.
    pub max_retry_after: Duration,
}

impl Default for RetryPolicy {
    /// 4 retries, 250 ms doubling up to 8 s, `Retry-After` honoured up to 60 s.
    fn default() -> Self {
        RetryPolicy {
            max_retries: 4,
            base_delay: Duration::from_millis(250),
            max_delay: Duration::from_secs(8),
            max_retry_after: Duration::from_secs(60),
        }
    }
}

impl RetryPolicy {
    /// A policy that never retries.
    pub fn none() -> Self {
        RetryPolicy { max_retries: 0, ..Default::default() }
    }

    /// Sets the retries after the first attempt (0 disables retrying).
    pub fn with_max_retries(mut self, n: u32) -> Self {
        self.max_retries = n;
        self
    }

    /// Sets the backoff before the first retry (doubled for each later one).
    pub fn with_base_delay(mut self, d: Duration) -> Self {
        self.base_delay = d;
        self
    }

    /// Sets the longest backoff between two attempts.
    pub fn with_max_delay(mut self, d: Duration) -> Self {
        self.max_delay = d;
        self
    }

    /// Sets the longest `Retry-After` the client waits out.
    pub fn with_max_retry_after(mut self, d: Duration) -> Self {
        self.max_retry_after = d;
        self
    }

    /// The backoff before retry number `attempt` (0-based): `base * 2^attempt`, capped at
    /// `max_delay`, of which a random half is kept ("equal jitter") so clients spread out.
    pub fn backoff(&self, attempt: u32) -> Duration {
        let full = self.base_delay.saturating_mul(2u32.saturating_pow(attempt.min(30))).min(self.max_delay);
        let half = full / 2;
        let jitter_ns = rand::rng().random_range(0..=half.as_nanos().min(u64::MAX as u128) as u64);
        half + Duration::from_nanos(jitter_ns)
    }

    /// The wait before the next retry: the server's `Retry-After` when given (plus up to 10 %
    /// jitter), else [`backoff`](Self::backoff). `None` when the server asks for longer than
    /// `max_retry_after`.
    pub fn delay(&self, attempt: u32, retry_after: Option<Duration>) -> Option<Duration> {
        match retry_after {
            Some(d) if d > self.max_retry_after => None,
            Some(d) => {
                let jitter_ns =
                    rand::rng().random_range(0..=(d / 10).as_nanos().min(u64::MAX as u128) as u64);
                Some(d + Duration::from_nanos(jitter_ns))
            }
            None => Some(self.backoff(attempt)),
        }
    }
}

/// Parses a `Retry-After` value: delay seconds (`"3"`, also `"1.5"`) or an HTTP date.
pub(crate) fn parse_retry_after(value: &str) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    if let Ok(secs) = value.parse::<f64>() {
        return Duration::try_from_secs_f64(secs).ok();
    }
    let when = httpdate::parse_http_date(value).ok()?;
    Some(when.duration_since(SystemTime::now()).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_is_capped() {
        let p = RetryPolicy {
            max_retries: 10,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(1),
            max_retry_after: Duration::from_secs(5),
        };
        for attempt in 0..10 {
            let full = (Duration::from_millis(100) * 2u32.pow(attempt)).min(Duration::from_secs(1));
            for _ in 0..50 {
                let d = p.backoff(attempt);
                assert!(
                    d >= full / 2 && d <= full,
                    "attempt {attempt}: {d:?} not in [{:?}, {full:?}]",
                    full / 2
                );
            }
        }
        // Jitter: 50 draws of a 1 s window are not all equal.
        let draws: std::collections::HashSet<_> = (0..50).map(|_| p.backoff(5)).collect();
        assert!(draws.len() > 1);
    }

    #[test]
    fn retry_after_is_honoured_within_bounds() {
        let p = RetryPolicy::default();
        let d = p.delay(0, Some(Duration::from_secs(2))).unwrap();
        assert!(d >= Duration::from_secs(2) && d <= Duration::from_millis(2200), "{d:?}");
        assert_eq!(p.delay(0, Some(Duration::from_secs(3600))), None);
        assert!(p.delay(3, None).unwrap() <= p.max_delay);
    }

    #[test]
    fn retry_after_forms() {
        assert_eq!(parse_retry_after("3"), Some(Duration::from_secs(3)));
        assert_eq!(parse_retry_after(" 0 "), Some(Duration::ZERO));
        assert_eq!(parse_retry_after("1.5"), Some(Duration::from_millis(1500)));
        assert_eq!(parse_retry_after("-1"), None);
        assert_eq!(parse_retry_after("soon"), None);
        let in_10s = httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(10));
        let d = parse_retry_after(&in_10s).unwrap();
        assert!(d > Duration::from_secs(8) && d <= Duration::from_secs(10), "{d:?}");
        let past = httpdate::fmt_http_date(SystemTime::now() - Duration::from_secs(10));
        assert_eq!(parse_retry_after(&past), Some(Duration::ZERO));
    }
}

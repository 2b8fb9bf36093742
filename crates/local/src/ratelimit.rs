//! Per-route rate limits of the client API (fixed windows), answered with `429`.

use crate::config::{RateLimit, RateLimits};
use crate::error::ApiError;
use std::sync::Mutex;
use tokio::time::Instant;

/// The route groups that have their own limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Group {
    Run,
    RunSync,
    Status,
    Cancel,
    Purge,
}

const GROUPS: usize = 5;

/// Request counters, one fixed window per route group.
pub(crate) struct Limiter {
    limits: RateLimits,
    windows: Mutex<[(Instant, u32); GROUPS]>,
}

impl Limiter {
    pub(crate) fn new(limits: RateLimits) -> Self {
        Limiter { limits, windows: Mutex::new([(Instant::now(), 0); GROUPS]) }
    }

    fn limit(&self, g: Group) -> Option<RateLimit> {
        match g {
            Group::Run => self.limits.run,
            Group::RunSync => self.limits.runsync,
            Group::Status => self.limits.status,
            Group::Cancel => self.limits.cancel,
            Group::Purge => self.limits.purge,
        }
    }

    /// Counts one request of group `g`; `Err` when its window is used up.
    fn admit(&self, g: Group, now: Instant) -> Result<(), ApiError> {
        let Some(limit) = self.limit(g) else { return Ok(()) };
        let mut windows = self.windows.lock().unwrap_or_else(|p| p.into_inner());
        let (start, count) = &mut windows[g as usize];
        if now - *start >= limit.per {
            *start = now;
            *count = 0;
        }
        if *count >= limit.requests {
            return Err(ApiError::TooManyRequests {
                message: format!(
                    "rate limit reached: {} requests per {} ms on this route; retry later",
                    limit.requests,
                    limit.per.as_millis()
                ),
                retry_after: (*start + limit.per).saturating_duration_since(now),
            });
        }
        *count += 1;
        Ok(())
    }
}

impl Limiter {
    /// `429` once the window of `path`'s client route is used up (worker routes are not
    /// limited).
    pub(crate) fn check(&self, path: &str) -> Result<(), ApiError> {
        let route = path.trim_start_matches('/').split('/').nth(2).unwrap_or("");
        let group = match route {
            "run" => Some(Group::Run),
            "runsync" => Some(Group::RunSync),
            "status" | "stream" => Some(Group::Status),
            "cancel" => Some(Group::Cancel),
            "purge-queue" => Some(Group::Purge),
            _ => None,
        };
        match group {
            Some(g) => self.admit(g, Instant::now()),
            None => Ok(()),
        }
    }
}

//! Giving the memory of forgotten jobs back to the system.
//!
//! glibc's malloc keeps freed memory in its arenas for reuse, and a large allocation freed
//! raises the size above which it uses `mmap`, so after a burst of jobs (100,000 of them, or a
//! few inputs of megabytes) the resident set stays where the burst left it, long after the jobs
//! are gone. `malloc_trim(0)` returns the free pages of every arena; the sweeper calls it once
//! 16 MiB have been let go of, or 10 s after anything was, and once more a second later. Other
//! allocators and C libraries get no call (musl returns memory on its own).

use std::time::Duration;
use tokio::time::Instant;

/// When to trim: bytes let go of since the last trim, when that was, and when to trim once
/// more (what answers still held, such as a job's input on its way to a worker, is freed a
/// moment after the jobs themselves).
#[derive(Debug, Default)]
pub(crate) struct Trim {
    pending: usize,
    last: Option<Instant>,
    again_at: Option<Instant>,
}

impl Trim {
    const BYTES: usize = 16 << 20;
    const EVERY: Duration = Duration::from_secs(10);
    const AGAIN_AFTER: Duration = Duration::from_secs(1);

    /// Notes `bytes` let go of (called on every sweep); trims when due.
    pub(crate) fn freed(&mut self, bytes: usize) {
        self.pending = self.pending.saturating_add(bytes);
        let now = Instant::now();
        let due = self.pending >= Self::BYTES
            || (self.pending > 0 && self.last.is_none_or(|t| now - t >= Self::EVERY));
        if due {
            release();
            self.pending = 0;
            self.last = Some(now);
            self.again_at = Some(now + Self::AGAIN_AFTER);
        } else if self.again_at.is_some_and(|t| now >= t) {
            release();
            self.again_at = None;
        }
    }
}

/// Returns free heap pages to the system, where the allocator allows it.
#[allow(unsafe_code, reason = "malloc_trim is a C function of glibc")]
fn release() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only walks glibc's own arenas; it has no preconditions.
    unsafe {
        libc::malloc_trim(0);
    }
}

//! Log lines of jobs, for the console: sent by a worker running in the same process
//! (`--serve-api`) through [`JobLogs`], read by the job's event stream.

use serde::Serialize;
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::Notify;
use tokio::time::Instant;

/// Jobs whose lines are kept; the oldest job's lines go first.
const MAX_JOBS: usize = 500;
/// Lines kept per job; later ones are counted, not kept.
const MAX_LINES: usize = 2_000;
/// Longest line kept, in bytes; longer ones are cut.
const MAX_LINE_BYTES: usize = 8 * 1024;

/// One log line of a job.
#[derive(Debug, Clone)]
pub(crate) struct LogLine {
    pub level: String,
    pub message: String,
    pub at: Instant,
}

/// A log line as the page gets it: `atMs` counts from the job's submission.
#[derive(Debug, Serialize)]
pub(crate) struct LogLineView<'a> {
    pub level: &'a str,
    pub message: &'a str,
    #[serde(rename = "atMs")]
    pub at_ms: u64,
}

#[derive(Debug, Default)]
struct Book {
    jobs: HashMap<String, Vec<LogLine>>,
    /// Job ids, oldest first, to drop the oldest job's lines when [`MAX_JOBS`] are kept.
    order: VecDeque<String>,
}

/// Every job's kept log lines. Its own lock, never the store's: a line may be logged while
/// the store is locked.
#[derive(Debug, Default)]
pub(crate) struct LogBook {
    enabled: AtomicBool,
    book: Mutex<Book>,
    changed: Notify,
    /// A text the page shows above everything else until it is cleared (`cargo runpod dev`'s
    /// last build error); see [`crate::LocalEndpoint::set_notice`].
    notice: Mutex<Option<String>>,
}

impl LogBook {
    /// True once a [`JobLogs`] was handed out: the page then shows a logs section.
    pub(crate) fn enabled(&self) -> bool {
        self.enabled.load(Ordering::Relaxed)
    }

    /// Woken on every new line of any job.
    pub(crate) fn changed(&self) -> &Notify {
        &self.changed
    }

    /// The page's notice, if one is set.
    pub(crate) fn notice(&self) -> Option<String> {
        self.notice.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).clone()
    }

    pub(crate) fn set_notice(&self, text: Option<String>) {
        *self.notice.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) = text;
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Book> {
        self.book.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn push(&self, job_id: &str, line: LogLine) {
        let mut book = self.lock();
        let book = &mut *book;
        if !book.jobs.contains_key(job_id) {
            if book.order.len() >= MAX_JOBS {
                if let Some(old) = book.order.pop_front() {
                    book.jobs.remove(&old);
                }
            }
            book.order.push_back(job_id.to_owned());
        }
        let lines = book.jobs.entry(job_id.to_owned()).or_default();
        match lines.len() {
            n if n < MAX_LINES => lines.push(line),
            n if n == MAX_LINES => lines.push(LogLine {
                level: "WARN".into(),
                message: format!(
                    "(runpod-local keeps the first {MAX_LINES} log lines of a job; the rest are left out)"
                ),
                at: line.at,
            }),
            _ => return,
        }
        self.changed.notify_waiters();
    }

    /// The lines of `job_id` from index `from` on.
    pub(crate) fn since(&self, job_id: &str, from: usize) -> Vec<LogLine> {
        let book = self.lock();
        book.jobs.get(job_id).and_then(|l| l.get(from..)).map(<[LogLine]>::to_vec).unwrap_or_default()
    }
}

/// Where a worker running in the same process as the endpoint sends its jobs' log lines, for
/// the console page to show next to each job. Get one from
/// [`LocalEndpoint::job_logs`](crate::LocalEndpoint::job_logs); clones share the same book.
///
/// ```
/// # #[tokio::main] async fn main() {
/// let ep = runpod_local::LocalEndpoint::builder().bind("127.0.0.1:0").await.unwrap();
/// let logs = ep.job_logs();
/// logs.push("job-1", "INFO", "loading the model");
/// # }
/// ```
#[derive(Clone)]
pub struct JobLogs(Arc<LogBook>);

impl std::fmt::Debug for JobLogs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JobLogs").finish_non_exhaustive()
    }
}

impl JobLogs {
    pub(crate) fn new(book: Arc<LogBook>) -> Self {
        book.enabled.store(true, Ordering::Relaxed);
        JobLogs(book)
    }

    /// Adds one log line of job `job_id`; `level` is shown as given (`INFO`, `WARN`, ...).
    /// Lines past 8 KiB are cut, and a job keeps its first 2000 lines.
    pub fn push(&self, job_id: &str, level: &str, message: &str) {
        let mut message = message.to_owned();
        if message.len() > MAX_LINE_BYTES {
            let mut cut = MAX_LINE_BYTES;
            while !message.is_char_boundary(cut) {
                cut -= 1;
            }
            message.truncate(cut);
            message.push_str(" (cut)");
        }
        let line = LogLine { level: level.to_owned(), message, at: Instant::now() };
        self.0.push(job_id, line);
    }
}

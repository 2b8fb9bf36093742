//! Exit codes: one per outcome, so scripts can tell failures apart.

use runpod_client::{Error, JobStatus};
use std::process::ExitCode;

/// The exit codes, documented in `--help` and the README.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// 0: done; a job that was waited for (or whose status was asked) did not fail.
    Ok = 0,
    /// 1: the job ended FAILED.
    JobFailed = 1,
    /// 2: bad flags or input, or an invalid request refused before sending.
    Usage = 2,
    /// 3: the job ended CANCELLED.
    JobCancelled = 3,
    /// 4: the job ended TIMED_OUT.
    JobTimedOut = 4,
    /// 5: gave up waiting (--timeout-ms); the job is still queued or running.
    WaitTimeout = 5,
    /// 6: the server answered 400.
    BadRequest = 6,
    /// 7: 401/403, or no RUNPOD_API_KEY.
    Unauthorized = 7,
    /// 8: 404: unknown endpoint or job.
    NotFound = 8,
    /// 9: 429 after the retries.
    RateLimited = 9,
    /// 10: 5xx or another unexpected HTTP status.
    Server = 10,
    /// 11: network failure or request timeout.
    Network = 11,
    /// 12: an answer of unexpected shape.
    Decode = 12,
}

/// The table printed after `--help`.
pub(crate) const HELP: &str = "\
Exit codes:
   0  ok (a job waited for ended COMPLETED; a plain status of a queued or running job)
   1  job FAILED                        7  401/403, or RUNPOD_API_KEY unset
   2  bad flags, input or request       8  404 unknown endpoint or job
   3  job CANCELLED                     9  429 rate limited (after retries)
   4  job TIMED_OUT                    10  5xx or other unexpected HTTP status
   5  gave up waiting (--timeout-ms)   11  network error or request timeout
   6  400 bad request                  12  answer of unexpected shape";

impl Exit {
    /// The code for a job's status: 0 unless it ended badly.
    pub fn of_status(s: JobStatus) -> Exit {
        match s {
            JobStatus::Failed => Exit::JobFailed,
            JobStatus::Cancelled => Exit::JobCancelled,
            JobStatus::TimedOut => Exit::JobTimedOut,
            _ => Exit::Ok,
        }
    }

    /// The code for a client error.
    pub fn of_error(e: &Error) -> Exit {
        match e {
            Error::BadRequest { .. } => Exit::BadRequest,
            Error::Unauthorized { .. } | Error::MissingApiKey => Exit::Unauthorized,
            Error::NotFound { .. } => Exit::NotFound,
            Error::RateLimited { .. } => Exit::RateLimited,
            Error::Server { .. } | Error::Http { .. } => Exit::Server,
            Error::RequestTimeout(_) | Error::Network(_) => Exit::Network,
            Error::Decode { .. } => Exit::Decode,
            Error::WaitTimeout { .. } => Exit::WaitTimeout,
            Error::JobEnded { status, .. } => Exit::of_status(*status),
            _ => Exit::Usage,
        }
    }
}

impl From<Exit> for ExitCode {
    fn from(e: Exit) -> Self {
        ExitCode::from(e as u8)
    }
}

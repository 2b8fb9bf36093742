//! Queue mode: the worker takes jobs from the platform's queue over the worker API.

pub(crate) mod backoff;
pub(crate) mod executor;
pub(crate) mod heartbeat;
pub(crate) mod held_jobs;
pub(crate) mod http;
pub(crate) mod job_loop;
pub(crate) mod lifecycle;
pub(crate) mod outcome;
pub(crate) mod sender;
pub(crate) mod stop;
pub(crate) mod worker_api;

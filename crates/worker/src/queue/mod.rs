//! Queue mode: the worker takes jobs from the platform's queue over the worker API.
//!
//! [`lifecycle`] starts and drains the mode; [`job_loop`] takes jobs and starts each one;
//! [`executor`] runs one job to its final post; [`sender`] delivers a job's posts in order;
//! [`heartbeat`] pings; [`stop`] listens for jobs to abandon; [`worker_api`] and [`http`] are
//! the wire.

pub(crate) mod backoff;
pub(crate) mod executor;
pub(crate) mod heartbeat;
pub(crate) mod held_jobs;
pub(crate) mod http;
pub(crate) mod job_loop;
pub(crate) mod lifecycle;
pub(crate) mod outcome;
pub(crate) mod posts;
pub(crate) mod sender;
pub(crate) mod stop;
pub(crate) mod worker_api;

//! The local modes: one job run without an endpoint ([`test_input`]: `--test-input`,
//! `Worker::run_test_job`), the local endpoint in-process ([`serve_api`]: `--serve-api`), and
//! what a job sent kept in memory ([`record`]).

pub(crate) mod record;
pub(crate) mod serve_api;
pub(crate) mod test_input;

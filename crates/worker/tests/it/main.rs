//! The worker runtime end to end against a real local endpoint: one test binary (each file a
//! module; `common` holds the shared helpers).

mod common;
mod e2e;
mod failures;
mod faults;
mod fitness;
mod handler_trait;
mod job_fields;
mod large_output;
mod load_balancing;
mod odd_ids;
mod readme_echo;
mod readme_s3;
mod schema;
mod sigterm_idle;
mod wire;
mod wire_sdk;

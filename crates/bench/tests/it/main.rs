//! The fault, fuzz and smoke tests of runpod-bench and the endpoint under it: one test binary
//! (each file a module; `common` holds the shared helpers).

mod bench_smoke;
mod common;
mod faults_connections;
mod faults_delivery;
mod faults_heartbeat;
mod faults_malformed;
mod faults_processes;
mod faults_protocol;
mod faults_restart;
mod faults_retention;
mod faults_s3_endpoint;
mod faults_shutdown;
mod faults_webhooks;
mod fuzz_parsing;

/// The endpoint process of the tests that need one (see `common::endpoint_process`).
#[test]
#[ignore = "the endpoint process the other tests start; does nothing on its own"]
fn endpoint_process() {
    common::endpoint_process::serve_if_asked();
}

//! The runpod-client library and the `runpod` CLI against a real local endpoint: one test binary
//! (each file a module; `common` holds the shared helpers).

mod calls;
mod cli;
mod cli_faults;
mod cli_queue;
mod cli_webhook;
mod common;
mod errors;

//! runpod-local's client API, worker API, CLI, console, balancer and logs: one test binary
//! (each file a module; `common` holds the shared helpers).

mod cli;
mod cli_no_key;
mod common;
mod console;
mod data_dir;
mod errors;
mod hub;
mod lifecycle;
mod load_balancer;
mod logs;
mod openai;
mod openapi;
mod python_sdk;
mod request_guard;
mod timers;
mod worker_env_shell;

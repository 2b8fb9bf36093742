//! The echo binary: CLI, fitness, log levels, Python SDK parity, the Hub listing; one test binary (each file a
//! module). The browser test (`console.rs`) is a binary of its own.

mod cli;
mod fitness;
mod log_level;
mod python_sdk_parity;
mod runpod_hub;

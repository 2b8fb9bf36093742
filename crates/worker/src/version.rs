//! The runtime's version, as error reports, pings and the debugger name it.

/// The version reported in pings and error reports: `runpod-rs/<crate version>`.
pub(crate) const VERSION: &str = concat!("runpod-rs/", env!("CARGO_PKG_VERSION"));

//! The versions the runtime names: its own, and the Python SDK's whose worker protocol it speaks.

/// This runtime's name and version (the `User-Agent`, the debugger's report).
pub(crate) const VERSION: &str = concat!("runpod-rs/", env!("CARGO_PKG_VERSION"));

/// The `runpod_version` of pings and error reports: the Python SDK release whose worker
/// protocol this runtime speaks. The SDK sends its own bare version there, so a platform that
/// reads the field as a version gets one it knows; this runtime names itself in the
/// `User-Agent` instead (docs/worker-api.md, "On the wire, like the Python SDK").
pub(crate) const SDK_VERSION: &str = "1.12.0";

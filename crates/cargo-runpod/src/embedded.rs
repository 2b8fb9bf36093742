//! The files compiled into the binary by build.rs: the worker template and, until
//! runpod-worker is on crates.io, the runtime's source and the lockfile it is tested with.

/// One file `cargo runpod new` writes.
#[derive(Debug)]
pub(crate) struct EmbeddedFile {
    /// Where it goes, relative to the new crate's folder (`/`-separated).
    pub(crate) path: &'static str,
    /// Its contents.
    pub(crate) bytes: &'static [u8],
    /// Its source's modification time (seconds since 1970), kept by the copy so that cargo sees
    /// an unchanged runtime as unchanged in a shared target folder.
    pub(crate) modified: u64,
}

include!(concat!(env!("OUT_DIR"), "/embedded.rs"));

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_template_and_the_runtime_are_embedded() {
        let paths: Vec<&str> = TEMPLATE.iter().map(|f| f.path).collect();
        for must in
            ["Cargo.toml", "src/main.rs", "Dockerfile", "test_input.json", ".gitignore", ".dockerignore"]
        {
            assert!(paths.contains(&must), "{must} missing from {paths:?}");
        }
        assert!(!paths.iter().any(|p| p.starts_with("target/") || *p == "Cargo.lock"), "{paths:?}");
        // Built inside the repository: the runtime's source, without its tests.
        let runtime: Vec<&str> = RUNTIME.iter().map(|f| f.path).collect();
        for must in [
            "runpod-rs/Cargo.toml",
            "runpod-rs/crates/worker/src/lib.rs",
            "runpod-rs/crates/local/console/app.js",
        ] {
            assert!(runtime.contains(&must), "{must} missing");
        }
        assert!(!runtime.iter().any(|p| p.contains("/tests/")), "{runtime:?}");
        assert!(LOCKFILE.is_some_and(|l| l.contains("name = \"runpod-worker\"")));
    }
}

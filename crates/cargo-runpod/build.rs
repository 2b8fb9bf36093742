//! Embeds what `cargo runpod new` writes: the worker template, and, when built inside the
//! runpod-rs repository, the runtime's source and the repository's Cargo.lock (runpod-worker is
//! not on crates.io yet: the new crate builds from that copy; docs/cargo-runpod.md).
//!
//! Writes `$OUT_DIR/embedded.rs`: `TEMPLATE` and `RUNTIME`, slices of `EmbeddedFile` (the path
//! in the new crate, the bytes through `include_bytes!`, the source's modification time), and
//! `LOCKFILE`.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

/// The runtime crates runpod-worker builds with (its optional ones included).
const RUNTIME_CRATES: &[&str] = &["worker", "protocol", "net", "local", "s3"];
/// What of each runtime crate is copied: what its package holds, without tests.
const CRATE_PARTS: &[&str] = &["Cargo.toml", "README.md", "build.rs", "src", "console"];

fn main() {
    let manifest_dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR"));
    let mut template = Vec::new();
    collect(&manifest_dir.join("template"), Path::new(""), &mut template);
    // Names cargo or git would treat specially in `template/` (a nested package, an ignore file
    // that is a link) carry another name there.
    for (path, _) in &mut template {
        *path = match path.as_str() {
            "Cargo.toml.in" => "Cargo.toml".to_owned(),
            "gitignore" => ".gitignore".to_owned(),
            _ => std::mem::take(path),
        };
    }
    assert!(
        template.iter().any(|(p, _)| p == "Cargo.toml"),
        "template/Cargo.toml.in is missing: the template is not there"
    );

    // Inside the repository (not in a package from crates.io): the runtime's source.
    let repo = manifest_dir.join("../..");
    let mut runtime = Vec::new();
    let mut lockfile = None;
    if repo.join("crates/worker/Cargo.toml").is_file() && repo.join("Cargo.lock").is_file() {
        for file in ["Cargo.toml", "LICENSE-MIT", "LICENSE-APACHE"] {
            collect(&repo.join(file), Path::new(&format!("runpod-rs/{file}")), &mut runtime);
        }
        for krate in RUNTIME_CRATES {
            for part in CRATE_PARTS {
                let from = repo.join("crates").join(krate).join(part);
                if from.exists() {
                    collect(&from, Path::new(&format!("runpod-rs/crates/{krate}/{part}")), &mut runtime);
                }
            }
        }
        let lock = repo.join("Cargo.lock").canonicalize().expect("Cargo.lock");
        println!("cargo:rerun-if-changed={}", lock.display());
        lockfile = Some(lock);
    }
    println!("cargo:rerun-if-changed=template");

    let mut out = String::new();
    write_files(&mut out, "TEMPLATE", "The worker template's files.", &template);
    write_files(
        &mut out,
        "RUNTIME",
        "The runtime's source under `runpod-rs/` (empty when built from a published package).",
        &runtime,
    );
    let lock = match lockfile {
        Some(path) => format!("Some(include_str!({:?}))", path.display().to_string()),
        None => "None".to_owned(),
    };
    writeln!(out, "/// The repository's Cargo.lock, to seed the new crate's.\npub(crate) static LOCKFILE: Option<&str> = {lock};")
        .unwrap();
    let dest = PathBuf::from(std::env::var("OUT_DIR").expect("OUT_DIR")).join("embedded.rs");
    std::fs::write(dest, out).expect("write embedded.rs");
}

/// Adds the file `from`, or every file under the folder `from`, as `to/...`.
fn collect(from: &Path, to: &Path, files: &mut Vec<(String, PathBuf)>) {
    let real = from.canonicalize().unwrap_or_else(|e| panic!("{}: {e}", from.display()));
    println!("cargo:rerun-if-changed={}", real.display());
    if real.is_dir() {
        let mut entries: Vec<_> = std::fs::read_dir(&real)
            .unwrap_or_else(|e| panic!("{}: {e}", real.display()))
            .map(|e| e.expect("a folder entry").file_name())
            .collect();
        entries.sort();
        for name in entries {
            // What building the template in place leaves behind.
            if name == "target" || (to.as_os_str().is_empty() && name == "Cargo.lock") {
                continue;
            }
            collect(&from.join(&name), &to.join(&name), files);
        }
    } else {
        files.push((to.to_str().expect("a UTF-8 path").to_owned(), real));
    }
}

fn write_files(out: &mut String, name: &str, doc: &str, files: &[(String, PathBuf)]) {
    writeln!(out, "/// {doc}\npub(crate) static {name}: &[EmbeddedFile] = &[").unwrap();
    for (path, real) in files {
        let modified = std::fs::metadata(real)
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_secs());
        writeln!(
            out,
            "    EmbeddedFile {{ path: {path:?}, bytes: include_bytes!({:?}), modified: {modified} }},",
            real.display().to_string()
        )
        .unwrap();
    }
    writeln!(out, "];").unwrap();
}

//! `cargo runpod new PATH`: a worker crate from the embedded template, one that builds on its
//! own wherever it is (its own `[workspace]`), offline.
//!
//! Until runpod-worker is on crates.io, the new crate's `Cargo.toml` already says
//! `runpod-worker = "0.1.0"` and `.cargo/config.toml` patches that to a copy of the runtime's
//! source in `runpod-rs/` (the one place that knows; delete both once it is published). Its
//! `Cargo.lock` starts from the versions runpod-rs is tested with.

use crate::embedded::{EmbeddedFile, LOCKFILE, RUNTIME, TEMPLATE};
use crate::shell;
use anyhow::{bail, Context, Result};
use std::path::Path;
use std::time::{Duration, SystemTime};

/// The template's package name, replaced by the new one.
const TEMPLATE_NAME: &str = "name = \"worker\"";

/// What `.cargo/config.toml` holds while the runtime is copied in.
const PATCH_CONFIG: &str = "\
# runpod-worker is not on crates.io yet: Cargo.toml's `runpod-worker = \"0.1.0\"` builds from the
# copy of its source in runpod-rs/, which `cargo runpod new` wrote. Once it is published,
# delete this file and runpod-rs/: the crates.io version is then used.
[patch.crates-io]
runpod-worker = { path = \"runpod-rs/crates/worker\" }
";

/// Creates the crate at `dest`, named `name` (default: the folder's name).
pub(crate) fn run(dest: &Path, name: Option<&str>) -> Result<()> {
    let name = match name {
        Some(n) => n.to_owned(),
        None => dest
            .file_name()
            .and_then(|n| n.to_str())
            .with_context(|| format!("{} has no folder name to name the package after", dest.display()))?
            .to_owned(),
    };
    check_name(&name)?;
    if dest.exists() {
        let mut entries =
            std::fs::read_dir(dest).with_context(|| format!("cannot read {}", dest.display()))?;
        if entries.next().is_some() {
            bail!("destination `{}` already exists and is not empty", dest.display());
        }
    }
    for file in TEMPLATE {
        let bytes = match file.path {
            "Cargo.toml" => renamed_manifest(file.bytes, &name)?,
            _ => file.bytes.to_vec(),
        };
        write(dest, file.path, &bytes, None)?;
    }
    // Built from a crates.io package, RUNTIME is empty: runpod-worker comes from there too.
    if !RUNTIME.is_empty() {
        for file in RUNTIME {
            write(dest, file.path, file.bytes, Some(file))?;
        }
        write(dest, ".cargo/config.toml", PATCH_CONFIG.as_bytes(), None)?;
    }
    if let Some(lock) = LOCKFILE {
        // Cargo drops the entries the crate does not use and adds its own at the first build.
        write(dest, "Cargo.lock", lock.as_bytes(), None)?;
    }
    shell::status("Created", format!("worker package `{name}` at {}", dest.display()));
    if !RUNTIME.is_empty() {
        shell::note(
            "Vendored",
            "runpod-worker's source in runpod-rs/ (until it is on crates.io; see .cargo/config.toml)",
        );
    }
    shell::note("Next", format!("cd {} && cargo runpod run", dest.display()));
    Ok(())
}

/// A package name cargo accepts and the template's binary can carry.
fn check_name(name: &str) -> Result<()> {
    let mut chars = name.chars();
    let ok = chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
    if !ok {
        bail!("`{name}` is not a package name here: lower-case ASCII letters, digits, `-` and `_`, starting with a letter (use --name)");
    }
    if matches!(name, "test" | "build" | "deps" | "examples" | "incremental") {
        bail!("`{name}` is a name cargo reserves for its own folders (use --name)");
    }
    Ok(())
}

fn renamed_manifest(template: &[u8], name: &str) -> Result<Vec<u8>> {
    let text = std::str::from_utf8(template).context("the template's Cargo.toml is not UTF-8")?;
    let Some(at) = text.find(TEMPLATE_NAME) else {
        bail!("the template's Cargo.toml has no `{TEMPLATE_NAME}` line (a broken build of cargo-runpod)");
    };
    let mut out = String::with_capacity(text.len() + name.len());
    out.push_str(&text[..at]);
    out.push_str(&format!("name = \"{name}\""));
    out.push_str(&text[at + TEMPLATE_NAME.len()..]);
    Ok(out.into_bytes())
}

/// Writes `bytes` to `dest/rel`; with `keep_time`, gives it that file's modification time.
fn write(dest: &Path, rel: &str, bytes: &[u8], keep_time: Option<&EmbeddedFile>) -> Result<()> {
    let path = dest.join(rel);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).with_context(|| format!("cannot create {}", parent.display()))?;
    }
    std::fs::write(&path, bytes).with_context(|| format!("cannot write {}", path.display()))?;
    if let Some(file) = keep_time.filter(|f| f.modified > 0) {
        let when = SystemTime::UNIX_EPOCH + Duration::from_secs(file.modified);
        let set = std::fs::File::options().write(true).open(&path).and_then(|f| f.set_modified(when));
        set.with_context(|| format!("cannot set the time of {}", path.display()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_cargo_would_refuse_are_refused() {
        for good in ["my-worker", "w2", "a_b"] {
            assert!(check_name(good).is_ok(), "{good}");
        }
        for bad in ["My", "2w", "a b", "", "é", "test", "a.b"] {
            assert!(check_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn only_the_package_name_is_renamed() {
        let manifest = b"[package]\nname = \"worker\"\n[dependencies]\nx = { package = \"worker\" }\n";
        let out = String::from_utf8(renamed_manifest(manifest, "wc").unwrap()).unwrap();
        assert_eq!(out, "[package]\nname = \"wc\"\n[dependencies]\nx = { package = \"worker\" }\n");
    }
}

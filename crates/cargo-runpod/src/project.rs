//! The worker crate a command works on: found as cargo finds it (`--manifest-path`, else the
//! `Cargo.toml` of this folder or the nearest above), described by `cargo metadata`.

use anyhow::{bail, Context, Result};
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The worker crate.
#[derive(Debug)]
pub(crate) struct Project {
    /// Its `Cargo.toml`.
    pub(crate) manifest: PathBuf,
    /// The folder that holds it.
    pub(crate) dir: PathBuf,
    /// Package name.
    pub(crate) name: String,
    /// Package version.
    pub(crate) version: String,
    /// The binary the worker runs as.
    pub(crate) bin: String,
    /// Its features (`cuda` is looked for).
    pub(crate) features: Vec<String>,
}

#[derive(Deserialize)]
struct Metadata {
    packages: Vec<Package>,
}

#[derive(Deserialize)]
struct Package {
    name: String,
    version: String,
    manifest_path: PathBuf,
    targets: Vec<Target>,
    features: std::collections::BTreeMap<String, serde_json::Value>,
}

#[derive(Deserialize)]
struct Target {
    name: String,
    kind: Vec<String>,
}

/// `cargo`, as cargo itself names it to its subcommands (`$CARGO`), else from `PATH`.
pub(crate) fn cargo() -> Command {
    Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
}

impl Project {
    /// The crate of `manifest_path`, else the one cargo finds from the current folder.
    pub(crate) fn locate(manifest_path: Option<&Path>) -> Result<Project> {
        let manifest = match manifest_path {
            Some(p) => {
                p.canonicalize().with_context(|| format!("manifest path `{}` does not exist", p.display()))?
            }
            None => {
                let out = cargo()
                    .args(["locate-project", "--message-format", "plain"])
                    .output()
                    .context("could not run cargo")?;
                if !out.status.success() {
                    bail!(
                        "could not find `Cargo.toml` in `{}` or any parent folder (run it in a worker crate, or give --manifest-path)",
                        std::env::current_dir().unwrap_or_default().display()
                    );
                }
                PathBuf::from(String::from_utf8_lossy(&out.stdout).trim())
            }
        };
        let out = cargo()
            .args(["metadata", "--no-deps", "--format-version", "1", "--manifest-path"])
            .arg(&manifest)
            .output()
            .context("could not run cargo metadata")?;
        if !out.status.success() {
            bail!("cargo metadata failed:\n{}", String::from_utf8_lossy(&out.stderr).trim_end());
        }
        let meta: Metadata = serde_json::from_slice(&out.stdout).context("cargo metadata's answer")?;
        let Some(package) = meta.packages.into_iter().find(|p| same_file(&p.manifest_path, &manifest)) else {
            bail!(
                "`{}` is a workspace manifest: give the worker's own with --manifest-path",
                manifest.display()
            );
        };
        let bins: Vec<String> = package
            .targets
            .into_iter()
            .filter(|t| t.kind.iter().any(|k| k == "bin"))
            .map(|t| t.name)
            .collect();
        let bin = match bins.as_slice() {
            [one] => one.clone(),
            [] => bail!("package `{}` has no binary: a worker is a binary crate (src/main.rs)", package.name),
            many => bail!(
                "package `{}` has several binaries ({}); a worker crate has one",
                package.name,
                many.join(", ")
            ),
        };
        let dir = manifest.parent().context("a manifest path has a folder")?.to_path_buf();
        Ok(Project {
            manifest,
            dir,
            name: package.name,
            version: package.version,
            bin,
            features: package.features.into_keys().collect(),
        })
    }

    /// `cargo SUBCOMMAND --manifest-path M [--release] [--features F] [-q]`, run in the crate's folder.
    pub(crate) fn cargo(&self, subcommand: &str, args: &crate::cli::CrateArgs) -> Command {
        let mut cmd = cargo();
        cmd.arg(subcommand).arg("--manifest-path").arg(&self.manifest).current_dir(&self.dir);
        if args.release {
            cmd.arg("--release");
        }
        if !args.features.is_empty() {
            cmd.arg("--features").arg(args.features.join(","));
        }
        if args.quiet {
            cmd.arg("--quiet");
        }
        cmd
    }
}

fn same_file(a: &Path, b: &Path) -> bool {
    a == b || a.canonicalize().ok().zip(b.canonicalize().ok()).is_some_and(|(a, b)| a == b)
}

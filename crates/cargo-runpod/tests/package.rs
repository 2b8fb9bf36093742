//! The crates a user depends on are ready for crates.io: `cargo package` makes each of them
//! (in dependency order, the unpublished ones resolved from each other's packages), with the
//! metadata crates.io and docs.rs show, the licence files, and no tests or test data; and
//! cargo-runpod's package holds the whole worker template (docs/cargo-runpod.md, "Publishing").
//!
//! `--no-verify`: verifying would compile the seven packages again from their `.crate` files
//! (the AWS SDK's crates among their dependencies) for what the workspace build already
//! compiles from the same sources; the checks below cover what the packages add.

use serde_json::Value;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

/// What is published, in dependency order; every other member says `publish = false`.
const PUBLISHED: &[&str] = &[
    "runpod-protocol",
    "runpod-net",
    "runpod-local",
    "runpod-s3",
    "runpod-worker",
    "runpod-client",
    "cargo-runpod",
];

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().unwrap()
}

fn cargo(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO"))
        .args(args)
        .current_dir(root())
        .env("CARGO_TARGET_DIR", Path::new(env!("CARGO_TARGET_TMPDIR")).join("package-check"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "cargo {args:?} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn the_published_crates_package_with_their_metadata_licences_and_no_tests() {
    let meta: Value =
        serde_json::from_str(&cargo(&["metadata", "--no-deps", "--format-version", "1"])).unwrap();
    let publishable: BTreeSet<&str> = meta["packages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["publish"].is_null())
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(publishable, PUBLISHED.iter().copied().collect(), "the members without `publish = false`");

    for package in meta["packages"].as_array().unwrap().iter().filter(|p| p["publish"].is_null()) {
        let name = package["name"].as_str().unwrap();
        for field in ["description", "repository", "homepage", "documentation", "readme"] {
            assert!(package[field].as_str().is_some_and(|v| !v.is_empty()), "{name}: no {field}");
        }
        assert_eq!(package["license"], "MIT OR Apache-2.0", "{name}");
        assert_eq!(package["documentation"], format!("https://docs.rs/{name}"), "{name}");
        let keywords = package["keywords"].as_array().unwrap();
        assert!((1..=5).contains(&keywords.len()), "{name}: crates.io takes 1 to 5 keywords");
        assert!(!package["categories"].as_array().unwrap().is_empty(), "{name}: no categories");
        assert!(package["metadata"]["docs"]["rs"].is_object(), "{name}: no [package.metadata.docs.rs]");

        let mut args = vec!["package", "--list", "--allow-dirty", "--offline", "-p", name];
        let listed = cargo(&args);
        let files: Vec<&str> = listed.lines().collect();
        for must in ["Cargo.toml", "README.md", "LICENSE-MIT", "LICENSE-APACHE"] {
            assert!(files.contains(&must), "{name}: {must} not packaged: {files:?}");
        }
        let allowed = |f: &str| {
            ["src/", "console/", "template/"].iter().any(|d| f.starts_with(d))
                || matches!(
                    f,
                    "Cargo.toml"
                        | "Cargo.toml.orig"
                        | "Cargo.lock"
                        | "README.md"
                        | "LICENSE-MIT"
                        | "LICENSE-APACHE"
                        | "build.rs"
                        | ".cargo_vcs_info.json"
                )
        };
        let stray: Vec<&&str> = files.iter().filter(|f| !allowed(f)).collect();
        assert!(stray.is_empty(), "{name}: packaged beyond its sources: {stray:?}");
        args.clear();
    }

    // The packages themselves, each against the others' packages (none is on crates.io yet).
    let mut args = vec!["package", "--no-verify", "--allow-dirty", "--offline"];
    for name in PUBLISHED {
        args.extend(["-p", name]);
    }
    cargo(&args);
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("package-check/package");
    for name in PUBLISHED {
        let file = dir.join(format!("{name}-{}.crate", env!("CARGO_PKG_VERSION")));
        assert!(file.is_file(), "{} not made", file.display());
    }
}

#[test]
fn cargo_runpods_package_holds_the_whole_template() {
    // What `template/` packages (links to templates/worker; two under other names, see build.rs).
    let listed = cargo(&["package", "--list", "--allow-dirty", "--offline", "-p", "cargo-runpod"]);
    let packaged: BTreeSet<String> = listed
        .lines()
        .filter_map(|f| f.strip_prefix("template/"))
        .map(|f| match f {
            "Cargo.toml.in" => "Cargo.toml".to_owned(),
            "gitignore" => ".gitignore".to_owned(),
            _ => f.to_owned(),
        })
        .collect();
    // The template's files, but what building it in place leaves and its in-repository patch
    // (`cargo runpod new` writes its own .cargo/config.toml).
    let mut template = BTreeSet::new();
    walk(&root().join("templates/worker"), Path::new(""), &mut template);
    template.remove(".cargo/config.toml");
    template.remove("Cargo.lock");
    assert_eq!(
        packaged, template,
        "crates/cargo-runpod/template/ must link every file of templates/worker (add a link for a new one)"
    );
}

fn walk(dir: &Path, rel: &Path, out: &mut BTreeSet<String>) {
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let name = entry.file_name();
        let rel = rel.join(&name);
        if entry.file_type().unwrap().is_dir() {
            if name != "target" {
                walk(&entry.path(), &rel, out);
            }
        } else {
            out.insert(rel.to_string_lossy().into_owned());
        }
    }
}

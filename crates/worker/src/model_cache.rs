//! Models cached by the platform: with a cached model set on the endpoint, Runpod puts the
//! Hugging Face repository on the worker's disk before the worker starts, in the Hugging Face
//! cache layout under `/runpod-volume/huggingface-cache/hub/` (docs/model-cache.md):
//!
//! ```text
//! /runpod-volume/huggingface-cache/hub/models--{org}--{name}/
//!     refs/main                  the commit hash `main` points to
//!     snapshots/{hash}/...       the repository's files at that commit
//! ```
//!
//! [`cached_model`] resolves a model id to that snapshot folder, so a worker loads the cached
//! copy instead of downloading it. `RUNPOD_HF_CACHE` moves the root (for tests, or a cache of
//! your own), and a set `HF_HUB_CACHE` (the Hugging Face libraries' cache) is searched after it.
//!
//! ```
//! # let root = tempfile_dir();
//! # fn tempfile_dir() -> std::path::PathBuf {
//! #     let d = std::env::temp_dir().join(format!("rp-model-cache-doc-{}", std::process::id()));
//! #     std::fs::create_dir_all(&d).unwrap(); d
//! # }
//! use runpod_worker::model_cache::cached_model_in;
//!
//! let repo = root.join("models--sentence-transformers--all-MiniLM-L6-v2");
//! std::fs::create_dir_all(repo.join("refs")).unwrap();
//! std::fs::create_dir_all(repo.join("snapshots/c9745ed1d9f207416be6d2e6f8de32d1f16199bf")).unwrap();
//! std::fs::write(repo.join("refs/main"), "c9745ed1d9f207416be6d2e6f8de32d1f16199bf\n").unwrap();
//!
//! let dir = cached_model_in(&root, "sentence-transformers/all-MiniLM-L6-v2").unwrap();
//! assert!(dir.ends_with("snapshots/c9745ed1d9f207416be6d2e6f8de32d1f16199bf"));
//! assert_eq!(cached_model_in(&root, "someone/else"), None);
//! # std::fs::remove_dir_all(&root).unwrap();
//! ```

use std::path::{Path, PathBuf};

/// Where the platform puts cached models.
pub const PLATFORM_HF_CACHE: &str = "/runpod-volume/huggingface-cache/hub";
/// Replaces [`PLATFORM_HF_CACHE`] as the first folder searched.
pub const ENV_HF_CACHE: &str = "RUNPOD_HF_CACHE";

/// The folders searched, in order: `RUNPOD_HF_CACHE` (else the platform's), then
/// `HF_HUB_CACHE` when set.
pub fn cache_roots() -> Vec<PathBuf> {
    let mut roots = vec![std::env::var_os(ENV_HF_CACHE)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(PLATFORM_HF_CACHE))];
    if let Some(hf) = std::env::var_os("HF_HUB_CACHE").filter(|v| !v.is_empty()) {
        roots.push(PathBuf::from(hf));
    }
    roots
}

/// The snapshot folder of `model_id` in the first cache root that has it (see
/// [`cached_model_in`]), or `None`.
pub fn cached_model(model_id: &str) -> Option<PathBuf> {
    cache_roots().iter().find_map(|root| cached_model_in(root, model_id))
}

/// The snapshot folder of `model_id` under the cache folder `root`, or `None`.
///
/// `model_id` is `org/name`, optionally `:revision` (a branch, a tag or a commit hash, as in
/// the Python SDK's `org/name:revision`). The snapshot is the one `refs/{revision}` (default
/// `main`) names; a commit hash names its own snapshot; with no `refs/main`, the only snapshot,
/// else the first by name (the platform docs' helper does the same).
///
/// The folder found must lie inside `root` once symlinks are resolved: a snapshot (or a
/// `models--…` folder) that is a symlink pointing out of the cache is refused (`None`), so a
/// planted link cannot make the worker load files from elsewhere on the machine.
pub fn cached_model_in(root: &Path, model_id: &str) -> Option<PathBuf> {
    let found = find_snapshot(root, model_id)?;
    let inside = std::fs::canonicalize(root)
        .and_then(|r| std::fs::canonicalize(&found).map(|f| f.starts_with(r)))
        .unwrap_or(false);
    if !inside {
        tracing::warn!(
            model = model_id,
            "the cached snapshot {} resolves outside the cache root {}: ignored",
            found.display(),
            root.display()
        );
        return None;
    }
    Some(found)
}

/// The snapshot folder of `model_id` under `root` by name, before the symlink check.
fn find_snapshot(root: &Path, model_id: &str) -> Option<PathBuf> {
    let (repo, revision) = match model_id.rsplit_once(':') {
        Some((r, rev)) if !rev.is_empty() => (r, Some(rev)),
        _ => (model_id, None),
    };
    let (org, name) = repo.split_once('/')?;
    let safe = |s: &str| !s.is_empty() && s != "." && s != ".." && !s.contains(['/', '\\']);
    if !safe(org) || !safe(name) || !revision.is_none_or(safe) {
        return None;
    }
    let repo_dir = root.join(format!("models--{org}--{name}"));
    let snapshots = repo_dir.join("snapshots");
    let snapshot = |hash: &str| Some(snapshots.join(hash.trim())).filter(|p| safe(hash.trim()) && p.is_dir());
    let reference = |r: &str| std::fs::read_to_string(repo_dir.join("refs").join(r)).ok();
    if let Some(rev) = revision {
        return reference(rev).and_then(|h| snapshot(&h)).or_else(|| snapshot(rev));
    }
    if let Some(dir) = reference("main").and_then(|h| snapshot(&h)) {
        return Some(dir);
    }
    let mut all: Vec<PathBuf> = std::fs::read_dir(&snapshots)
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_dir())
        .collect();
    all.sort();
    all.into_iter().next()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_refs_revisions_and_fallbacks() {
        let root = std::env::temp_dir().join(format!("rp-model-cache-{}", std::process::id()));
        let repo = root.join("models--org--m");
        for hash in ["aaa", "bbb"] {
            std::fs::create_dir_all(repo.join("snapshots").join(hash)).unwrap();
        }
        std::fs::create_dir_all(repo.join("refs")).unwrap();
        // No refs/main: the first snapshot by name.
        assert_eq!(cached_model_in(&root, "org/m"), Some(repo.join("snapshots/aaa")));
        std::fs::write(repo.join("refs/main"), "bbb\n").unwrap();
        assert_eq!(cached_model_in(&root, "org/m"), Some(repo.join("snapshots/bbb")));
        std::fs::write(repo.join("refs/v1"), "aaa").unwrap();
        assert_eq!(cached_model_in(&root, "org/m:v1"), Some(repo.join("snapshots/aaa")));
        assert_eq!(cached_model_in(&root, "org/m:bbb"), Some(repo.join("snapshots/bbb")));
        assert_eq!(cached_model_in(&root, "org/m:nope"), None);
        for bad in ["org/other", "m", "org/..", "../org/m", "org/m:../x", ""] {
            assert_eq!(cached_model_in(&root, bad), None, "{bad}");
        }
        // A ref that points outside the snapshots is ignored.
        std::fs::write(repo.join("refs/main"), "../../x").unwrap();
        assert_eq!(cached_model_in(&root, "org/m"), Some(repo.join("snapshots/aaa")));
        std::fs::remove_dir_all(&root).unwrap();
    }

    /// A snapshot that is a symlink out of the cache root is refused; one that points to
    /// another folder inside the root, and a root that is itself a symlink, are followed.
    #[cfg(unix)]
    #[test]
    fn refuses_a_snapshot_symlink_out_of_the_root() {
        let base = std::env::temp_dir().join(format!("rp-model-cache-link-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&base);
        let root = base.join("cache");
        let outside = base.join("elsewhere");
        std::fs::create_dir_all(&outside).unwrap();
        std::fs::write(outside.join("secret.txt"), "not a model").unwrap();
        let repo = root.join("models--org--m");
        std::fs::create_dir_all(repo.join("snapshots")).unwrap();
        std::fs::create_dir_all(repo.join("refs")).unwrap();
        std::os::unix::fs::symlink(&outside, repo.join("snapshots/evil")).unwrap();
        std::fs::write(repo.join("refs/main"), "evil").unwrap();
        assert!(repo.join("snapshots/evil").is_dir(), "the link resolves to a folder");
        assert_eq!(cached_model_in(&root, "org/m"), None);
        assert_eq!(cached_model_in(&root, "org/m:evil"), None);
        // The only snapshot, found by listing, is refused too.
        std::fs::remove_file(repo.join("refs/main")).unwrap();
        assert_eq!(cached_model_in(&root, "org/m"), None);

        // A link that stays inside the root is fine, and so is a root reached through a link.
        std::fs::create_dir_all(root.join("blobs-dir")).unwrap();
        std::fs::remove_file(repo.join("snapshots/evil")).unwrap();
        std::os::unix::fs::symlink(root.join("blobs-dir"), repo.join("snapshots/abc")).unwrap();
        assert_eq!(cached_model_in(&root, "org/m"), Some(repo.join("snapshots/abc")));
        let linked_root = base.join("root-link");
        std::os::unix::fs::symlink(&root, &linked_root).unwrap();
        assert_eq!(
            cached_model_in(&linked_root, "org/m"),
            Some(linked_root.join("models--org--m/snapshots/abc"))
        );
        // A whole repository folder that is a link out of the root is refused.
        let other = outside.join("models--org--x");
        std::fs::create_dir_all(other.join("snapshots/h1")).unwrap();
        std::os::unix::fs::symlink(&other, root.join("models--org--x")).unwrap();
        assert_eq!(cached_model_in(&root, "org/x"), None);
        std::fs::remove_dir_all(&base).unwrap();
    }
}

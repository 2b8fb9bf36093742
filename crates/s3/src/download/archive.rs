//! Extracting a downloaded `.zip` (as the Python SDK's `rp_download.file` does), safely: entry
//! names that would leave the folder are refused, and the bytes written and the number of
//! entries are capped (a million empty files are a bomb too: inodes, and time).

use crate::error::DownloadError;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

/// Extracts the archive at `path` into `dest` (created); returns the files written, in
/// archive order. Fails on a corrupt archive, an entry whose name would land outside `dest`
/// (`../x`, `/etc/x`), an encrypted or unsupported entry, more than `max_bytes` in total, or
/// more than `max_entries` entries (files and folders; counted from the archive's directory
/// before anything is written). Blocking: run it on a blocking thread.
pub fn extract_zip(
    path: &Path,
    dest: &Path,
    max_bytes: u64,
    max_entries: u64,
) -> Result<Vec<PathBuf>, DownloadError> {
    let fail = |reason: String| DownloadError::Archive { path: path.to_owned(), reason };
    let io = |p: &Path| {
        let p = p.to_owned();
        move |source| DownloadError::Io { path: p, source }
    };
    let file = std::fs::File::open(path).map_err(io(path))?;
    let mut zip =
        zip::ZipArchive::new(file).map_err(|e| fail(format!("not a readable zip archive ({e})")))?;
    if zip.len() as u64 > max_entries {
        return Err(fail(format!(
            "it holds {} entries, more than the cap of {max_entries} (RUNPOD_MAX_ARCHIVE_ENTRIES)",
            zip.len()
        )));
    }
    std::fs::create_dir_all(dest).map_err(io(dest))?;
    let mut written = 0u64;
    let mut files = Vec::new();
    for i in 0..zip.len() {
        let mut entry = zip.by_index(i).map_err(|e| fail(format!("entry {i}: {e}")))?;
        let Some(relative) = entry.enclosed_name() else {
            return Err(fail(format!("entry {:?} would be written outside the folder", entry.name())));
        };
        let target = dest.join(&relative);
        if entry.is_dir() {
            std::fs::create_dir_all(&target).map_err(io(&target))?;
            continue;
        }
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent).map_err(io(parent))?;
        }
        let mut out = std::fs::File::create(&target).map_err(io(&target))?;
        // Read one byte past what is left, to tell "exactly at the cap" from "over it".
        let left = max_bytes.saturating_sub(written);
        let mut limited = (&mut entry).take(left.saturating_add(1));
        let n = std::io::copy(&mut limited, &mut out).map_err(|e| match e.kind() {
            std::io::ErrorKind::InvalidData | std::io::ErrorKind::Unsupported | std::io::ErrorKind::Other => {
                fail(format!("entry {:?}: {e}", relative.display()))
            }
            _ => DownloadError::Io { path: target.clone(), source: e },
        })?;
        if n > left {
            return Err(fail(format!("it holds more than {max_bytes} bytes (RUNPOD_MAX_DOWNLOAD_BYTES)")));
        }
        written += n;
        out.flush().map_err(io(&target))?;
        files.push(target);
    }
    Ok(files)
}

/// True when `path` names a `.zip` file (by extension, as the Python SDK decides).
pub(crate) fn is_zip(path: &Path) -> bool {
    path.extension().is_some_and(|e| e.eq_ignore_ascii_case("zip"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use zip::write::SimpleFileOptions;

    fn archive(dir: &Path, entries: &[(&str, &[u8])]) -> PathBuf {
        let path = dir.join("a.zip");
        let mut w = zip::ZipWriter::new(std::fs::File::create(&path).unwrap());
        for (name, data) in entries {
            w.start_file(*name, SimpleFileOptions::default()).unwrap();
            w.write_all(data).unwrap();
        }
        w.finish().unwrap();
        path
    }

    #[test]
    fn extracts_and_refuses_escapes_and_bombs() {
        let dir = tempfile::tempdir().unwrap();
        let zip = archive(dir.path(), &[("a.txt", b"alpha"), ("sub/b.txt", b"beta")]);
        let out = dir.path().join("out");
        let files = extract_zip(&zip, &out, 1000, 2).unwrap();
        assert_eq!(files, [out.join("a.txt"), out.join("sub/b.txt")]);
        assert_eq!(std::fs::read_to_string(out.join("sub/b.txt")).unwrap(), "beta");

        let err = extract_zip(&zip, &dir.path().join("small"), 6, 2).unwrap_err().to_string();
        assert!(err.contains("more than 6 bytes"), "{err}");
        assert!(extract_zip(&zip, &dir.path().join("exact"), 9, 2).is_ok(), "exactly at the cap is fine");

        // One entry over the entry cap is refused before anything is written.
        let err = extract_zip(&zip, &dir.path().join("few"), 1000, 1).unwrap_err().to_string();
        assert!(err.contains("2 entries, more than the cap of 1 (RUNPOD_MAX_ARCHIVE_ENTRIES)"), "{err}");
        assert!(!dir.path().join("few").exists());

        let evil = archive(dir.path(), &[("../escaped.txt", b"x")]);
        let err = extract_zip(&evil, &dir.path().join("evil"), 1000, 2).unwrap_err().to_string();
        assert!(err.contains("outside the folder"), "{err}");
        assert!(!dir.path().join("escaped.txt").exists());

        let junk = dir.path().join("junk.zip");
        std::fs::write(&junk, b"not a zip").unwrap();
        let err = extract_zip(&junk, &dir.path().join("junk"), 1000, 2).unwrap_err().to_string();
        assert!(err.contains("not a readable zip archive"), "{err}");
    }
}

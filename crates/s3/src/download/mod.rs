//! Downloading a job's input URLs (`http`, `https`, `s3://bucket/key`) into a temporary
//! directory: in parallel, with retries, a size cap and a server-side request forgery guard.

mod archive;
mod disposition;

pub use archive::extract_zip;

use crate::error::{error_chain, redact_url, DownloadError, StorageError};
use crate::sdk_logs::Quiet;
use crate::storage::Storage;
use futures::{StreamExt, TryStreamExt};
use runpod_net::{AddressClass, AddressPolicy, GuardedResolver, MixedAnswer};
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::io::AsyncWriteExt;

/// Per-file byte cap, and the cap on the bytes extracted from one archive
/// (`RUNPOD_MAX_DOWNLOAD_BYTES`, default 1 GiB).
pub const ENV_MAX_DOWNLOAD_BYTES: &str = "RUNPOD_MAX_DOWNLOAD_BYTES";
/// Cap on the entries (files and folders) of one extracted archive (default 10,000).
pub const ENV_MAX_ARCHIVE_ENTRIES: &str = "RUNPOD_MAX_ARCHIVE_ENTRIES";
/// `true`, `1` or `yes` lets downloads reach any address: private, loopback, link-local.
pub const ENV_ALLOW_PRIVATE_DOWNLOAD_URLS: &str = "RUNPOD_ALLOW_PRIVATE_DOWNLOAD_URLS";
/// Default of [`ENV_MAX_DOWNLOAD_BYTES`]: 1 GiB. The Python SDK's 5 GiB is more than one job's
/// input should be: eight downloads at once could fill a worker's container disk (see
/// `docs/worker-api.md`, "Downloads").
pub const DEFAULT_MAX_DOWNLOAD_BYTES: u64 = 1024 * 1024 * 1024;
/// Default of [`ENV_MAX_ARCHIVE_ENTRIES`]: 10,000 entries.
pub const DEFAULT_MAX_ARCHIVE_ENTRIES: u64 = 10_000;

/// How downloads behave.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
#[must_use]
pub struct DownloadOptions {
    /// Largest file accepted, in bytes; also the most bytes extracted from one archive.
    pub max_bytes: u64,
    /// Most entries (files and folders) extracted from one archive.
    pub max_archive_entries: u64,
    /// Allow non-public destinations (loopback, private networks, link-local).
    pub allow_private: bool,
    /// Files downloaded at once.
    pub concurrency: usize,
    /// Tries per file for connection errors, timeouts, 408, 429 and 5xx answers.
    pub attempts: u32,
    /// Redirects followed per file (each re-checked).
    pub max_redirects: usize,
    /// Time allowed to connect.
    pub connect_timeout: Duration,
    /// Longest wait for the next bytes of an answer.
    pub read_timeout: Duration,
}

impl Default for DownloadOptions {
    fn default() -> Self {
        DownloadOptions {
            max_bytes: DEFAULT_MAX_DOWNLOAD_BYTES,
            max_archive_entries: DEFAULT_MAX_ARCHIVE_ENTRIES,
            allow_private: false,
            concurrency: 8,
            attempts: 3,
            max_redirects: 5,
            connect_timeout: Duration::from_secs(10),
            read_timeout: Duration::from_secs(60),
        }
    }
}

impl DownloadOptions {
    /// Sets the largest file accepted, in bytes.
    pub fn with_max_bytes(mut self, n: u64) -> Self {
        self.max_bytes = n;
        self
    }

    /// Sets the most entries extracted from one archive.
    pub fn with_max_archive_entries(mut self, n: u64) -> Self {
        self.max_archive_entries = n;
        self
    }

    /// Allows (or not) non-public destinations: loopback, private networks, link-local.
    pub fn with_allow_private(mut self, yes: bool) -> Self {
        self.allow_private = yes;
        self
    }

    /// Sets how many files are downloaded at once.
    pub fn with_concurrency(mut self, n: usize) -> Self {
        self.concurrency = n;
        self
    }

    /// Sets the tries per file.
    pub fn with_attempts(mut self, n: u32) -> Self {
        self.attempts = n;
        self
    }

    /// Sets the redirects followed per file.
    pub fn with_max_redirects(mut self, n: usize) -> Self {
        self.max_redirects = n;
        self
    }

    /// Sets the time allowed to connect.
    pub fn with_connect_timeout(mut self, d: Duration) -> Self {
        self.connect_timeout = d;
        self
    }

    /// Sets the longest wait for the next bytes of an answer.
    pub fn with_read_timeout(mut self, d: Duration) -> Self {
        self.read_timeout = d;
        self
    }

    /// Defaults with `RUNPOD_MAX_DOWNLOAD_BYTES`, `RUNPOD_MAX_ARCHIVE_ENTRIES` and
    /// `RUNPOD_ALLOW_PRIVATE_DOWNLOAD_URLS` applied.
    pub fn from_env() -> Self {
        Self::from_vars(|k| std::env::var(k).ok())
    }

    /// [`DownloadOptions::from_env`] over any variable lookup. A cap that is not a positive
    /// integer is ignored (with a warning), as the Python SDK does.
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Self {
        let mut o = DownloadOptions::default();
        let cap = |name: &str, default: u64| match var(name) {
            None => default,
            Some(raw) => match raw.trim().parse::<u64>() {
                Ok(n) if n > 0 => n,
                _ => {
                    tracing::warn!("{name}={raw:?} is not a positive integer; using {default}");
                    default
                }
            },
        };
        o.max_bytes = cap(ENV_MAX_DOWNLOAD_BYTES, o.max_bytes);
        o.max_archive_entries = cap(ENV_MAX_ARCHIVE_ENTRIES, o.max_archive_entries);
        if let Some(raw) = var(ENV_ALLOW_PRIVATE_DOWNLOAD_URLS) {
            o.allow_private = matches!(raw.trim().to_ascii_lowercase().as_str(), "1" | "true" | "yes");
        }
        o
    }
}

/// Files downloaded into a temporary directory that is deleted when this value is dropped
/// (keep it alive for as long as the job uses the files).
#[derive(Debug)]
pub struct Downloads {
    dir: tempfile::TempDir,
    files: Vec<PathBuf>,
    max_bytes: u64,
    max_entries: u64,
}

impl Downloads {
    /// The directory holding the files.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The files, in the order of the URLs.
    pub fn files(&self) -> &[PathBuf] {
        &self.files
    }

    /// Extracts every downloaded `.zip` (by its name, which comes from the server's
    /// `Content-Disposition` when it sends one, else from the URL) into a folder beside it
    /// named after it without `.zip`, as the Python SDK's `rp_download.file` does. Returns one
    /// entry per file, in URL order: the folder for an archive, `None` for any other file.
    /// The bytes extracted from each archive are capped like a download
    /// (`RUNPOD_MAX_DOWNLOAD_BYTES`), and so are its entries (`RUNPOD_MAX_ARCHIVE_ENTRIES`,
    /// checked before anything is written); entries that would land outside the folder are
    /// refused.
    pub async fn extract_zips(&self) -> Result<Vec<Option<PathBuf>>, DownloadError> {
        let files = self.files.clone();
        let (max, max_entries) = (self.max_bytes, self.max_entries);
        let work = move || {
            files
                .iter()
                .map(|f| {
                    if !archive::is_zip(f) {
                        return Ok(None);
                    }
                    let dest = f.with_extension("");
                    archive::extract_zip(f, &dest, max, max_entries)?;
                    Ok(Some(dest))
                })
                .collect()
        };
        tokio::task::spawn_blocking(work).await.map_err(|e| DownloadError::Io {
            path: self.dir().to_owned(),
            source: std::io::Error::other(format!("the extraction thread failed: {e}")),
        })?
    }

    /// Deletes the directory now, reporting errors (dropping does the same silently).
    pub fn close(self) -> std::io::Result<()> {
        self.dir.close()
    }
}

/// Downloads input URLs. Build one per process (or per job with [`Downloader::with_storage`])
/// and reuse it: it holds a connection pool.
#[derive(Debug, Clone)]
pub struct Downloader {
    http: reqwest::Client,
    options: DownloadOptions,
    storage: Option<Storage>,
}

impl Downloader {
    /// A downloader with `options`. Unless `allow_private` is set, proxies from the environment
    /// are not used: the connection must go straight to the checked address. Addresses are
    /// classified by `runpod_net`; a name with one refused address is refused whole.
    pub fn new(options: DownloadOptions) -> Result<Self, DownloadError> {
        let mut builder = reqwest::Client::builder()
            .user_agent(concat!("runpod-rs/", env!("CARGO_PKG_VERSION"), " (runpod-s3)"))
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(options.connect_timeout)
            .read_timeout(options.read_timeout)
            .dns_resolver(resolver(options.allow_private));
        if !options.allow_private {
            builder = builder.no_proxy();
        }
        let http = builder.build().map_err(|e| DownloadError::Transport {
            url: String::new(),
            message: format!("building the HTTP client: {}", error_chain(&e)),
        })?;
        Ok(Downloader { http, options, storage: None })
    }

    /// The same downloader reading `s3://` URLs with `storage`'s client.
    #[must_use]
    pub fn with_storage(mut self, storage: Option<Storage>) -> Self {
        self.storage = storage;
        self
    }

    /// The options in use.
    pub fn options(&self) -> &DownloadOptions {
        &self.options
    }

    /// Downloads every URL into a new temporary directory, several at once. Fails (and removes
    /// the directory) when any download fails; the error names the URL.
    pub async fn download<S: AsRef<str>>(&self, urls: &[S]) -> Result<Downloads, DownloadError> {
        self.download_with_prefix("runpod-download-", urls).await
    }

    /// [`Downloader::download`] into a directory named after the job.
    pub async fn download_for_job<S: AsRef<str>>(
        &self,
        job_id: &str,
        urls: &[S],
    ) -> Result<Downloads, DownloadError> {
        let prefix = format!("runpod-job-{}-", sanitize(job_id, 40));
        self.download_with_prefix(&prefix, urls).await
    }

    async fn download_with_prefix<S: AsRef<str>>(
        &self,
        prefix: &str,
        urls: &[S],
    ) -> Result<Downloads, DownloadError> {
        let dir = tempfile::Builder::new()
            .prefix(prefix)
            .tempdir()
            .map_err(|source| DownloadError::Io { path: std::env::temp_dir(), source })?;
        let files = self.download_into(dir.path(), urls).await?;
        Ok(Downloads {
            dir,
            files,
            max_bytes: self.options.max_bytes,
            max_entries: self.options.max_archive_entries,
        })
    }

    /// Downloads every URL into `dir` as `{index}-{file name}`, the name from the answer's
    /// `Content-Disposition` when it has one, else from the URL; returns the paths in URL order.
    pub async fn download_into<S: AsRef<str>>(
        &self,
        dir: &Path,
        urls: &[S],
    ) -> Result<Vec<PathBuf>, DownloadError> {
        // The futures are built first (they do nothing until polled): a stream that maps with
        // a borrowing closure would make callers' futures fail the `Send` check of handlers.
        let mut jobs = Vec::with_capacity(urls.len());
        for (i, url) in urls.iter().enumerate() {
            let url = url.as_ref();
            let path = dir.join(format!("{i}-{}", file_name_for(url)));
            jobs.push(async move {
                let (_, named) = self.fetch(url, &path).await?;
                let Some(name) = named.map(|n| sanitize(&n, 100)).filter(|n| !n.trim_matches('.').is_empty())
                else {
                    return Ok::<_, DownloadError>(path);
                };
                let renamed = dir.join(format!("{i}-{name}"));
                tokio::fs::rename(&path, &renamed)
                    .await
                    .map_err(|source| DownloadError::Io { path: renamed.clone(), source })?;
                Ok(renamed)
            });
        }
        futures::stream::iter(jobs).buffered(self.options.concurrency.max(1)).try_collect().await
    }

    /// Downloads one URL to `dest` (created or truncated); returns the byte count.
    pub async fn download_to(&self, url: &str, dest: &Path) -> Result<u64, DownloadError> {
        Ok(self.fetch(url, dest).await?.0)
    }

    /// [`Downloader::download_to`], and the file name of the answer's `Content-Disposition`.
    async fn fetch(&self, url: &str, dest: &Path) -> Result<(u64, Option<String>), DownloadError> {
        if let Some(rest) = url.strip_prefix("s3://") {
            return Ok((self.download_s3(url, rest, dest).await?, None));
        }
        let mut attempt = 1;
        loop {
            match self.try_http(url, dest).await {
                Ok(n) => return Ok(n),
                Err(e) if attempt < self.options.attempts.max(1) && is_retryable(&e) => {
                    let wait = Duration::from_millis(250 * (1 << (attempt - 1).min(6)));
                    tracing::warn!(url = %redact_url(url), attempt, error = %e, "download failed; retrying in {wait:?}");
                    tokio::time::sleep(wait).await;
                    attempt += 1;
                }
                Err(e) => return Err(e),
            }
        }
    }

    async fn download_s3(&self, url: &str, rest: &str, dest: &Path) -> Result<u64, DownloadError> {
        let invalid =
            |reason: &str| DownloadError::InvalidUrl { url: redact_url(url), reason: reason.into() };
        let (bucket, key) = rest.split_once('/').ok_or_else(|| invalid("expected s3://bucket/key"))?;
        if bucket.is_empty() || key.is_empty() {
            return Err(invalid("expected s3://bucket/key"));
        }
        let storage = self.storage.as_ref().ok_or_else(|| DownloadError::Storage {
            url: url.to_owned(),
            source: Box::new(StorageError::NotConfigured),
        })?;
        storage.get_to_file(bucket, key, dest, self.options.max_bytes).await.map_err(|source| match source {
            StorageError::TooLarge { limit, .. } => DownloadError::TooLarge { url: url.to_owned(), limit },
            source => DownloadError::Storage { url: url.to_owned(), source: Box::new(source) },
        })
    }

    /// One try: follows redirects (each hop checked), streams the body to `dest` under the cap;
    /// returns the byte count and the `Content-Disposition` file name, if any.
    async fn try_http(&self, url: &str, dest: &Path) -> Result<(u64, Option<String>), DownloadError> {
        let shown = redact_url(url);
        let mut current = url::Url::parse(url)
            .map_err(|e| DownloadError::InvalidUrl { url: shown.clone(), reason: e.to_string() })?;
        for _ in 0..=self.options.max_redirects {
            self.check_url(&current)?;
            let response = self
                .http
                .get(current.clone())
                .send()
                .quiet()
                .await
                .map_err(|e| transport_error(&redact_url(current.as_str()), e))?;
            let status = response.status();
            if status.is_redirection() && status != reqwest::StatusCode::NOT_MODIFIED {
                let location = response
                    .headers()
                    .get(reqwest::header::LOCATION)
                    .and_then(|v| v.to_str().ok())
                    .ok_or_else(|| DownloadError::InvalidUrl {
                        url: redact_url(current.as_str()),
                        reason: format!("redirect ({status}) without a Location"),
                    })?;
                current = current.join(location).map_err(|e| DownloadError::InvalidUrl {
                    url: redact_url(current.as_str()),
                    reason: format!("bad redirect Location: {e}"),
                })?;
                continue;
            }
            if !status.is_success() {
                return Err(DownloadError::Status {
                    url: redact_url(current.as_str()),
                    status: status.as_u16(),
                });
            }
            let named = response
                .headers()
                .get(reqwest::header::CONTENT_DISPOSITION)
                .and_then(|v| v.to_str().ok())
                .and_then(disposition::file_name);
            let n = self.save(response, &redact_url(current.as_str()), dest).await?;
            return Ok((n, named));
        }
        Err(DownloadError::TooManyRedirects { url: shown, limit: self.options.max_redirects })
    }

    /// Scheme allow-list, and the address check for IP-literal hosts (names are checked by the
    /// resolver when the connection is made).
    fn check_url(&self, u: &url::Url) -> Result<(), DownloadError> {
        let shown = redact_url(u.as_str());
        if u.scheme() != "http" && u.scheme() != "https" {
            return Err(DownloadError::InvalidUrl {
                url: shown,
                reason: format!("scheme {:?} is not http, https or s3", u.scheme()),
            });
        }
        if u.host().is_none() {
            return Err(DownloadError::InvalidUrl { url: shown, reason: "no host".into() });
        }
        resolver(self.options.allow_private)
            .check_url(u)
            .map_err(|refused| DownloadError::Blocked { url: shown, reason: refused.to_string() })
    }

    async fn save(
        &self,
        mut response: reqwest::Response,
        shown: &str,
        dest: &Path,
    ) -> Result<u64, DownloadError> {
        let limit = self.options.max_bytes;
        if response.content_length().is_some_and(|n| n > limit) {
            return Err(DownloadError::TooLarge { url: shown.to_owned(), limit });
        }
        let io_err = |source| DownloadError::Io { path: dest.to_owned(), source };
        let mut file = tokio::fs::File::create(dest).await.map_err(io_err)?;
        let mut written = 0u64;
        while let Some(chunk) = response.chunk().await.map_err(|e| transport_error(shown, e))? {
            written += chunk.len() as u64;
            if written > limit {
                return Err(DownloadError::TooLarge { url: shown.to_owned(), limit });
            }
            file.write_all(&chunk).await.map_err(io_err)?;
        }
        file.flush().await.map_err(io_err)?;
        Ok(written)
    }
}

/// Which addresses downloads may reach: public ones, or any with `allow_private`.
#[derive(Debug, Clone, Copy)]
struct DownloadTargets {
    allow_private: bool,
}

impl AddressPolicy for DownloadTargets {
    fn allows(&self, class: AddressClass) -> bool {
        self.allow_private || class == AddressClass::Public
    }
}

/// The downloads' guarded resolver: one refused address refuses the name.
fn resolver(allow_private: bool) -> GuardedResolver<DownloadTargets> {
    GuardedResolver::new(DownloadTargets { allow_private }, MixedAnswer::RefuseAll)
}

fn is_retryable(e: &DownloadError) -> bool {
    match e {
        DownloadError::Transport { .. } => true,
        DownloadError::Status { status, .. } => *status >= 500 || *status == 429 || *status == 408,
        _ => false,
    }
}

/// A reqwest error as a download error: `Blocked` when the guard refused the address.
fn transport_error(shown: &str, e: reqwest::Error) -> DownloadError {
    if let Some(refused) = runpod_net::find_refused(&e) {
        return DownloadError::Blocked { url: shown.to_owned(), reason: refused.to_string() };
    }
    DownloadError::Transport { url: shown.to_owned(), message: error_chain(&e.without_url()) }
}

/// The last path segment of a URL, made safe as a file name; `download` when there is none.
fn file_name_for(url: &str) -> String {
    let path = if let Some(rest) = url.strip_prefix("s3://") {
        rest.split_once('/').map(|(_, k)| k.to_owned()).unwrap_or_default()
    } else {
        url::Url::parse(url).map(|u| u.path().to_owned()).unwrap_or_default()
    };
    let last = path.rsplit('/').next().unwrap_or("");
    let name = sanitize(last, 100);
    if name.trim_matches('.').is_empty() {
        "download".to_owned()
    } else {
        name
    }
}

/// Keeps ASCII letters, digits, `.`, `-`, `_`; anything else becomes `_`; at most `max` chars.
fn sanitize(s: &str, max: usize) -> String {
    s.chars()
        .map(|c| if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') { c } else { '_' })
        .take(max)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn options_from_env() {
        let env: HashMap<&str, &str> = [
            (ENV_MAX_DOWNLOAD_BYTES, "1024"),
            (ENV_MAX_ARCHIVE_ENTRIES, " 50 "),
            (ENV_ALLOW_PRIVATE_DOWNLOAD_URLS, "TRUE"),
        ]
        .into();
        let o = DownloadOptions::from_vars(|k| env.get(k).map(|v| v.to_string()));
        assert_eq!((o.max_bytes, o.max_archive_entries, o.allow_private), (1024, 50, true));
        let env: HashMap<&str, &str> = [
            (ENV_MAX_DOWNLOAD_BYTES, "lots"),
            (ENV_MAX_ARCHIVE_ENTRIES, "0"),
            (ENV_ALLOW_PRIVATE_DOWNLOAD_URLS, "no"),
        ]
        .into();
        let o = DownloadOptions::from_vars(|k| env.get(k).map(|v| v.to_string()));
        assert_eq!(
            (o.max_bytes, o.max_archive_entries, o.allow_private),
            (DEFAULT_MAX_DOWNLOAD_BYTES, DEFAULT_MAX_ARCHIVE_ENTRIES, false)
        );
        assert_eq!((DEFAULT_MAX_DOWNLOAD_BYTES, DEFAULT_MAX_ARCHIVE_ENTRIES), (1 << 30, 10_000));
        assert_eq!(DownloadOptions::from_vars(|_| None), DownloadOptions::default());
    }

    #[test]
    fn file_names_are_safe() {
        assert_eq!(file_name_for("https://x.org/a/b/photo.png?sig=1"), "photo.png");
        assert_eq!(file_name_for("https://x.org/"), "download");
        assert_eq!(file_name_for("https://x.org/%2e%2e"), "download");
        assert_eq!(file_name_for("https://x.org/a%20b.txt"), "a_20b.txt");
        assert_eq!(file_name_for("https://x.org/.."), "download");
        assert_eq!(file_name_for("s3://bucket/dir/in put.wav"), "in_put.wav");
        assert_eq!(file_name_for("s3://bucket"), "download");
    }

    #[tokio::test]
    async fn refuses_bad_schemes_and_literal_private_addresses() {
        let d = Downloader::new(DownloadOptions::default()).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("f");
        for (url, blocked) in [
            ("file:///etc/passwd", false),
            ("ftp://example.com/x", false),
            ("http://127.0.0.1:1/x", true),
            ("http://[::1]:1/x", true),
            ("http://169.254.169.254/latest/meta-data/", true),
            ("http://[::ffff:10.0.0.1]/x", true),
            ("http://2130706433/x", true), // 127.0.0.1 in decimal
            ("http://localhost:1/x", true),
        ] {
            let err = d.download_to(url, &dest).await.unwrap_err();
            if blocked {
                assert!(matches!(err, DownloadError::Blocked { .. }), "{url}: {err}");
                assert!(err.to_string().contains(ENV_ALLOW_PRIVATE_DOWNLOAD_URLS), "{err}");
            } else {
                assert!(matches!(err, DownloadError::InvalidUrl { .. }), "{url}: {err}");
            }
        }
        let err = d.download_to("s3://bucket/key", &dest).await.unwrap_err();
        assert!(
            matches!(&err, DownloadError::Storage { source, .. } if matches!(**source, StorageError::NotConfigured)),
            "{err}"
        );
    }
}

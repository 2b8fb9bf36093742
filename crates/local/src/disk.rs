//! The data directory: jobs and pending webhooks in one redb file, `jobs.redb`, so that they
//! survive a restart.
//!
//! redb is a pure-Rust embedded key-value store (no C code, no dependency of its own, one
//! file, ACID transactions with copy-on-write B-trees and checksummed commit slots), stable
//! since 1.0 and maintained. One writer thread commits the store's journal in batches: every
//! change made while the previous commit ran goes into the next, so the cost of a commit is
//! shared by all the requests waiting for it. Commits are written with the `Immediate`
//! durability level over a file backend whose `sync_data` flushes to the disk only with
//! `--fsync`: a commit is in the kernel's page cache when it returns, which a killed process
//! (SIGKILL included) cannot lose; only `--fsync` makes it survive a power loss as well.
//!
//! Tables: `jobs` (id to [`JobRecord`] JSON), `inputs` and `outputs` (id to JSON), `chunks`
//! ((id, index) to JSON, the unread stream chunks), `webhooks` (key to [`PendingHook`] JSON).

use crate::store::journal::{Batch, HookChange, JobRecord, Restored};
use crate::webhook::PendingHook;
use redb::backends::FileBackend;
use redb::{
    Database, Durability, ReadableDatabase, ReadableTable, StorageBackend, TableDefinition, TableHandle,
};
use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;
use tokio::sync::watch;

const JOBS: TableDefinition<&str, &[u8]> = TableDefinition::new("jobs");
const INPUTS: TableDefinition<&str, &[u8]> = TableDefinition::new("inputs");
const OUTPUTS: TableDefinition<&str, &[u8]> = TableDefinition::new("outputs");
const CHUNKS: TableDefinition<(&str, u64), &[u8]> = TableDefinition::new("chunks");
const WEBHOOKS: TableDefinition<u64, &[u8]> = TableDefinition::new("webhooks");

/// The data file's name inside the data directory.
pub(crate) const FILE: &str = "jobs.redb";

/// Why the data directory could not be used.
#[derive(Debug, thiserror::Error)]
pub(crate) enum DiskError {
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("{0}")]
    Db(#[from] redb::Error),
    #[error("a record is not valid JSON: {0}")]
    Json(#[from] serde_json::Error),
}

macro_rules! from_redb {
    ($($t:ty),*) => {$(
        impl From<$t> for DiskError {
            fn from(e: $t) -> Self {
                DiskError::Db(e.into())
            }
        }
    )*};
}
from_redb!(
    redb::DatabaseError,
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError,
    redb::SetDurabilityError
);

/// What the data directory held at start.
#[derive(Debug, Default)]
pub(crate) struct Loaded {
    pub jobs: Vec<Restored>,
    pub hooks: Vec<(u64, PendingHook)>,
}

/// The data file, open (or, after a failed commit, to be opened again).
pub(crate) struct Disk {
    /// `None` after a failed commit until it is opened again: redb refuses every later
    /// transaction of a database that saw an I/O error.
    db: Option<Database>,
    path: PathBuf,
    fsync: bool,
}

impl Disk {
    /// Opens (or creates) `dir/jobs.redb` and reads everything it holds. Fails when another
    /// process has it open. A file of 0 bytes (a first start killed before the file got its
    /// header) holds no jobs: it is started over, and the log says so.
    pub(crate) fn open(dir: &Path, fsync: bool) -> Result<(Disk, Loaded), DiskError> {
        std::fs::create_dir_all(dir)?;
        let path = dir.join(FILE);
        if std::fs::metadata(&path).is_ok_and(|m| m.is_file() && m.len() == 0) {
            tracing::warn!(
                file = %path.display(),
                "the data file is empty (0 bytes: a first start stopped before it was written); starting with no jobs"
            );
        }
        let db = Self::open_db(&path, fsync)?;
        let disk = Disk { db: Some(db), path, fsync };
        let loaded = disk.load()?;
        Ok((disk, loaded))
    }

    fn open_db(path: &Path, fsync: bool) -> Result<Database, DiskError> {
        let mut options = std::fs::OpenOptions::new();
        options.read(true).write(true).create(true).truncate(false);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let file = options.open(path)?;
        let backend = Backend { file: FileBackend::new(file)?, fsync };
        Ok(Database::builder().create_with_backend(backend)?)
    }

    fn db(&self) -> Result<&Database, DiskError> {
        self.db.as_ref().ok_or_else(|| DiskError::Io(std::io::Error::other("the data file is not open")))
    }

    /// Closes the data file and opens it again (redb then recovers its last commit): after a
    /// failed commit, the only way to write again.
    fn reopen(&mut self) -> Result<(), DiskError> {
        self.db = None;
        self.db = Some(Self::open_db(&self.path, self.fsync)?);
        Ok(())
    }

    fn load(&self) -> Result<Loaded, DiskError> {
        let mut loaded = Loaded::default();
        let tx = self.db()?.begin_read()?;
        let tables: Vec<String> = tx.list_tables()?.map(|t| t.name().to_owned()).collect();
        if !tables.iter().any(|t| t == JOBS.name()) {
            return Ok(loaded);
        }
        let jobs = tx.open_table(JOBS)?;
        let inputs = tx.open_table(INPUTS)?;
        let outputs = tx.open_table(OUTPUTS)?;
        let chunks = tx.open_table(CHUNKS)?;
        for row in jobs.iter()? {
            let (id, record) = row?;
            let id = id.value().to_owned();
            let record: JobRecord = serde_json::from_slice(record.value())?;
            let json =
                |v: Option<redb::AccessGuard<'_, &[u8]>>| -> Result<Option<serde_json::Value>, DiskError> {
                    Ok(match v {
                        Some(v) => Some(serde_json::from_slice(v.value())?),
                        None => None,
                    })
                };
            let input = if record.has_input { json(inputs.get(id.as_str())?)? } else { None };
            let output = if record.has_output { json(outputs.get(id.as_str())?)? } else { None };
            let mut stream = Vec::new();
            for c in chunks.range((id.as_str(), record.stream_base)..=(id.as_str(), u64::MAX))? {
                stream.push(serde_json::from_slice(c?.1.value())?);
            }
            loaded.jobs.push(Restored { id, record, input, output, chunks: stream });
        }
        for row in tx.open_table(WEBHOOKS)?.iter()? {
            let (key, hook) = row?;
            loaded.hooks.push((key.value(), serde_json::from_slice(hook.value())?));
        }
        Ok(loaded)
    }

    /// Commits `batch` in one transaction.
    pub(crate) fn write(&self, batch: &Batch) -> Result<(), DiskError> {
        let mut tx = self.db()?.begin_write()?;
        tx.set_durability(Durability::Immediate)?;
        {
            let mut jobs = tx.open_table(JOBS)?;
            let mut inputs = tx.open_table(INPUTS)?;
            let mut outputs = tx.open_table(OUTPUTS)?;
            let mut chunks = tx.open_table(CHUNKS)?;
            let mut hooks = tx.open_table(WEBHOOKS)?;
            for w in &batch.jobs {
                let id = w.id.as_str();
                jobs.insert(id, serde_json::to_vec(&w.record)?.as_slice())?;
                if let Some(input) = &w.input {
                    inputs.insert(id, serde_json::to_vec(&**input)?.as_slice())?;
                }
                if w.drop_input {
                    inputs.remove(id)?;
                }
                match &w.output {
                    Some(Some(out)) => {
                        outputs.insert(id, serde_json::to_vec(&**out)?.as_slice())?;
                    }
                    Some(None) => {
                        outputs.remove(id)?;
                    }
                    None => {}
                }
                for (n, chunk) in &w.chunks {
                    chunks.insert((id, *n), serde_json::to_vec(chunk)?.as_slice())?;
                }
                if let Some(below) = w.drop_chunks_below {
                    chunks.retain_in((id, 0)..(id, below), |_, _| false)?;
                }
            }
            for id in &batch.gone {
                let id = id.as_str();
                jobs.remove(id)?;
                inputs.remove(id)?;
                outputs.remove(id)?;
                chunks
                    .retain_in((Bound::Included((id, 0)), Bound::Included((id, u64::MAX))), |_, _| false)?;
            }
            for change in &batch.hooks {
                match change {
                    HookChange::Put(key, hook) => {
                        hooks.insert(*key, serde_json::to_vec(hook)?.as_slice())?;
                    }
                    HookChange::Delete(key) => {
                        hooks.remove(*key)?;
                    }
                }
            }
        }
        tx.commit()?;
        Ok(())
    }
}

/// redb's file backend, with `sync_data` a no-op unless `fsync` is on (see the module doc).
#[derive(Debug)]
struct Backend {
    file: FileBackend,
    fsync: bool,
}

impl StorageBackend for Backend {
    fn len(&self) -> Result<u64, std::io::Error> {
        self.file.len()
    }

    fn read(&self, offset: u64, out: &mut [u8]) -> Result<(), std::io::Error> {
        self.file.read(offset, out)
    }

    fn set_len(&self, len: u64) -> Result<(), std::io::Error> {
        self.file.set_len(len)
    }

    fn sync_data(&self) -> Result<(), std::io::Error> {
        if self.fsync {
            self.file.sync_data()
        } else {
            Ok(())
        }
    }

    fn write(&self, offset: u64, data: &[u8]) -> Result<(), std::io::Error> {
        self.file.write(offset, data)
    }

    fn close(&self) -> Result<(), std::io::Error> {
        self.file.close()
    }

    fn try_lock_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<bool, redb::BackendError> {
        self.file.try_lock_range(start, end)
    }

    fn try_lock_shared_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<bool, redb::BackendError> {
        self.file.try_lock_shared_range(start, end)
    }

    fn lock_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<(), redb::BackendError> {
        self.file.lock_range(start, end)
    }

    fn lock_shared_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<(), redb::BackendError> {
        self.file.lock_shared_range(start, end)
    }

    fn unlock_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<(), redb::BackendError> {
        self.file.unlock_range(start, end)
    }

    fn query_lock_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<bool, redb::BackendError> {
        self.file.query_lock_range(start, end)
    }
}

/// How far the data directory has come: the journal sequence number last committed, and that
/// of the last batch that could not be committed (0: none).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Committed {
    pub seq: u64,
    pub failed: u64,
}

/// The writer thread's side of the data directory: wakes on a kick, takes the journal's batch
/// and commits it; stops once asked to and nothing is left.
///
/// A commit that fails (a full disk, an I/O error) hands its batch back to the store and makes
/// the changes in it answer `503`; the file is then closed and opened again, once a second,
/// until a commit works (redb refuses every transaction after an I/O error until then). Asked
/// to stop while commits fail, it tries once more, logs what was not saved and stops.
pub(crate) struct Writer {
    wake: Arc<(Mutex<Wake>, Condvar)>,
    committed: watch::Receiver<Committed>,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
}

#[derive(Default)]
struct Wake {
    kicked: bool,
    stop: bool,
}

impl Writer {
    /// Starts the writer thread over `disk`; `take` returns the next batch (or `None` when
    /// there is nothing to write, or the endpoint is gone), `redo` hands back a batch that
    /// could not be written.
    pub(crate) fn start(
        mut disk: Disk,
        mut take: impl FnMut() -> Option<Option<Batch>> + Send + 'static,
        mut redo: impl FnMut(Batch) + Send + 'static,
    ) -> Writer {
        let wake: Arc<(Mutex<Wake>, Condvar)> = Arc::default();
        let (tx, committed) = watch::channel(Committed::default());
        let w = wake.clone();
        let thread = std::thread::Builder::new()
            .name("runpod-local-disk".into())
            .spawn(move || {
                let mut failing = false;
                loop {
                    let stop = {
                        let (lock, cv) = &*w;
                        let mut st = lock.lock().unwrap_or_else(|p| p.into_inner());
                        if failing {
                            // While commits fail, a kick does not shorten the pause between
                            // tries; a stop does.
                            let until = std::time::Instant::now() + Duration::from_secs(1);
                            while !st.stop {
                                let left = until.saturating_duration_since(std::time::Instant::now());
                                if left.is_zero() {
                                    break;
                                }
                                st = cv.wait_timeout(st, left).unwrap_or_else(|p| p.into_inner()).0;
                            }
                        } else if !st.kicked && !st.stop {
                            st = cv.wait_timeout(st, Duration::from_millis(200))
                                .unwrap_or_else(|p| p.into_inner())
                                .0;
                        }
                        st.kicked = false;
                        st.stop
                    };
                    let batch = match take() {
                        None => return, // the endpoint is gone
                        Some(None) if stop => return,
                        Some(None) => continue,
                        Some(Some(b)) => b,
                    };
                    let written = match disk.db.is_some() {
                        true => disk.write(&batch),
                        // A commit failed: open the file again first.
                        false => disk.reopen().and_then(|()| disk.write(&batch)),
                    };
                    match written {
                        Ok(()) => {
                            if failing {
                                tracing::info!("the data directory can be written again");
                            }
                            failing = false;
                            tx.send_modify(|c| c.seq = batch.seq);
                        }
                        Err(e) => {
                            if stop {
                                not_saved(&batch, &e);
                                return;
                            }
                            if !failing {
                                tracing::error!(
                                    error = %e,
                                    "cannot write the data directory; requests that change jobs get 503 until it works again"
                                );
                            } else {
                                tracing::debug!(error = %e, "the data directory still cannot be written");
                            }
                            failing = true;
                            disk.db = None;
                            tx.send_modify(|c| c.failed = batch.seq);
                            redo(batch);
                        }
                    }
                }
            })
            .expect("spawn the data directory's writer thread");
        Writer { wake, committed, thread: Mutex::new(Some(thread)) }
    }

    /// Wakes the writer: something changed.
    pub(crate) fn kick(&self) {
        let (lock, cv) = &*self.wake;
        lock.lock().unwrap_or_else(|p| p.into_inner()).kicked = true;
        cv.notify_one();
    }

    /// Waits until change `seq` is committed; `false` when the commit that carried it failed.
    pub(crate) async fn wait(&self, seq: u64) -> bool {
        self.kick();
        let mut rx = self.committed.clone();
        let reached = match rx.wait_for(|c| c.seq >= seq || c.failed >= seq).await {
            Ok(c) => c.seq >= seq,
            Err(_) => false,
        };
        reached
    }

    /// Commits what is left and stops the thread; waits at most `grace` for it.
    pub(crate) async fn finish(&self, grace: Duration) {
        {
            let (lock, cv) = &*self.wake;
            lock.lock().unwrap_or_else(|p| p.into_inner()).stop = true;
            cv.notify_one();
        }
        let thread = self.thread.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(t) = thread {
            let joined = tokio::time::timeout(grace, tokio::task::spawn_blocking(move || t.join())).await;
            if joined.is_err() {
                tracing::error!(
                    "the data directory's last commit did not finish within {} ms; the latest changes may not be saved",
                    grace.as_millis()
                );
            }
        }
    }
}

/// Logs, at the last commit before exit, what could not be saved.
fn not_saved(batch: &Batch, e: &DiskError) {
    let ids: Vec<&str> = batch.jobs.iter().map(|j| j.id.as_str()).take(10).collect();
    let more = if batch.jobs.len() > ids.len() { ", ..." } else { "" };
    tracing::error!(
        error = %e,
        "stopping with changes the data directory could not take: {} job(s) ({}{more}), {} forgotten job(s) and {} webhook change(s) are not saved",
        batch.jobs.len(),
        ids.join(", "),
        batch.gone.len(),
        batch.hooks.len(),
    );
}

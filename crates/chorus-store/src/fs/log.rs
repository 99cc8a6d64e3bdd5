//! [`FsLog`]: one append-only update log file per document, next to its snapshot.
//!
//! # Appending
//! Every operation on a document's log holds the `flock` of its file (see [`FileLock`]), so
//! processes sharing the directory append in turn and sequence numbers stay strictly
//! increasing. An append writes the whole batch with one `write`, then, under
//! [`FsyncPolicy::Always`], one `fdatasync` before returning: the caller's batching turns that
//! into group commit. Under [`FsyncPolicy::Interval`] the file joins a set that a background
//! thread fsyncs every interval (like Redis' `appendfsync everysec`): a crash of the machine
//! loses at most that interval, a crash of the process loses nothing.
//!
//! Where the file ends and which sequence number came last is cached per path, keyed by the
//! file's identity and length; any change by another process (an append, a rewrite) shows up
//! as a different length or inode and costs one rescan.
//!
//! # Recovery
//! Before its first use in a process, and whenever the cache does not match, the file is
//! scanned ([`log_record::scan`]):
//! - a torn tail (a crash in the middle of an append) is cut off, with a warning;
//! - damage before valid records, or a header naming another document, makes the scan keep the
//!   damaged file aside as `<file>.corrupt-<ms>` (a hard link: never overwritten) and rewrite
//!   the log with the valid records only, with a warning naming the file and what was skipped.
//!
//! # Truncation
//! Dropping the records a snapshot covers rewrites the file atomically (temporary file, fsync,
//! rename, directory fsync) with the remaining records behind a marker that keeps the sequence
//! numbering going. The log only holds the updates since the last snapshot, seconds of editing,
//! so rewriting it is cheap and keeps one file per document; segment files would save copying
//! but add files, and a second format for their list, for no gain at that size.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::time::Duration;

use async_trait::async_trait;
use bytes::{Bytes, BytesMut};
use chorus_protocol::DocName;

use super::durable::{self, FileId, link_aside, write_atomically};
use super::lock::FileLock;
use super::{list_dir, prepare_dir, read_name};
use crate::log_record::{self, MAX_PAYLOAD, Record, put_file_header, put_record};
use crate::{FsyncPolicy, StoreError, UpdateLog, naming};

/// File name suffix of update logs.
const LOG_SUFFIX: &str = ".log";

/// Tails remembered per process; past this the cache is cleared and each log costs one rescan
/// on its next append. Bounds memory on servers that touch millions of documents.
const MAX_CACHED_TAILS: usize = 16 * 1024;

/// Shortest interval the flusher accepts: a zero interval would spin.
const MIN_FLUSH_INTERVAL: Duration = Duration::from_millis(1);

/// Update logs as files in one directory.
#[derive(Debug, Clone)]
pub struct FsLog {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    dir: PathBuf,
    policy: FsyncPolicy,
    tails: Mutex<HashMap<PathBuf, Tail>>,
    unsynced: Mutex<Unsynced>,
    counters: Arc<Counters>,
}

/// What an [`FsLog`] did since it was opened (see [`FsLog::stats`]): for benchmarks, tests and
/// metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FsLogStats {
    /// Records appended.
    pub records: u64,
    /// `fdatasync`s of document log files.
    pub log_fsyncs: u64,
}

/// The live counters behind [`FsLogStats`].
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) records: AtomicU64,
    pub(crate) log_fsyncs: AtomicU64,
}

impl Counters {
    pub(crate) fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    fn snapshot(&self) -> FsLogStats {
        FsLogStats {
            records: self.records.load(Ordering::Relaxed),
            log_fsyncs: self.log_fsyncs.load(Ordering::Relaxed),
        }
    }
}

/// Where a log file ends, as of our last look.
#[derive(Debug, Clone, Copy)]
struct Tail {
    id: FileId,
    len: u64,
    high_water: u64,
}

/// Writes not fsynced yet, under [`FsyncPolicy::Interval`].
#[derive(Debug, Default)]
struct Unsynced {
    files: HashMap<FileId, (PathBuf, File)>,
    /// A log file was created: the directory needs an fsync too.
    dir: bool,
    /// The last background fsync failed; reported by the next append or flush.
    failure: Option<(String, io::Error)>,
}

/// What a scan under the lock found.
enum Recovered {
    /// The file is clean (possibly after cutting a torn tail).
    Clean { tail: Tail, records: Vec<Record> },
    /// The file was replaced: the lock held is on the old one, so start over.
    Rewritten,
}

impl FsLog {
    /// Opens (and creates, if needed) the directory `dir`. Under [`FsyncPolicy::Interval`] this
    /// starts the background flusher thread, which ends after the last clone is dropped.
    ///
    /// # Errors
    /// [`StoreError::Io`] when the directory cannot be created or is not writable.
    pub fn open(dir: impl Into<PathBuf>, policy: FsyncPolicy) -> Result<Self, StoreError> {
        let dir = dir.into();
        prepare_dir(&dir)?;
        let inner = Arc::new(Inner {
            dir,
            policy,
            tails: Mutex::default(),
            unsynced: Mutex::default(),
            counters: Arc::default(),
        });
        if let FsyncPolicy::Interval(every) = policy {
            spawn_flusher(Arc::downgrade(&inner), every.max(MIN_FLUSH_INTERVAL))?;
        }
        Ok(Self { inner })
    }

    /// The directory logs live in.
    pub fn dir(&self) -> &Path {
        &self.inner.dir
    }

    /// The file that holds the log of `doc`.
    pub fn path_of(&self, doc: &DocName) -> PathBuf {
        self.inner.path_of(doc)
    }

    /// What this log did since it was opened (shared by its clones).
    pub fn stats(&self) -> FsLogStats {
        self.inner.counters.snapshot()
    }
}

impl Inner {
    fn path_of(&self, doc: &DocName) -> PathBuf {
        self.dir.join(format!("{}{LOG_SUFFIX}", naming::stem(doc)))
    }

    fn tails(&self) -> MutexGuard<'_, HashMap<PathBuf, Tail>> {
        // Every critical section is a single map operation: a panic cannot leave it half done.
        self.tails.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn unsynced(&self) -> MutexGuard<'_, Unsynced> {
        // As above: plain inserts and swaps.
        self.unsynced.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn remember(&self, path: &Path, tail: Tail) {
        let mut tails = self.tails();
        if tails.len() >= MAX_CACHED_TAILS && !tails.contains_key(path) {
            tails.clear();
        }
        tails.insert(path.to_owned(), tail);
    }

    fn forget(&self, path: &Path) {
        self.tails().remove(path);
    }

    /// Reports a failed background fsync once, to whoever asks next.
    fn take_flush_failure(&self) -> Result<(), StoreError> {
        match self.unsynced().failure.take() {
            None => Ok(()),
            Some((location, source)) => Err(StoreError::Io {
                action: "fsyncing update log (background)",
                location,
                source,
            }),
        }
    }

    fn append(&self, doc: &DocName, updates: &[Bytes]) -> Result<u64, StoreError> {
        let path = self.path_of(doc);
        if let Some(long) = updates.iter().find(|u| u.len() > MAX_PAYLOAD) {
            return Err(StoreError::Rejected {
                location: path.display().to_string(),
                reason: format!(
                    "a {}-byte update does not fit in one log record",
                    long.len()
                ),
            });
        }
        self.take_flush_failure()?;
        loop {
            let lock =
                FileLock::acquire(&path).map_err(StoreError::io("locking update log", &path))?;
            let meta = lock
                .file()
                .metadata()
                .map_err(StoreError::io("inspecting update log", &path))?;
            let id = FileId::of(&meta);
            let cached = self
                .tails()
                .get(&path)
                .copied()
                .filter(|t| t.id == id && t.len == meta.len());
            let tail = match cached {
                Some(tail) => tail,
                None => match self.recover(&lock, &path, doc)? {
                    Recovered::Clean { tail, .. } => tail,
                    Recovered::Rewritten => continue,
                },
            };
            return self.write_batch(lock, &path, doc, tail, updates);
        }
    }

    fn write_batch(
        &self,
        lock: FileLock,
        path: &Path,
        doc: &DocName,
        tail: Tail,
        updates: &[Bytes],
    ) -> Result<u64, StoreError> {
        let mut batch = BytesMut::with_capacity(
            updates
                .iter()
                .map(|u| u.len() + log_record::RECORD_OVERHEAD)
                .sum::<usize>()
                + log_record::file_header_len(doc.as_str().len()),
        );
        let new_file = tail.len == 0;
        if new_file {
            put_file_header(&mut batch, doc.as_str());
        }
        let mut seq = tail.high_water;
        for update in updates {
            seq += 1;
            put_record(&mut batch, seq, update);
        }
        let mut file = lock.file();
        let written = file
            .seek(SeekFrom::Start(tail.len))
            .and_then(|_| file.write_all(&batch));
        if let Err(e) = written {
            // Leave no half record behind for the next append to trip over.
            let _ = file.set_len(tail.len);
            self.forget(path);
            return Err(StoreError::io("appending to update log", path)(e));
        }
        let len = tail.len + batch.len() as u64;
        Counters::add(&self.counters.records, updates.len() as u64);
        match self.policy {
            FsyncPolicy::Always => {
                Counters::add(&self.counters.log_fsyncs, 1);
                let synced = lock.file().sync_data().and_then(|()| {
                    if new_file {
                        durable::sync_dir(&self.dir)
                    } else {
                        Ok(())
                    }
                });
                if let Err(e) = synced {
                    // After a failed fsync the kernel may have dropped the pages: what is in
                    // the file is unknown, so rescan next time.
                    self.forget(path);
                    return Err(StoreError::io("fsyncing update log", path)(e));
                }
                self.remember(
                    path,
                    Tail {
                        len,
                        high_water: seq,
                        ..tail
                    },
                );
            }
            FsyncPolicy::Interval(_) => {
                self.remember(
                    path,
                    Tail {
                        len,
                        high_water: seq,
                        ..tail
                    },
                );
                let file = lock
                    .unlock_keep_open()
                    .map_err(StoreError::io("unlocking update log", path))?;
                let mut unsynced = self.unsynced();
                unsynced.dir |= new_file;
                unsynced.files.insert(tail.id, (path.to_owned(), file));
            }
        }
        Ok(seq)
    }

    /// Scans the locked file and repairs it; see the module docs.
    fn recover(
        &self,
        lock: &FileLock,
        path: &Path,
        doc: &DocName,
    ) -> Result<Recovered, StoreError> {
        let mut file = lock.file();
        let mut bytes = Vec::new();
        file.seek(SeekFrom::Start(0))
            .and_then(|_| file.read_to_end(&mut bytes))
            .map_err(StoreError::io("reading update log", path))?;
        let bytes = Bytes::from(bytes);
        let scan = log_record::scan(&bytes);
        let foreign = scan.name.as_deref().is_some_and(|n| n != doc.as_str());
        if foreign || scan.is_damaged() {
            let kept = link_aside(path)
                .map_err(StoreError::io("keeping damaged update log aside", path))?;
            let mut clean = BytesMut::new();
            put_file_header(&mut clean, doc.as_str());
            let mut kept_records = 0;
            if !foreign {
                for record in &scan.records {
                    put_record(&mut clean, record.seq, &record.payload);
                    kept_records += 1;
                }
            }
            tracing::warn!(
                file = %path.display(),
                kept_at = %kept.display(),
                foreign_document = ?scan.name.as_deref().filter(|_| foreign),
                damaged_ranges = ?scan.damaged,
                damaged_bytes = scan.damaged_bytes(),
                torn_tail_bytes = scan.torn_tail.as_ref().map_or(0, ExactSizeIterator::len),
                records_kept = kept_records,
                "update log is damaged: kept the original aside and rewrote it with the valid records"
            );
            write_atomically(&self.dir, path, &clean)
                .map_err(StoreError::io("rewriting damaged update log", path))?;
            self.forget(path);
            return Ok(Recovered::Rewritten);
        }
        let mut len = bytes.len() as u64;
        if let Some(torn) = &scan.torn_tail {
            tracing::warn!(
                file = %path.display(),
                offset = torn.start,
                bytes = torn.len(),
                "dropping a torn record at the end of the update log (interrupted append)"
            );
            len = scan.valid_end as u64;
            lock.file()
                .set_len(len)
                .and_then(|()| lock.file().sync_data())
                .map_err(StoreError::io("cutting torn tail of update log", path))?;
        }
        let meta = lock
            .file()
            .metadata()
            .map_err(StoreError::io("inspecting update log", path))?;
        let tail = Tail {
            id: FileId::of(&meta),
            len,
            high_water: scan.high_water(),
        };
        self.remember(path, tail);
        Ok(Recovered::Clean {
            tail,
            records: scan.records,
        })
    }

    fn read(&self, doc: &DocName) -> Result<Vec<(u64, Bytes)>, StoreError> {
        let path = self.path_of(doc);
        loop {
            let Some(lock) = FileLock::acquire_existing(&path)
                .map_err(StoreError::io("locking update log", &path))?
            else {
                return Ok(Vec::new());
            };
            match self.recover(&lock, &path, doc)? {
                Recovered::Rewritten => continue,
                Recovered::Clean { records, .. } => {
                    return Ok(records
                        .into_iter()
                        .filter(|r| !r.is_marker())
                        .map(|r| (r.seq, r.payload))
                        .collect());
                }
            }
        }
    }

    fn truncate(&self, doc: &DocName, through: u64) -> Result<(), StoreError> {
        let path = self.path_of(doc);
        loop {
            let Some(lock) = FileLock::acquire_existing(&path)
                .map_err(StoreError::io("locking update log", &path))?
            else {
                return Ok(());
            };
            let records = match self.recover(&lock, &path, doc)? {
                Recovered::Rewritten => continue,
                Recovered::Clean { records, .. } => records,
            };
            if !records.iter().any(|r| r.seq <= through && !r.is_marker()) {
                return Ok(());
            }
            let mut contents = BytesMut::new();
            put_file_header(&mut contents, doc.as_str());
            if let Some(marker) = records
                .iter()
                .map(|r| r.seq)
                .filter(|&s| s <= through)
                .max()
            {
                put_record(&mut contents, marker, &[]);
            }
            for record in records.iter().filter(|r| r.seq > through) {
                put_record(&mut contents, record.seq, &record.payload);
            }
            write_atomically(&self.dir, &path, &contents)
                .map_err(StoreError::io("truncating update log", &path))?;
            self.forget(&path);
            return Ok(());
        }
    }

    fn delete(&self, doc: &DocName) -> Result<(), StoreError> {
        let path = self.path_of(doc);
        let Some(lock) = FileLock::acquire_existing(&path)
            .map_err(StoreError::io("locking update log", &path))?
        else {
            return Ok(());
        };
        lock.remove()
            .map_err(StoreError::io("deleting update log", &path))?;
        self.forget(&path);
        durable::sync_dir(&self.dir).map_err(StoreError::io("deleting update log", &self.dir))
    }

    /// Fsyncs every write made since the last call.
    fn sync_unsynced(&self) -> Result<(), StoreError> {
        let (files, dir) = {
            let mut unsynced = self.unsynced();
            (
                std::mem::take(&mut unsynced.files),
                std::mem::take(&mut unsynced.dir),
            )
        };
        let mut first_error = None;
        for (path, file) in files.into_values() {
            Counters::add(&self.counters.log_fsyncs, 1);
            if let Err(e) = file.sync_data() {
                tracing::error!(file = %path.display(), error = %e, "fsync of update log failed");
                first_error.get_or_insert((path.display().to_string(), e));
            }
        }
        if dir && let Err(e) = durable::sync_dir(&self.dir) {
            tracing::error!(dir = %self.dir.display(), error = %e, "fsync of log directory failed");
            first_error.get_or_insert((self.dir.display().to_string(), e));
        }
        match first_error {
            None => Ok(()),
            Some((location, source)) => Err(StoreError::Io {
                action: "fsyncing update log",
                location,
                source,
            }),
        }
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        // A clean shutdown loses nothing even under the interval policy.
        let _ = self.sync_unsynced();
    }
}

/// Starts the thread behind [`FsyncPolicy::Interval`]. It holds only a weak reference, so it
/// ends at its first wake-up after the log is dropped. A thread rather than a tokio task: the
/// log can be opened outside a runtime, and fsync blocks anyway.
fn spawn_flusher(inner: Weak<Inner>, every: Duration) -> Result<(), StoreError> {
    std::thread::Builder::new()
        .name("chorus-log-fsync".to_owned())
        .spawn(move || {
            loop {
                std::thread::sleep(every);
                let Some(inner) = inner.upgrade() else { break };
                if let Err(StoreError::Io {
                    location, source, ..
                }) = inner.sync_unsynced()
                {
                    inner.unsynced().failure = Some((location, source));
                }
            }
        })
        .map(drop)
        .map_err(|e| StoreError::Io {
            action: "starting the update log flusher",
            location: String::new(),
            source: e,
        })
}

#[async_trait]
impl UpdateLog for FsLog {
    async fn append(&self, doc: &DocName, updates: &[Bytes]) -> Result<u64, StoreError> {
        let inner = Arc::clone(&self.inner);
        let doc = doc.clone();
        let updates = updates.to_vec();
        let location = self.path_of(&doc).display().to_string();
        tokio::task::spawn_blocking(move || inner.append(&doc, &updates))
            .await
            .map_err(StoreError::join("appending to update log", location))?
    }

    async fn read(&self, doc: &DocName) -> Result<Vec<(u64, Bytes)>, StoreError> {
        let inner = Arc::clone(&self.inner);
        let doc = doc.clone();
        let location = self.path_of(&doc).display().to_string();
        tokio::task::spawn_blocking(move || inner.read(&doc))
            .await
            .map_err(StoreError::join("reading update log", location))?
    }

    async fn truncate(&self, doc: &DocName, through: u64) -> Result<(), StoreError> {
        let inner = Arc::clone(&self.inner);
        let doc = doc.clone();
        let location = self.path_of(&doc).display().to_string();
        tokio::task::spawn_blocking(move || inner.truncate(&doc, through))
            .await
            .map_err(StoreError::join("truncating update log", location))?
    }

    async fn delete(&self, doc: &DocName) -> Result<(), StoreError> {
        let inner = Arc::clone(&self.inner);
        let doc = doc.clone();
        let location = self.path_of(&doc).display().to_string();
        tokio::task::spawn_blocking(move || inner.delete(&doc))
            .await
            .map_err(StoreError::join("deleting update log", location))?
    }

    async fn list(&self) -> Result<Vec<DocName>, StoreError> {
        let dir = self.inner.dir.clone();
        let location = dir.display().to_string();
        tokio::task::spawn_blocking(move || {
            list_dir(&dir, LOG_SUFFIX, |path| {
                read_name(path, log_record::file_header_len, |header| {
                    log_record::read_file_header(header).map(|(name, _)| name)
                })
            })
        })
        .await
        .map_err(StoreError::join("listing update logs", location))?
    }

    async fn flush(&self) -> Result<(), StoreError> {
        let inner = Arc::clone(&self.inner);
        let location = inner.dir.display().to_string();
        tokio::task::spawn_blocking(move || {
            inner.take_flush_failure()?;
            inner.sync_unsynced()
        })
        .await
        .map_err(StoreError::join("fsyncing update logs", location))?
    }
}

//! [`FsLog`]: one append-only update log file per document, next to its snapshot, and under
//! [`FsyncPolicy::Always`] one write-ahead log per process that makes appends durable.
//!
//! # Appending
//! Every operation on a document's log holds the `flock` of its file (see [`FileLock`]), so
//! processes sharing the directory append in turn and sequence numbers stay strictly
//! increasing. An append writes the whole batch with one `write`. Under
//! [`FsyncPolicy::Interval`] the file then joins a set that a background thread fsyncs every
//! interval (like Redis' `appendfsync everysec`): a crash of the machine loses at most that
//! interval, a crash of the process loses nothing. Under [`FsyncPolicy::Always`] the append
//! returns only once the batch is durable, through the write-ahead log.
//!
//! # Write-ahead log (`FsyncPolicy::Always`)
//! Why: a server appends once per room per batch and a room has one append in flight, so with
//! many rooms each getting a few updates a second there is nothing to batch within a document,
//! and one `fdatasync` per append per document is what limits the node. Group commit has to
//! span documents, and one file per document cannot give that: hence one WAL per process
//! ([`super::wal`] has its format).
//!
//! How: the append writes its records to the document's log as above, without fsyncing it
//! (a new file's directory entry is still fsynced before returning, so after a power cut a
//! missing log always means a deleted document), and adds a handle of the file to the WAL's
//! *dirty set*. Still holding the document's lock (so the WAL has each document's records in
//! order), it hands the records (document, seq, payload, and which incarnation of the file they
//! went to) to the `chorus-wal` writer thread, and the async `append` awaits the answer without
//! keeping a blocking-pool thread. The writer takes everything queued meanwhile, writes it to
//! the WAL with one `write` and one `fdatasync`, and answers every appender. A failed write or
//! fsync fails the whole batch (nothing of it is acknowledged) and starts a new WAL file. When
//! the WAL passes 16 MiB or one second of age, the writer starts a new file at once and hands
//! the old one, with the dirty set, to the `chorus-wal-checkpoint` thread, which fsyncs every
//! file in it, then removes the WAL: the WAL stays small, and a second of appends is made
//! durable on each document file once. A flush (what
//! the server calls at shutdown) and dropping the last clone checkpoint everything, so a
//! clean shutdown leaves no WAL behind. A checkpoint that fails keeps its WAL (locked while
//! this process lives) for the next start to replay.
//!
//! Deleting or truncating a document needs nothing from the WAL: a deleted document's file is
//! gone and replay skips documents without a file, and truncation's rewrite fsyncs every record
//! it keeps; the old file's handle may still be in a dirty set, but fsyncing an unlinked inode
//! succeeds and shows nothing to anyone. Replay also skips entries written to another
//! incarnation of the file (inode and birth time differ): a document deleted and created again
//! numbers from 1, so sequence numbers alone could not tell its new records from old ones.
//!
//! # Replaying write-ahead logs
//! [`FsLog::open`] (under either policy) first replays the WALs of processes that did not shut
//! down cleanly: every `wal-*.wal` whose `flock` it can take (a live process holds its own).
//! For each document named in them whose log still exists, it appends, in order and under the
//! document's lock, every entry of that file's incarnation with a sequence number above the
//! log's last one (markers count, so truncated records never come back), fsyncs the log, and
//! then removes the WALs. A torn tail in a WAL is an append that was never acknowledged and is
//! ignored. Processes opening one directory at once replay in turn (`.wal-recovery.lock`), so
//! none serves before the dead WALs are replayed.
//!
//! Where the file ends and which sequence number came last is cached per path, keyed by the
//! file's identity and length; any change by another process (an append, a rewrite) shows up
//! as a different length or inode and costs one rescan.
//!
//! # Recovering a log file
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

mod append;
mod interval;
#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use chorus_protocol::DocName;

use super::dir::{list_dir, prepare_dir, read_name};
use super::files::{LOG_SUFFIX, LogFiles};
use super::stats::FsLogStats;
use super::wal::{self, Wal, WalLimits};
use crate::{FsyncPolicy, StoreError, UpdateLog, log_record};

use append::{Appended, Appender};
use interval::{Unsynced, spawn_flusher};

/// Shortest interval the flusher accepts: a zero interval would spin.
const MIN_FLUSH_INTERVAL: Duration = Duration::from_millis(1);

/// Update logs as files in one directory.
#[derive(Debug, Clone)]
pub struct FsLog {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    files: LogFiles,
    policy: FsyncPolicy,
    unsynced: Unsynced,
    /// The write-ahead log, under [`FsyncPolicy::Always`].
    wal: Option<Wal>,
}

impl FsLog {
    /// Opens (and creates, if needed) the directory `dir`, after replaying the write-ahead
    /// logs that dead processes left in it (see the module docs). Under
    /// [`FsyncPolicy::Always`] this starts the write-ahead log's threads, under
    /// [`FsyncPolicy::Interval`] the background flusher thread; they end after the last clone
    /// is dropped.
    ///
    /// # Errors
    /// [`StoreError::Io`] when the directory cannot be created or is not writable, or a dead
    /// write-ahead log cannot be replayed.
    pub fn open(dir: impl Into<PathBuf>, policy: FsyncPolicy) -> Result<Self, StoreError> {
        Self::open_with(dir.into(), policy, WalLimits::default())
    }

    /// [`FsLog::open`] with other limits for the write-ahead log (tests).
    pub(crate) fn open_with(
        dir: PathBuf,
        policy: FsyncPolicy,
        limits: WalLimits,
    ) -> Result<Self, StoreError> {
        prepare_dir(&dir)?;
        let files = LogFiles::new(dir);
        wal::replay_dead_wals(&files)?;
        let wal = match policy {
            FsyncPolicy::Always => Some(
                Wal::start(&files.dir, limits, Arc::clone(&files.counters))
                    .map_err(StoreError::io("starting the write-ahead log", &files.dir))?,
            ),
            FsyncPolicy::Interval(_) => None,
        };
        let inner = Inner {
            files,
            policy,
            unsynced: Unsynced::default(),
            wal,
        };
        let inner = Arc::new(inner);
        if let FsyncPolicy::Interval(every) = policy {
            spawn_flusher(
                Arc::downgrade(&inner),
                every.max(MIN_FLUSH_INTERVAL),
                |inner: &Inner| inner.unsynced.sync_in_background(&inner.files),
            )?;
        }
        Ok(Self { inner })
    }

    /// The directory logs live in.
    pub fn dir(&self) -> &Path {
        &self.inner.files.dir
    }

    /// The file that holds the log of `doc`.
    pub fn path_of(&self, doc: &DocName) -> PathBuf {
        self.inner.files.path_of(doc)
    }

    /// What this log did since it was opened (shared by its clones).
    pub fn stats(&self) -> FsLogStats {
        self.inner.files.counters.snapshot()
    }

    /// Tests: drops the log as a crash would (the last clone): the write-ahead log is left
    /// behind, unlocked, and nothing is checkpointed.
    #[cfg(test)]
    pub(crate) fn crash(self) {
        if let Some(wal) = &self.inner.wal {
            wal.abandon();
        }
    }
}

impl FsLog {
    /// Runs `work` on `doc` on the blocking pool: file I/O and waiting for a document's `flock`
    /// block the thread.
    async fn blocking<T: Send + 'static>(
        &self,
        action: &'static str,
        doc: &DocName,
        work: impl FnOnce(&Inner, &DocName) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let inner = Arc::clone(&self.inner);
        let doc = doc.clone();
        let location = self.path_of(&doc).display().to_string();
        tokio::task::spawn_blocking(move || work(&inner, &doc))
            .await
            .map_err(StoreError::join(action, location))?
    }
}

impl Inner {
    fn appender(&self) -> Appender<'_> {
        Appender {
            files: &self.files,
            policy: self.policy,
            wal: self.wal.as_ref(),
            unsynced: &self.unsynced,
        }
    }

    /// Appends and, under the WAL, blocks until the records are durable (tests).
    #[cfg(test)]
    fn append(&self, doc: &DocName, updates: &[Bytes]) -> Result<u64, StoreError> {
        self.appender().append(doc, updates)
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        // A clean shutdown loses nothing even under the interval policy.
        let _ = self.unsynced.sync(&self.files);
    }
}

#[async_trait]
impl UpdateLog for FsLog {
    async fn append(&self, doc: &DocName, updates: &[Bytes]) -> Result<u64, StoreError> {
        let updates = updates.to_vec();
        let appended = self
            .blocking("appending to update log", doc, move |inner, doc| {
                inner.appender().start_append(doc, &updates)
            })
            .await?;
        match appended {
            Appended::Done(seq) => Ok(seq),
            Appended::Pending(pending) => pending.wait().await,
        }
    }

    async fn read(&self, doc: &DocName) -> Result<Vec<(u64, Bytes)>, StoreError> {
        self.blocking("reading update log", doc, |inner, doc| {
            inner.files.read(doc)
        })
        .await
    }

    async fn truncate(&self, doc: &DocName, through: u64) -> Result<(), StoreError> {
        self.blocking("truncating update log", doc, move |inner, doc| {
            inner.files.truncate(doc, through)
        })
        .await
    }

    async fn delete(&self, doc: &DocName) -> Result<(), StoreError> {
        self.blocking("deleting update log", doc, |inner, doc| {
            inner.files.delete(doc)
        })
        .await
    }

    async fn list(&self) -> Result<Vec<DocName>, StoreError> {
        let dir = self.inner.files.dir.clone();
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
        let location = inner.files.dir.display().to_string();
        tokio::task::spawn_blocking(move || {
            inner.unsynced.take_failure()?;
            inner.unsynced.sync(&inner.files)?;
            match &inner.wal {
                Some(wal) => wal.checkpoint().map_err(StoreError::io(
                    "checkpointing the write-ahead log",
                    &inner.files.dir,
                )),
                None => Ok(()),
            }
        })
        .await
        .map_err(StoreError::join("fsyncing update logs", location))?
    }
}

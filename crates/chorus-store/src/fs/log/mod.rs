//! [`FsLog`]: one append-only update log file per document, next to its snapshot, and one
//! write-ahead log per process that appends go to first, the document files being written
//! later, in batches.
//!
//! # Appending: one write per update, durable under [`FsyncPolicy::Always`]
//! Why: a server appends once per room per batch and a room has one append in flight, so with
//! many rooms each getting a few updates a second there is nothing to batch within a document.
//! One `fdatasync` per append per document would limit the node, and so would the work around
//! it: opening and locking the document's file, writing it, and a blocking-pool thread per
//! append. Group commit has to span documents, and one file per document cannot give that:
//! hence one write-ahead log (WAL) per process ([`super::wal`] has its format).
//!
//! How: the WAL is the only write on an append's path.
//! - The append numbers its records under the document's *lease* ([`super::deferred`]): this
//!   process holds the file's `flock` and knows its tail, so numbering is a counter in memory.
//!   Only taking the lease (once per document per checkpoint) reads the file, on the blocking
//!   pool; a new file's directory entry is fsynced then, so after a power cut a missing log
//!   always means a deleted document.
//! - It hands the records (document, seq, payload, and which incarnation of the file they are
//!   for) to the `chorus-wal` writer thread without blocking, and the async `append` awaits the
//!   answer without holding a thread. The writer takes everything queued meanwhile, writes it
//!   to the WAL with one `write` and one `fdatasync`, and answers every appender. A failed
//!   write or fsync fails the whole batch and starts a new WAL file.
//! - Under [`FsyncPolicy::Interval`] the writer skips the `fdatasync`: an append returns once
//!   it is written to the WAL, so a crash of the process loses nothing, and the checkpoint runs
//!   at least every interval, so a crash of the machine loses at most that interval (like
//!   Redis' `appendfsync everysec`). Both policies share one path and one file format.
//! - The records stay in memory, pending, until a checkpoint: when the WAL passes 16 MiB or
//!   one second of age, the writer starts a new file and hands the old one to the
//!   `chorus-wal-checkpoint` thread. It writes every document's pending records to its file
//!   with one `write`, fsyncs it, gives the lease back (another process waits at most that
//!   long for its turn at the document), and then removes the WAL. So a second of appends costs
//!   each document one write and one fsync, off the append path.
//! - Reading, truncating or deleting a log first flushes that document's pending records the
//!   same way, so they see (and keep) every record appended so far.
//! - A flush (what the server calls at shutdown) and dropping the last clone checkpoint
//!   everything, so a clean shutdown leaves no WAL behind. A checkpoint that fails keeps its
//!   WAL (locked while this process lives) for the next start to replay, and the pending
//!   records for the next checkpoint to write again.
//!
//! An append whose WAL write failed may still reach the document's log with the next flush:
//! it was not acknowledged, and the room appends it again, which is harmless (applying a Yjs
//! update twice changes nothing).
//!
//! Replay skips entries written for another incarnation of the file (inode and birth time
//! differ): a document deleted and created again numbers from 1, so sequence numbers alone
//! could not tell its new records from old ones; and a file rewritten by truncation already
//! holds every record it kept, since the truncation flushed first and fsynced the rewrite.
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

#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use chorus_protocol::DocName;

use super::deferred::{Deferred, Slot};
use super::dir::{list_dir, prepare_dir, read_name};
use super::files::{LOG_SUFFIX, LogFiles};
use super::stats::{Counters, FsLogStats};
use super::wal::{self, SyncWait, Wal, WalLimits};
use crate::{FsyncPolicy, StoreError, UpdateLog, log_record};

/// Shortest interval between checkpoints: a zero interval would spin.
const MIN_CHECKPOINT_INTERVAL: Duration = Duration::from_millis(1);

/// Update logs as files in one directory.
#[derive(Debug, Clone)]
pub struct FsLog {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    files: Arc<LogFiles>,
    /// Records in the WAL only, until a checkpoint writes them to their logs.
    deferred: Arc<Deferred>,
    wal: Wal,
}

impl FsLog {
    /// Opens (and creates, if needed) the directory `dir`, after replaying the write-ahead
    /// logs that dead processes left in it (see the module docs), and starts the write-ahead
    /// log's writer and checkpointer threads; they end after the last clone is dropped.
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
        mut limits: WalLimits,
    ) -> Result<Self, StoreError> {
        prepare_dir(&dir)?;
        let files = Arc::new(LogFiles::new(dir));
        wal::replay_dead_wals(&files)?;
        if let FsyncPolicy::Interval(every) = policy {
            // The checkpoint is what fsyncs under this policy: at least once per interval.
            limits.max_age = limits.max_age.min(every.max(MIN_CHECKPOINT_INTERVAL));
        }
        let sync_each_batch = policy == FsyncPolicy::Always;
        let deferred = Arc::new(Deferred::new(Arc::clone(&files)));
        let wal = Wal::start(&files.dir, limits, sync_each_batch, Arc::clone(&deferred))
            .map_err(StoreError::io("starting the write-ahead log", &files.dir))?;
        Ok(Self {
            inner: Arc::new(Inner {
                files,
                deferred,
                wal,
            }),
        })
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
        self.inner.wal.abandon();
    }

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
    /// Numbers `updates` under the lease of `slot` and hands them to the WAL; see
    /// [`Slot::append_with`].
    fn submit(
        &self,
        slot: &Slot,
        updates: &[Bytes],
    ) -> Option<Result<(u64, SyncWait), StoreError>> {
        let submitted = slot.append_with(updates, |submission| self.wal.submit(submission))?;
        Some(match submitted {
            Ok(submitted) => {
                Counters::add(&self.files.counters.records, updates.len() as u64);
                Ok(submitted)
            }
            Err(e) => Err(StoreError::io(
                "writing the write-ahead log",
                &self.files.dir,
            )(e)),
        })
    }

    /// The outcome of an append through `seq`, once the WAL answered.
    fn written(&self, seq: u64, outcome: std::io::Result<()>) -> Result<u64, StoreError> {
        outcome.map(|()| seq).map_err(StoreError::io(
            "writing the write-ahead log",
            &self.files.dir,
        ))
    }

    /// Runs `work` on the log file of `doc` once every record appended so far is in it.
    fn settled<T>(
        &self,
        doc: &DocName,
        work: impl FnOnce(&LogFiles) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        self.deferred
            .slot(doc)
            .after_flush(&self.files, || work(&self.files))
    }

    /// Appends and blocks until the WAL answered (tests).
    #[cfg(test)]
    fn append(&self, doc: &DocName, updates: &[Bytes]) -> Result<u64, StoreError> {
        check_sizes(&self.files, doc, updates)?;
        if updates.is_empty() {
            return self.settled(doc, |files| files.high_water(doc));
        }
        let slot = self.deferred.slot(doc);
        loop {
            match self.submit(&slot, updates) {
                Some(Ok((seq, answer))) => {
                    let outcome = answer
                        .blocking_recv()
                        .unwrap_or_else(|_| Err(wal::stopped()));
                    return self.written(seq, outcome);
                }
                Some(Err(e)) => return Err(e),
                None => slot.take_lease(&self.files)?,
            }
        }
    }

    /// Reads as [`UpdateLog::read`] does, blocking (tests).
    #[cfg(test)]
    fn read(&self, doc: &DocName) -> Result<Vec<(u64, Bytes)>, StoreError> {
        self.settled(doc, |files| files.read(doc))
    }

    /// Truncates as [`UpdateLog::truncate`] does, blocking (tests).
    #[cfg(test)]
    fn truncate(&self, doc: &DocName, through: u64) -> Result<(), StoreError> {
        self.settled(doc, |files| files.truncate(doc, through))
    }

    /// Deletes as [`UpdateLog::delete`] does, blocking (tests).
    #[cfg(test)]
    fn delete(&self, doc: &DocName) -> Result<(), StoreError> {
        self.settled(doc, |files| files.delete(doc))
    }
}

/// Refuses an update too big for one record: a WAL entry adds its header to the record's
/// payload.
fn check_sizes(files: &LogFiles, doc: &DocName, updates: &[Bytes]) -> Result<(), StoreError> {
    let max_payload = log_record::MAX_PAYLOAD - wal::ENTRY_HEADER - doc.as_str().len();
    match updates.iter().find(|u| u.len() > max_payload) {
        None => Ok(()),
        Some(long) => Err(StoreError::Rejected {
            location: files.path_of(doc).display().to_string(),
            reason: format!(
                "a {}-byte update does not fit in one log record",
                long.len()
            ),
        }),
    }
}

#[async_trait]
impl UpdateLog for FsLog {
    /// Numbered under the document's lease and handed to the WAL without blocking; only
    /// taking a lease (once per document per checkpoint) goes to the blocking pool.
    async fn append(&self, doc: &DocName, updates: &[Bytes]) -> Result<u64, StoreError> {
        check_sizes(&self.inner.files, doc, updates)?;
        if updates.is_empty() {
            // No lease for nothing to append: a lease is given back by the checkpoint of the
            // WAL its records go to, and this would have none.
            return self
                .blocking("reading update log", doc, |inner, doc| {
                    inner.settled(doc, |files| files.high_water(doc))
                })
                .await;
        }
        let slot = self.inner.deferred.slot(doc);
        loop {
            match self.inner.submit(&slot, updates) {
                Some(Ok((seq, answer))) => {
                    let outcome = answer.await.unwrap_or_else(|_| Err(wal::stopped()));
                    return self.inner.written(seq, outcome);
                }
                Some(Err(e)) => return Err(e),
                None => {
                    let slot = Arc::clone(&slot);
                    self.blocking("locking update log", doc, move |inner, _| {
                        slot.take_lease(&inner.files)
                    })
                    .await?;
                }
            }
        }
    }

    async fn read(&self, doc: &DocName) -> Result<Vec<(u64, Bytes)>, StoreError> {
        self.blocking("reading update log", doc, |inner, doc| {
            inner.settled(doc, |files| files.read(doc))
        })
        .await
    }

    async fn truncate(&self, doc: &DocName, through: u64) -> Result<(), StoreError> {
        self.blocking("truncating update log", doc, move |inner, doc| {
            inner.settled(doc, |files| files.truncate(doc, through))
        })
        .await
    }

    async fn delete(&self, doc: &DocName) -> Result<(), StoreError> {
        self.blocking("deleting update log", doc, |inner, doc| {
            inner.settled(doc, |files| files.delete(doc))
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
            inner.wal.checkpoint().map_err(StoreError::io(
                "checkpointing the write-ahead log",
                &inner.files.dir,
            ))
        })
        .await
        .map_err(StoreError::join("fsyncing update logs", location))?
    }
}

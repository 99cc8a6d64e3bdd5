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
use super::wal::{self, Dead, Incarnation, Submission, Wal, WalLimits};
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
    /// The write-ahead log, under [`FsyncPolicy::Always`].
    wal: Option<Wal>,
}

/// What an [`FsLog`] did since it was opened (see [`FsLog::stats`]): for benchmarks, tests and
/// metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FsLogStats {
    /// Records appended.
    pub records: u64,
    /// `fdatasync`s of document log files.
    pub log_fsyncs: u64,
    /// Appends handed to the write-ahead log ([`FsyncPolicy::Always`]).
    pub wal_submissions: u64,
    /// `fdatasync`s of the write-ahead log: each makes a whole group of appends durable.
    pub wal_fsyncs: u64,
    /// Write-ahead log files started.
    pub wal_files: u64,
    /// Write-ahead log files checkpointed (their documents fsynced) and removed.
    pub checkpoints: u64,
    /// Records replayed from the write-ahead logs of dead processes when this log opened.
    pub recovered: u64,
}

/// The live counters behind [`FsLogStats`].
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) records: AtomicU64,
    pub(crate) log_fsyncs: AtomicU64,
    pub(crate) wal_submissions: AtomicU64,
    pub(crate) wal_fsyncs: AtomicU64,
    pub(crate) wal_files: AtomicU64,
    pub(crate) checkpoints: AtomicU64,
    pub(crate) recovered: AtomicU64,
}

impl Counters {
    pub(crate) fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    fn snapshot(&self) -> FsLogStats {
        FsLogStats {
            records: self.records.load(Ordering::Relaxed),
            log_fsyncs: self.log_fsyncs.load(Ordering::Relaxed),
            wal_submissions: self.wal_submissions.load(Ordering::Relaxed),
            wal_fsyncs: self.wal_fsyncs.load(Ordering::Relaxed),
            wal_files: self.wal_files.load(Ordering::Relaxed),
            checkpoints: self.checkpoints.load(Ordering::Relaxed),
            recovered: self.recovered.load(Ordering::Relaxed),
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

/// How far an append got.
enum Appended {
    /// Done: written and, as the policy requires, durable.
    Durable(u64),
    /// Written, and handed to the write-ahead log.
    Pending(Pending),
}

/// An append whose records are written and handed to the write-ahead log, waiting for the
/// WAL's fsync. It holds the document's lock until then (see [`Inner::write_batch`]).
struct Pending {
    seq: u64,
    durable: wal::Durable,
    lock: FileLock,
    dir: PathBuf,
}

impl Pending {
    /// Waits without holding a thread.
    async fn wait(mut self) -> Result<u64, StoreError> {
        let outcome = (&mut self.durable).await;
        self.finish(outcome.unwrap_or_else(|_| Err(wal::stopped())))
    }

    /// Waits on this thread (outside an async context; tests).
    #[cfg(test)]
    fn wait_blocking(mut self) -> Result<u64, StoreError> {
        let (_, never) = tokio::sync::oneshot::channel();
        let durable = std::mem::replace(&mut self.durable, never);
        let outcome = durable.blocking_recv();
        self.finish(outcome.unwrap_or_else(|_| Err(wal::stopped())))
    }

    fn finish(&self, outcome: io::Result<()>) -> Result<u64, StoreError> {
        outcome
            .map(|()| self.seq)
            .map_err(StoreError::io("writing the write-ahead log", &self.dir))
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        // Unlocked explicitly, also when an append is cancelled: the checkpoint's handle shares
        // the lock, so closing ours alone would keep it until the checkpoint.
        let _ = fs4::FileExt::unlock(self.lock.file());
    }
}

/// What a scan under the lock found.
enum Recovered {
    /// The file is clean (possibly after cutting a torn tail).
    Clean { tail: Tail, records: Vec<Record> },
    /// The file was replaced: the lock held is on the old one, so start over.
    Rewritten,
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
        let mut inner = Inner {
            dir,
            policy,
            tails: Mutex::default(),
            unsynced: Mutex::default(),
            counters: Arc::default(),
            wal: None,
        };
        inner.replay_dead_wals()?;
        if policy == FsyncPolicy::Always {
            let wal = Wal::start(&inner.dir, limits, Arc::clone(&inner.counters))
                .map_err(StoreError::io("starting the write-ahead log", &inner.dir))?;
            inner.wal = Some(wal);
        }
        let inner = Arc::new(inner);
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

    /// Tests: drops the log as a crash would (the last clone): the write-ahead log is left
    /// behind, unlocked, and nothing is checkpointed.
    #[cfg(test)]
    pub(crate) fn crash(self) {
        if let Some(wal) = &self.inner.wal {
            wal.abandon();
        }
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

    /// Appends and, under the WAL, blocks until the records are durable (tests).
    #[cfg(test)]
    fn append(&self, doc: &DocName, updates: &[Bytes]) -> Result<u64, StoreError> {
        match self.start_append(doc, updates)? {
            Appended::Durable(seq) => Ok(seq),
            Appended::Pending(pending) => pending.wait_blocking(),
        }
    }

    fn start_append(&self, doc: &DocName, updates: &[Bytes]) -> Result<Appended, StoreError> {
        let path = self.path_of(doc);
        // Under the WAL an update also travels in a WAL entry, which needs room for its header.
        let max_payload = match self.wal {
            Some(_) => MAX_PAYLOAD - wal::ENTRY_HEADER - doc.as_str().len(),
            None => MAX_PAYLOAD,
        };
        if let Some(long) = updates.iter().find(|u| u.len() > max_payload) {
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
            let incarnation = Incarnation::of(&meta);
            return self.write_batch(lock, &path, doc, (tail, incarnation), updates);
        }
    }

    fn write_batch(
        &self,
        lock: FileLock,
        path: &Path,
        doc: &DocName,
        (tail, incarnation): (Tail, Incarnation),
        updates: &[Bytes],
    ) -> Result<Appended, StoreError> {
        let records: Vec<(u64, Bytes)> = (tail.high_water + 1..)
            .zip(updates.iter().cloned())
            .collect();
        let seq = records.last().map_or(tail.high_water, |(seq, _)| *seq);
        let new_file = tail.len == 0;
        let len = self.write_records(&lock, path, doc, tail, &records)?;
        Counters::add(&self.counters.records, records.len() as u64);
        let written = Tail {
            len,
            high_water: seq,
            ..tail
        };
        match (self.policy, &self.wal) {
            (FsyncPolicy::Always, Some(wal)) => {
                // A new file's name is durable before anything is acknowledged, so that after
                // a power cut a missing log always means a deleted document (replay relies
                // on it).
                if new_file && let Err(e) = durable::sync_dir(&self.dir) {
                    self.forget(path);
                    return Err(StoreError::io("fsyncing log directory", &self.dir)(e));
                }
                self.remember(path, written);
                if records.is_empty() {
                    return Ok(Appended::Durable(seq));
                }
                let submission = Submission {
                    doc: doc.as_str().to_owned(),
                    file: incarnation,
                    records,
                };
                // The lock stays held until the records are durable, so that this process's
                // WAL holds each document's records in sequence order (a room has one append
                // in flight: nobody waits on it).
                let durable = wal
                    .submit(submission, tail.id, path, lock.file())
                    .map_err(StoreError::io("writing the write-ahead log", &self.dir))?;
                return Ok(Appended::Pending(Pending {
                    seq,
                    durable,
                    lock,
                    dir: self.dir.clone(),
                }));
            }
            // Not reached once `open` has started the WAL; the plain path, one fsync per append.
            (FsyncPolicy::Always, None) => {
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
                self.remember(path, written);
            }
            (FsyncPolicy::Interval(_), _) => {
                self.remember(path, written);
                let file = lock
                    .unlock_keep_open()
                    .map_err(StoreError::io("unlocking update log", path))?;
                let mut unsynced = self.unsynced();
                unsynced.dir |= new_file;
                unsynced.files.insert(tail.id, (path.to_owned(), file));
            }
        }
        Ok(Appended::Durable(seq))
    }

    /// Writes `records` (and the file header, for an empty file) at the end of the locked
    /// log, without fsyncing; returns the new length.
    fn write_records(
        &self,
        lock: &FileLock,
        path: &Path,
        doc: &DocName,
        tail: Tail,
        records: &[(u64, Bytes)],
    ) -> Result<u64, StoreError> {
        let mut batch = BytesMut::with_capacity(
            records
                .iter()
                .map(|(_, u)| u.len() + log_record::RECORD_OVERHEAD)
                .sum::<usize>()
                + log_record::file_header_len(doc.as_str().len()),
        );
        if tail.len == 0 {
            put_file_header(&mut batch, doc.as_str());
        }
        for (seq, update) in records {
            put_record(&mut batch, *seq, update);
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
        Ok(tail.len + batch.len() as u64)
    }

    /// Replays the write-ahead logs of dead processes into the document logs; see the module
    /// docs.
    fn replay_dead_wals(&self) -> Result<(), StoreError> {
        let mut dead = Dead::claim(&self.dir)
            .map_err(StoreError::io("reading dead write-ahead logs", &self.dir))?;
        let mut by_doc: HashMap<String, Vec<wal::Entry>> = HashMap::new();
        for entry in std::mem::take(&mut dead.entries) {
            by_doc.entry(entry.doc.clone()).or_default().push(entry);
        }
        let mut replayed = 0;
        for (name, mut entries) in by_doc {
            let Ok(doc) = DocName::parse(name.as_str()) else {
                tracing::warn!(
                    entries = entries.len(),
                    "skipping write-ahead log entries with an invalid document name"
                );
                continue;
            };
            entries.sort_by_key(|e| e.seq);
            replayed += self.replay(&doc, entries)?;
        }
        dead.remove(&self.dir).map_err(StoreError::io(
            "removing replayed write-ahead logs",
            &self.dir,
        ))?;
        Counters::add(&self.counters.recovered, replayed);
        Ok(())
    }

    /// Appends to the log of `doc` the `entries` (sorted by seq) its file lacks; returns how
    /// many.
    fn replay(&self, doc: &DocName, entries: Vec<wal::Entry>) -> Result<u64, StoreError> {
        let path = self.path_of(doc);
        // Incarnations of the file seen here: a damaged file rewritten by `recover` below is
        // still the file the entries were written to.
        let mut incarnations = Vec::new();
        loop {
            let Some(lock) = FileLock::acquire_existing(&path)
                .map_err(StoreError::io("locking update log", &path))?
            else {
                tracing::info!(doc = %doc, entries = entries.len(), "not replaying write-ahead log entries of a deleted document");
                return Ok(0);
            };
            let meta = lock
                .file()
                .metadata()
                .map_err(StoreError::io("inspecting update log", &path))?;
            incarnations.push(Incarnation::of(&meta));
            let tail = match self.recover(&lock, &path, doc)? {
                Recovered::Rewritten => continue,
                Recovered::Clean { tail, .. } => tail,
            };
            let mut missing: Vec<(u64, Bytes)> = Vec::new();
            let mut other_incarnation = 0;
            for entry in &entries {
                if !incarnations.contains(&entry.file) {
                    other_incarnation += 1;
                } else if entry.seq > missing.last().map_or(tail.high_water, |(seq, _)| *seq) {
                    missing.push((entry.seq, entry.update.clone()));
                }
            }
            if other_incarnation > 0 {
                tracing::info!(doc = %doc, entries = other_incarnation, "not replaying write-ahead log entries of a deleted or rewritten log file");
            }
            let Some(&(through, _)) = missing.last() else {
                return Ok(0);
            };
            let from = missing[0].0;
            if from != tail.high_water + 1 {
                tracing::warn!(doc = %doc, log_high_water = tail.high_water, replay_from = from, "gap between the update log and its write-ahead log entries");
            }
            let len = self.write_records(&lock, &path, doc, tail, &missing)?;
            Counters::add(&self.counters.log_fsyncs, 1);
            lock.file()
                .sync_data()
                .map_err(StoreError::io("fsyncing update log", &path))?;
            self.remember(
                &path,
                Tail {
                    len,
                    high_water: through,
                    ..tail
                },
            );
            tracing::warn!(doc = %doc, records = missing.len(), from_seq = from, through_seq = through, "replayed update log records from a write-ahead log (their fsync had not reached the log file)");
            return Ok(missing.len() as u64);
        }
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
        let appended = tokio::task::spawn_blocking(move || inner.start_append(&doc, &updates))
            .await
            .map_err(StoreError::join("appending to update log", location))??;
        match appended {
            Appended::Durable(seq) => Ok(seq),
            Appended::Pending(pending) => pending.wait().await,
        }
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
            inner.sync_unsynced()?;
            match &inner.wal {
                Some(wal) => wal.checkpoint().map_err(StoreError::io(
                    "checkpointing the write-ahead log",
                    &inner.dir,
                )),
                None => Ok(()),
            }
        })
        .await
        .map_err(StoreError::join("fsyncing update logs", location))?
    }
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::sync::Barrier;
    use std::time::Instant;

    use super::*;

    /// Limits under which the WAL is retired only by a checkpoint request or a drop, so that
    /// a test decides when it happens.
    const NO_ROTATION: WalLimits = WalLimits {
        max_bytes: u64::MAX,
        max_age: Duration::from_secs(3600),
    };

    fn doc(name: &str) -> DocName {
        DocName::parse(name).expect("valid test name")
    }

    /// A distinct non-empty update (the log never looks inside).
    fn update(doc: &str, i: usize) -> Bytes {
        Bytes::from(format!("{doc}:{i}:{}", "x".repeat(i % 7)))
    }

    fn open(dir: &Path, limits: WalLimits) -> FsLog {
        FsLog::open_with(dir.to_owned(), FsyncPolicy::Always, limits).expect("open")
    }

    fn wal_files(dir: &Path) -> Vec<PathBuf> {
        fs::read_dir(dir)
            .expect("list")
            .filter_map(Result::ok)
            .filter(|e| wal::is_wal_name(&e.file_name().to_string_lossy()))
            .map(|e| e.path())
            .collect()
    }

    fn len_of(path: &Path) -> u64 {
        fs::metadata(path).expect("stat").len()
    }

    /// Cuts a log file back, as a power cut that lost its unsynced pages would.
    fn lose_writes_after(path: &Path, len: u64) {
        fs::OpenOptions::new()
            .write(true)
            .open(path)
            .and_then(|f| f.set_len(len))
            .expect("cut the file");
    }

    fn checkpoint(log: &FsLog) {
        log.inner
            .wal
            .as_ref()
            .expect("a WAL under Always")
            .checkpoint()
            .expect("checkpoint");
    }

    /// Waits (without a time-based assertion: the deadline only stops a hung test) until
    /// `done` holds.
    fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while !done() {
            assert!(Instant::now() < deadline, "gave up waiting: {what}");
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    #[test]
    fn appends_from_many_threads_share_wal_fsyncs() {
        const THREADS: usize = 16;
        const ROUNDS: usize = 25;
        let dir = tempfile::tempdir().expect("temp dir");
        let log = open(dir.path(), NO_ROTATION);
        let names: Vec<String> = (0..THREADS).map(|t| format!("doc-{t}")).collect();

        // Deterministic overlap: the writer is held until every thread has submitted, so all
        // of them are in the first batch.
        let paused = log.inner.wal.as_ref().expect("WAL").pause();
        let first: Vec<_> = names
            .iter()
            .map(|name| {
                let (log, name) = (log.clone(), name.clone());
                std::thread::spawn(move || {
                    log.inner
                        .append(&doc(&name), &[update(&name, 0)])
                        .expect("append")
                })
            })
            .collect();
        wait_until("every thread submitted", || {
            log.stats().wal_submissions == THREADS as u64
        });
        drop(paused);
        for handle in first {
            assert_eq!(handle.join().expect("appender"), 1);
        }
        assert_eq!(
            log.stats().wal_fsyncs,
            1,
            "{THREADS} appends, one WAL fsync"
        );

        // Free running: whatever overlaps shares an fsync.
        let barrier = Arc::new(Barrier::new(THREADS));
        let rest: Vec<_> = names
            .iter()
            .map(|name| {
                let (log, name, barrier) = (log.clone(), name.clone(), Arc::clone(&barrier));
                std::thread::spawn(move || {
                    barrier.wait();
                    for round in 1..=ROUNDS {
                        let seq = log
                            .inner
                            .append(&doc(&name), &[update(&name, round)])
                            .expect("append");
                        assert_eq!(seq, round as u64 + 1, "{name} round {round}");
                    }
                })
            })
            .collect();
        for handle in rest {
            handle.join().expect("appender");
        }
        let stats = log.stats();
        let appends = (THREADS * (ROUNDS + 1)) as u64;
        assert_eq!(stats.wal_submissions, appends);
        assert!(stats.wal_fsyncs <= appends, "{stats:?}");
        println!(
            "{appends} appends from {THREADS} threads, {} WAL fsyncs ({:.1} appends per fsync)",
            stats.wal_fsyncs,
            appends as f64 / stats.wal_fsyncs as f64
        );
        for name in &names {
            let expected: Vec<(u64, Bytes)> = (0..=ROUNDS)
                .map(|round| (round as u64 + 1, update(name, round)))
                .collect();
            assert_eq!(log.inner.read(&doc(name)).expect("read"), expected);
        }
    }

    #[test]
    fn a_power_cut_before_the_checkpoint_loses_nothing_acknowledged() {
        let dir = tempfile::tempdir().expect("temp dir");
        let log = open(dir.path(), NO_ROTATION);
        let (a, b) = (doc("a"), doc("b"));
        let (a_path, b_path) = (log.path_of(&a), log.path_of(&b));
        assert_eq!(log.inner.append(&a, &[update("a", 1)]).expect("append"), 1);
        let a_after_first = len_of(&a_path);
        let batch = [update("a", 2), update("a", 3)];
        assert_eq!(log.inner.append(&a, &batch).expect("append"), 3);
        for i in 1..=4 {
            assert_eq!(
                log.inner.append(&b, &[update("b", i)]).expect("append"),
                i as u64
            );
        }
        let a_whole = fs::read(&a_path).expect("read");
        let b_whole = fs::read(&b_path).expect("read");
        log.crash();
        assert_eq!(wal_files(dir.path()).len(), 1, "the crash left the WAL");

        // The page cache is gone: a kept its first record and a few bytes of the next, b
        // (whose creation was fsynced) nothing at all.
        lose_writes_after(&a_path, a_after_first + 5);
        lose_writes_after(&b_path, 0);

        let log = open(dir.path(), NO_ROTATION);
        assert_eq!(log.stats().recovered, 2 + 4);
        assert!(
            wal_files(dir.path()).is_empty(),
            "the WAL was replayed and removed"
        );
        assert_eq!(
            log.inner.read(&a).expect("read"),
            vec![
                (1, update("a", 1)),
                (2, update("a", 2)),
                (3, update("a", 3))
            ]
        );
        assert_eq!(
            log.inner.read(&b).expect("read"),
            (1..=4)
                .map(|i| (i as u64, update("b", i)))
                .collect::<Vec<_>>()
        );
        assert_eq!(fs::read(&a_path).expect("read"), a_whole, "byte for byte");
        assert_eq!(fs::read(&b_path).expect("read"), b_whole, "byte for byte");
        assert_eq!(log.inner.append(&a, &[update("a", 4)]).expect("append"), 4);
    }

    #[test]
    fn a_log_opened_under_the_interval_policy_replays_a_dead_wal_too() {
        let dir = tempfile::tempdir().expect("temp dir");
        let log = open(dir.path(), NO_ROTATION);
        let d = doc("d");
        let path = log.path_of(&d);
        log.inner.append(&d, &[update("d", 1)]).expect("append");
        log.crash();
        lose_writes_after(&path, 0);
        let interval = FsyncPolicy::Interval(Duration::from_secs(3600));
        let log = FsLog::open_with(dir.path().to_owned(), interval, NO_ROTATION).expect("open");
        assert_eq!(log.inner.read(&d).expect("read"), vec![(1, update("d", 1))]);
        assert!(wal_files(dir.path()).is_empty());
    }

    #[test]
    fn a_deleted_document_is_not_resurrected_by_its_wal_entries() {
        let dir = tempfile::tempdir().expect("temp dir");
        let log = open(dir.path(), NO_ROTATION);
        let (gone, again) = (doc("gone"), doc("again"));
        for i in 1..=3 {
            log.inner
                .append(&gone, &[update("gone", i)])
                .expect("append");
            log.inner
                .append(&again, &[update("again", i)])
                .expect("append");
        }
        log.inner.delete(&gone).expect("delete");
        log.inner.delete(&again).expect("delete");
        // Created anew: numbering starts over at 1, below the old entries' 2 and 3.
        let fresh = Bytes::from_static(b"fresh");
        assert_eq!(
            log.inner
                .append(&again, std::slice::from_ref(&fresh))
                .expect("append"),
            1
        );
        let again_path = log.path_of(&again);
        log.crash();
        lose_writes_after(&again_path, 0);

        let log = open(dir.path(), NO_ROTATION);
        assert!(
            !log.path_of(&gone).exists(),
            "no file for the deleted document"
        );
        assert_eq!(log.inner.read(&gone).expect("read"), vec![]);
        assert_eq!(
            log.inner.read(&again).expect("read"),
            vec![(1, fresh)],
            "only the new document's record"
        );
        assert!(wal_files(dir.path()).is_empty());
    }

    #[test]
    fn records_a_truncation_dropped_are_not_appended_again() {
        let dir = tempfile::tempdir().expect("temp dir");
        let log = open(dir.path(), NO_ROTATION);
        let d = doc("snapshotted");
        let path = log.path_of(&d);
        for i in 1..=3 {
            log.inner
                .append(&d, &[update("snapshotted", i)])
                .expect("append");
        }
        log.inner.truncate(&d, 2).expect("truncate");
        log.inner
            .append(&d, &[update("snapshotted", 4)])
            .expect("append");
        // Checkpointing the WAL fsyncs the handle of the file truncation replaced; that
        // must neither fail nor bring anything back.
        checkpoint(&log);
        assert_eq!(
            log.inner.read(&d).expect("read"),
            vec![(3, update("snapshotted", 3)), (4, update("snapshotted", 4))]
        );
        log.inner
            .append(&d, &[update("snapshotted", 5)])
            .expect("append");
        log.inner.truncate(&d, 3).expect("truncate");
        let truncated_again = len_of(&path);
        log.inner
            .append(&d, &[update("snapshotted", 6)])
            .expect("append");
        log.crash();
        lose_writes_after(&path, truncated_again);

        let log = open(dir.path(), NO_ROTATION);
        assert_eq!(
            log.inner.read(&d).expect("read"),
            vec![
                (4, update("snapshotted", 4)),
                (5, update("snapshotted", 5)),
                (6, update("snapshotted", 6))
            ]
        );
        assert_eq!(log.stats().recovered, 1, "only record 6 was missing");
    }

    #[test]
    fn the_wal_of_a_live_log_is_not_replayed() {
        let dir = tempfile::tempdir().expect("temp dir");
        let live = open(dir.path(), NO_ROTATION);
        let d = doc("d");
        let path = live.path_of(&d);
        live.inner.append(&d, &[update("d", 1)]).expect("append");
        let after_first = len_of(&path);
        live.inner.append(&d, &[update("d", 2)]).expect("append");
        lose_writes_after(&path, after_first);

        let second = open(dir.path(), NO_ROTATION);
        assert_eq!(second.stats().recovered, 0);
        assert_eq!(len_of(&path), after_first, "nothing replayed");
        assert_eq!(wal_files(dir.path()).len(), 1, "the live WAL stays");
        drop(second);

        // Once its process is gone, the next open replays it.
        live.crash();
        let third = open(dir.path(), NO_ROTATION);
        assert_eq!(third.stats().recovered, 1);
        assert_eq!(
            third.inner.read(&d).expect("read"),
            vec![(1, update("d", 1)), (2, update("d", 2))]
        );
    }

    #[test]
    fn full_wals_are_checkpointed_and_removed() {
        let dir = tempfile::tempdir().expect("temp dir");
        let limits = WalLimits {
            max_bytes: 4096,
            ..NO_ROTATION
        };
        let log = open(dir.path(), limits);
        let names = ["a", "b", "c", "d"];
        for round in 0..100 {
            for name in names {
                log.inner
                    .append(&doc(name), &[update(name, round)])
                    .expect("append");
            }
        }
        let stats = log.stats();
        assert!(stats.wal_files >= 5, "{stats:?}");
        // Every WAL but the current one is retired; its checkpoint counts once it is removed.
        wait_until("the full WALs are checkpointed", || {
            log.stats().checkpoints >= stats.wal_files - 1
        });
        assert!(wal_files(dir.path()).len() <= 1);
        for name in names {
            let expected: Vec<(u64, Bytes)> = (0..100)
                .map(|round| (round as u64 + 1, update(name, round)))
                .collect();
            assert_eq!(log.inner.read(&doc(name)).expect("read"), expected);
        }
        checkpoint(&log);
        assert!(wal_files(dir.path()).is_empty());
        assert_eq!(log.stats().checkpoints, log.stats().wal_files);
    }

    #[test]
    fn an_idle_wal_is_checkpointed_once_old_enough() {
        let dir = tempfile::tempdir().expect("temp dir");
        let limits = WalLimits {
            max_age: Duration::from_millis(1),
            ..NO_ROTATION
        };
        let log = open(dir.path(), limits);
        log.inner
            .append(&doc("d"), &[update("d", 1)])
            .expect("append");
        // The counter moves after the removal is durable.
        wait_until("the WAL is checkpointed", || log.stats().checkpoints == 1);
        assert!(wal_files(dir.path()).is_empty());
    }

    #[test]
    fn a_clean_shutdown_leaves_no_wal() {
        let dir = tempfile::tempdir().expect("temp dir");
        let log = open(dir.path(), NO_ROTATION);
        log.inner
            .append(&doc("d"), &[update("d", 1)])
            .expect("append");
        assert_eq!(wal_files(dir.path()).len(), 1);
        let clone = log.clone();
        drop(log);
        assert_eq!(wal_files(dir.path()).len(), 1, "a clone still uses it");
        drop(clone);
        assert!(wal_files(dir.path()).is_empty());
        assert_eq!(
            open(dir.path(), NO_ROTATION)
                .inner
                .read(&doc("d"))
                .expect("read"),
            vec![(1, update("d", 1))]
        );
    }
}

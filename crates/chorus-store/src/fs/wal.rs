//! The node-wide write-ahead log (WAL) that makes [`FsyncPolicy::Always`](crate::FsyncPolicy)
//! appends durable with one `fdatasync` for many documents; [`super::log`] explains where it
//! fits. This module owns the WAL files, the writer and checkpointer threads, and reading dead
//! WALs back; replaying them into document logs is [`super::log`]'s job.
//!
//! ```text
//! file   := log_record file header (name "chorus write-ahead log")
//!           • log_record record*        (record seq = entry number within the file)
//! entry  := u8 kind (1 = append) • u64 LE inode • u64 LE birth time (ns, 0 if unknown)
//!           • u64 LE document seq • u16 LE name length • name • update
//! ```
//!
//! The inode and birth time name the *incarnation* of the document's log file the record was
//! written to. Replay skips entries for another incarnation: the document was deleted (and
//! maybe created again, numbering from 1), or its log was rewritten by truncation, which
//! fsyncs every record it keeps, so nothing of the old file needs replaying.
//!
//! Files are `wal-<16 hex>.wal` in the log directory, each `flock`ed by its process while it
//! exists: a WAL whose lock can be taken belongs to a dead process and is replayed at the next
//! open. A new WAL is created under a temporary name, locked, then renamed, so it is never
//! visible unlocked while its owner lives.

use std::collections::{HashMap, hash_map};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, UNIX_EPOCH};

use bytes::{Buf, BufMut, Bytes, BytesMut};
use tokio::sync::oneshot;

use super::durable::{self, FileId};
use super::lock::FileLock;
use super::log::Counters;
use crate::log_record::{self, put_file_header, put_record};

/// Start of every WAL file name.
const WAL_PREFIX: &str = "wal-";
/// End of every WAL file name; never `.log`, so listing documents does not see WALs.
const WAL_SUFFIX: &str = ".wal";
/// Name in the WAL's file header, so that no tool mistakes it for a document's log.
const WAL_HEADER_NAME: &str = "chorus write-ahead log";
/// Serialises recovery between processes opening one directory at once: the second waits until
/// the first has replayed (and removed) the dead WALs, instead of serving before that.
/// Starts with `.`, which a document stem never does.
const RECOVERY_LOCK: &str = ".wal-recovery.lock";

/// Appends waiting for the writer. When full, appenders block in [`Wal::submit`] until the
/// writer takes the next batch: backpressure, nothing is dropped.
const QUEUE_CAPACITY: usize = 4096;
/// Most appends in one WAL write, so that one batch cannot grow without bound while the
/// queue keeps refilling.
const MAX_BATCH: usize = 4096;
/// Retired WALs waiting for their checkpoint. When full the writer (and so appends) waits:
/// it bounds how many WAL files and open document handles pile up behind a slow disk.
const RETIRED_CAPACITY: usize = 4;

/// Entry kind: an appended record.
const ENTRY_APPEND: u8 = 1;
/// Bytes an entry adds before its name and update: kind, inode, birth, seq, name length.
pub(super) const ENTRY_HEADER: usize = 1 + 8 + 8 + 8 + 2;

/// When the current WAL is retired (checkpointed) and a new one started.
#[derive(Debug, Clone, Copy)]
pub(crate) struct WalLimits {
    /// Size past which the WAL is retired: bounds replay time and disk use.
    pub(crate) max_bytes: u64,
    /// Age (since its first write) past which the WAL is retired: bounds how long document
    /// files stay unsynced and how many handles the checkpoint keeps open.
    pub(crate) max_age: Duration,
}

impl Default for WalLimits {
    fn default() -> Self {
        Self {
            max_bytes: 16 * 1024 * 1024,
            max_age: Duration::from_secs(1),
        }
    }
}

/// Which incarnation of a document's log file a record went to; see the module docs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Incarnation {
    ino: u64,
    birth_ns: u64,
}

impl Incarnation {
    /// The incarnation behind `meta`. The birth time tells apart a new file that reuses a
    /// deleted file's inode number; where the file system has none, the inode alone decides.
    pub(super) fn of(meta: &fs::Metadata) -> Self {
        #[cfg(unix)]
        let ino = std::os::unix::fs::MetadataExt::ino(meta);
        #[cfg(not(unix))]
        let ino = 0;
        let birth_ns = meta
            .created()
            .ok()
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
        Self { ino, birth_ns }
    }
}

/// Records just written (not fsynced) to a document's log, handed to the WAL.
#[derive(Debug)]
pub(super) struct Submission {
    /// The document's name.
    pub(super) doc: String,
    /// The log file they were written to.
    pub(super) file: Incarnation,
    /// The records, with their sequence numbers.
    pub(super) records: Vec<(u64, Bytes)>,
}

/// Document files written since the last retirement of a WAL, for its checkpoint to fsync.
///
/// An appender adds its file *before* submitting, and the writer takes the set when it
/// retires a WAL, between two batches. So an entry in WAL `k` has its file in the set of WAL
/// `k` or of an earlier one, and checkpoints run in order: by the time WAL `k` is removed, the
/// file has been fsynced after the write. Appenders doing this themselves keeps the writer's
/// serial work to one write and one fsync per batch.
type DirtySet = HashMap<FileId, (PathBuf, File)>;

/// Answers one appender or checkpoint request. A tokio oneshot: an async append awaits it
/// without keeping a blocking-pool thread asleep (thread hand-offs, not fsyncs, are what
/// costs most once fsyncs are shared), and blocking callers use `blocking_recv`.
type Reply = oneshot::Sender<io::Result<()>>;

/// Resolves once an append's records are durable in the WAL, or failed to be.
pub(super) type Durable = oneshot::Receiver<io::Result<()>>;

enum Cmd {
    Append(Submission, Reply),
    Checkpoint(Reply),
    /// Tests: stop as a crash would, leaving the current WAL unlocked and unsynced files as
    /// they are.
    #[cfg(test)]
    Abandon,
}

/// The handle [`super::log`] keeps: the writer and checkpointer threads behind it end, after a
/// final checkpoint, when it is dropped.
#[derive(Debug)]
pub(super) struct Wal {
    cmd_tx: Option<SyncSender<Cmd>>,
    dirty: std::sync::Arc<std::sync::Mutex<DirtySet>>,
    threads: Vec<JoinHandle<()>>,
    counters: std::sync::Arc<Counters>,
    /// Tests: the writer holds this while it collects and writes a batch.
    #[cfg(test)]
    gate: std::sync::Arc<std::sync::Mutex<()>>,
}

impl Wal {
    /// Starts the writer and checkpointer threads for WALs in `dir`. No file is created until
    /// the first append: an idle log leaves no WAL behind.
    pub(super) fn start(
        dir: &Path,
        limits: WalLimits,
        counters: std::sync::Arc<Counters>,
    ) -> io::Result<Self> {
        let (cmd_tx, cmd_rx) = mpsc::sync_channel(QUEUE_CAPACITY);
        let (retired_tx, retired_rx) = mpsc::sync_channel(RETIRED_CAPACITY);
        #[cfg(test)]
        let gate = std::sync::Arc::default();
        let dirty = std::sync::Arc::default();
        let writer = Writer {
            dir: dir.to_owned(),
            dirty: std::sync::Arc::clone(&dirty),
            limits,
            counters: std::sync::Arc::clone(&counters),
            current: None,
            retired_tx,
            #[cfg(test)]
            gate: std::sync::Arc::clone(&gate),
        };
        let checkpointer = Checkpointer {
            dir: dir.to_owned(),
            counters: std::sync::Arc::clone(&counters),
            kept: Vec::new(),
            failure: None,
        };
        let checkpoint_thread = std::thread::Builder::new()
            .name("chorus-wal-checkpoint".to_owned())
            .spawn(move || checkpointer.run(retired_rx))?;
        let writer_thread = std::thread::Builder::new()
            .name("chorus-wal".to_owned())
            .spawn(move || writer.run(cmd_rx))?;
        Ok(Self {
            cmd_tx: Some(cmd_tx),
            dirty,
            // Joined in this order: the writer's end closes the checkpointer's queue.
            threads: vec![writer_thread, checkpoint_thread],
            counters,
            #[cfg(test)]
            gate,
        })
    }

    /// Hands the records of `submission` to the writer; the returned receiver resolves once
    /// they are durable. `written` is the document file they were written to and `id` its
    /// identity: the checkpoint fsyncs a second handle to it, taken once per WAL, not once
    /// per append.
    pub(super) fn submit(
        &self,
        submission: Submission,
        id: FileId,
        path: &Path,
        written: &File,
    ) -> io::Result<Durable> {
        if let hash_map::Entry::Vacant(slot) = lock_dirty(&self.dirty).entry(id) {
            slot.insert((path.to_owned(), written.try_clone()?));
        }
        let (reply_tx, reply_rx) = oneshot::channel();
        self.send(Cmd::Append(submission, reply_tx))?;
        Counters::add(&self.counters.wal_submissions, 1);
        Ok(reply_rx)
    }

    /// Retires the current WAL and blocks until every WAL retired so far is checkpointed
    /// (document files fsynced, WAL removed).
    pub(super) fn checkpoint(&self) -> io::Result<()> {
        let (reply_tx, reply_rx) = oneshot::channel();
        self.send(Cmd::Checkpoint(reply_tx))?;
        reply_rx.blocking_recv().unwrap_or_else(|_| Err(stopped()))
    }

    fn send(&self, cmd: Cmd) -> io::Result<()> {
        self.cmd_tx
            .as_ref()
            .ok_or_else(stopped)?
            .send(cmd)
            .map_err(|_| stopped())
    }

    /// Tests: makes the writer stop as in a crash (see [`Cmd::Abandon`]).
    #[cfg(test)]
    pub(super) fn abandon(&self) {
        let _ = self.send(Cmd::Abandon);
    }

    /// Tests: while the guard lives the writer cannot start a batch.
    #[cfg(test)]
    pub(super) fn pause(&self) -> std::sync::MutexGuard<'_, ()> {
        self.gate
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl Drop for Wal {
    fn drop(&mut self) {
        // Closing the queue makes the writer retire the current WAL and end; the checkpointer
        // ends once it has checkpointed everything retired.
        self.cmd_tx = None;
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}

fn lock_dirty(dirty: &std::sync::Mutex<DirtySet>) -> std::sync::MutexGuard<'_, DirtySet> {
    // Every critical section is one insert or one swap: a panic cannot leave it half done.
    dirty
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

pub(super) fn stopped() -> io::Error {
    io::Error::other("the write-ahead log writer has stopped")
}

/// The WAL being written and what its checkpoint will have to fsync.
struct Epoch {
    path: PathBuf,
    /// Holds the WAL's `flock` for as long as the file exists.
    file: File,
    len: u64,
    opened: Instant,
    entries: u64,
}

impl Epoch {
    /// Creates, locks and names a new WAL; see the module docs.
    fn create(dir: &Path) -> io::Result<Self> {
        let temp = durable::temp_path(dir);
        let created = (|| {
            let mut file = OpenOptions::new()
                .read(true)
                .write(true)
                .create_new(true)
                .open(&temp)?;
            // Nobody else knows this file yet: taking its lock cannot fail for contention.
            fs4::FileExt::try_lock(&file).map_err(io::Error::from)?;
            let mut header = BytesMut::new();
            put_file_header(&mut header, WAL_HEADER_NAME);
            file.write_all(&header)?;
            let path = loop {
                let path = dir.join(format!(
                    "{WAL_PREFIX}{:016x}{WAL_SUFFIX}",
                    fastrand::u64(..)
                ));
                if !fs::exists(&path)? {
                    break path;
                }
            };
            fs::rename(&temp, &path)?;
            // The WAL's name must survive a power cut before anything in it is acknowledged.
            durable::sync_dir(dir)?;
            Ok(Self {
                path,
                file,
                len: header.len() as u64,
                opened: Instant::now(),
                entries: 0,
            })
        })();
        if created.is_err() {
            let _ = fs::remove_file(&temp);
        }
        created
    }
}

/// A WAL to checkpoint (none when only waiting for earlier ones), the files to fsync before
/// removing it, and who waits for it.
struct Retired {
    epoch: Option<Epoch>,
    dirty: DirtySet,
    replies: Vec<Reply>,
}

/// The `chorus-wal` thread: group commit.
struct Writer {
    dir: PathBuf,
    limits: WalLimits,
    counters: std::sync::Arc<Counters>,
    current: Option<Epoch>,
    dirty: std::sync::Arc<std::sync::Mutex<DirtySet>>,
    retired_tx: SyncSender<Retired>,
    #[cfg(test)]
    gate: std::sync::Arc<std::sync::Mutex<()>>,
}

impl Writer {
    fn run(mut self, cmd_rx: Receiver<Cmd>) {
        loop {
            let first = match &self.current {
                Some(epoch) => {
                    let left = self.limits.max_age.saturating_sub(epoch.opened.elapsed());
                    match cmd_rx.recv_timeout(left) {
                        Ok(cmd) => cmd,
                        Err(RecvTimeoutError::Timeout) => {
                            self.retire(Vec::new());
                            continue;
                        }
                        Err(RecvTimeoutError::Disconnected) => break,
                    }
                }
                None => match cmd_rx.recv() {
                    Ok(cmd) => cmd,
                    Err(_) => break,
                },
            };
            #[cfg(test)]
            let gate = std::sync::Arc::clone(&self.gate);
            #[cfg(test)]
            let _paused = gate
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            // Everything queued meanwhile goes into the same write and fsync.
            let mut appends = Vec::new();
            let mut checkpoints = Vec::new();
            let mut next = Some(first);
            while let Some(cmd) = next.take() {
                match cmd {
                    Cmd::Append(submission, reply) => appends.push((submission, reply)),
                    Cmd::Checkpoint(reply) => checkpoints.push(reply),
                    #[cfg(test)]
                    Cmd::Abandon => return,
                }
                if appends.len() < MAX_BATCH {
                    next = cmd_rx.try_recv().ok();
                }
            }
            if !appends.is_empty() {
                self.commit(appends);
            }
            let full = self.current.as_ref().is_some_and(|epoch| {
                epoch.len >= self.limits.max_bytes || epoch.opened.elapsed() >= self.limits.max_age
            });
            if full || !checkpoints.is_empty() {
                self.retire(checkpoints);
            }
        }
        // The last handle is gone: checkpoint everything, so a clean shutdown leaves no WAL.
        self.retire(Vec::new());
    }

    /// Writes a batch with one write and one fdatasync, then answers every appender.
    fn commit(&mut self, appends: Vec<(Submission, Reply)>) {
        match self.write(&appends) {
            Ok(()) => {
                for (_, reply) in appends {
                    let _ = reply.send(Ok(()));
                }
            }
            Err(e) => {
                tracing::error!(dir = %self.dir.display(), error = %e, "write-ahead log write failed; starting a new one");
                for (_, reply) in appends {
                    let _ = reply.send(Err(io::Error::new(e.kind(), e.to_string())));
                }
                // After a failed write or fsync what the file holds is unknown: earlier
                // batches were synced, so checkpoint it as usual and write the next batch to
                // a new one.
                self.retire(Vec::new());
            }
        }
    }

    fn write(&mut self, appends: &[(Submission, Reply)]) -> io::Result<()> {
        let epoch = match &mut self.current {
            Some(epoch) => epoch,
            None => {
                let epoch = Epoch::create(&self.dir)?;
                Counters::add(&self.counters.wal_files, 1);
                self.current.insert(epoch)
            }
        };
        let mut batch = BytesMut::new();
        let mut entry = BytesMut::new();
        for (submission, _) in appends {
            for (seq, update) in &submission.records {
                entry.clear();
                put_entry(&mut entry, &submission.doc, submission.file, *seq, update);
                epoch.entries += 1;
                put_record(&mut batch, epoch.entries, &entry);
            }
        }
        Counters::add(&self.counters.wal_fsyncs, 1);
        (&epoch.file)
            .write_all(&batch)
            .and_then(|()| epoch.file.sync_data())?;
        epoch.len += batch.len() as u64;
        Ok(())
    }

    /// Hands the current WAL (if any) to the checkpointer; the next append starts a new one.
    fn retire(&mut self, replies: Vec<Reply>) {
        let epoch = self.current.take();
        let dirty = std::mem::take(&mut *lock_dirty(&self.dirty));
        if epoch.is_none() && dirty.is_empty() && replies.is_empty() {
            return;
        }
        let retired = Retired {
            epoch,
            dirty,
            replies,
        };
        if let Err(mpsc::SendError(retired)) = self.retired_tx.send(retired) {
            // The checkpointer is gone (it panicked): keep the WAL for the next start.
            for reply in retired.replies {
                let _ = reply.send(Err(stopped()));
            }
            if let Some(epoch) = retired.epoch {
                tracing::error!(wal = %epoch.path.display(), "write-ahead log checkpointer stopped; leaving the log for recovery");
            }
        }
    }
}

/// The `chorus-wal-checkpoint` thread: fsyncs what a retired WAL covers, then removes it.
struct Checkpointer {
    dir: PathBuf,
    counters: std::sync::Arc<Counters>,
    /// WALs whose checkpoint failed: kept, and locked while this process lives, so that the
    /// next start replays them.
    kept: Vec<File>,
    /// The last failure, reported to the next checkpoint request.
    failure: Option<io::Error>,
}

impl Checkpointer {
    fn run(mut self, retired_rx: Receiver<Retired>) {
        for retired in retired_rx {
            let wal = retired.epoch.as_ref().map(|e| e.path.clone());
            if let Err(e) = self.checkpoint(retired.epoch, retired.dirty) {
                tracing::error!(wal = ?wal, error = %e, "checkpoint failed; the write-ahead log is kept for recovery at the next start");
                self.failure = Some(e);
            }
            if retired.replies.is_empty() {
                continue;
            }
            let failure = self.failure.take();
            for reply in retired.replies {
                let _ = reply.send(match &failure {
                    None => Ok(()),
                    Some(e) => Err(io::Error::new(e.kind(), e.to_string())),
                });
            }
        }
    }

    fn checkpoint(&mut self, epoch: Option<Epoch>, dirty: DirtySet) -> io::Result<()> {
        let mut first_error = None;
        // A handle may be of a file deleted or replaced (truncation) since: fsyncing an
        // unlinked inode succeeds and writes nothing anyone can see, so it resurrects nothing.
        for (log_path, log_file) in dirty.into_values() {
            Counters::add(&self.counters.log_fsyncs, 1);
            if let Err(e) = log_file.sync_data() {
                tracing::error!(file = %log_path.display(), error = %e, "fsync of update log failed");
                first_error.get_or_insert(e);
            }
        }
        let Some(Epoch { path, file, .. }) = epoch else {
            return first_error.map_or(Ok(()), Err);
        };
        let removed = match first_error {
            Some(e) => Err(e),
            None => match fs::remove_file(&path) {
                Ok(()) => durable::sync_dir(&self.dir),
                Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
                Err(e) => Err(e),
            },
        };
        match removed {
            Ok(()) => Counters::add(&self.counters.checkpoints, 1),
            Err(_) => self.kept.push(file),
        }
        removed
    }
}

/// Appends one WAL entry (the payload of one WAL record).
fn put_entry(out: &mut BytesMut, doc: &str, file: Incarnation, seq: u64, update: &[u8]) {
    out.put_u8(ENTRY_APPEND);
    out.put_u64_le(file.ino);
    out.put_u64_le(file.birth_ns);
    out.put_u64_le(seq);
    // Document names are at most 512 bytes (`DocName`).
    out.put_u16_le(doc.len() as u16);
    out.put_slice(doc.as_bytes());
    out.put_slice(update);
}

/// One record read back from a dead WAL.
#[derive(Debug)]
pub(super) struct Entry {
    pub(super) doc: String,
    pub(super) file: Incarnation,
    pub(super) seq: u64,
    pub(super) update: Bytes,
}

fn parse_entry(mut payload: Bytes) -> Option<Entry> {
    if payload.len() < ENTRY_HEADER || payload.get_u8() != ENTRY_APPEND {
        return None;
    }
    let file = Incarnation {
        ino: payload.get_u64_le(),
        birth_ns: payload.get_u64_le(),
    };
    let seq = payload.get_u64_le();
    let name_len = usize::from(payload.get_u16_le());
    if payload.len() < name_len {
        return None;
    }
    let name = payload.split_to(name_len);
    let doc = String::from_utf8(name.to_vec()).ok()?;
    Some(Entry {
        doc,
        file,
        seq,
        update: payload,
    })
}

/// The WALs of dead processes in a directory, claimed (locked) for replay.
pub(super) struct Dead {
    /// Held until the replay is done; see [`RECOVERY_LOCK`].
    _recovery: FileLock,
    files: Vec<(PathBuf, File)>,
    /// Every entry of every claimed WAL, in file order.
    pub(super) entries: Vec<Entry>,
}

impl Dead {
    /// Locks every WAL in `dir` whose owner is gone and reads its entries. Live WALs (locked
    /// by their process) are left alone.
    pub(super) fn claim(dir: &Path) -> io::Result<Self> {
        let recovery = FileLock::acquire(&dir.join(RECOVERY_LOCK))?;
        let mut dead = Self {
            _recovery: recovery,
            files: Vec::new(),
            entries: Vec::new(),
        };
        for dir_entry in fs::read_dir(dir)? {
            let path = dir_entry?.path();
            let is_wal = path
                .file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(WAL_PREFIX) && n.ends_with(WAL_SUFFIX));
            if !is_wal {
                continue;
            }
            let mut file = match OpenOptions::new().read(true).write(true).open(&path) {
                Ok(file) => file,
                // Checkpointed by its owner since we listed the directory.
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(e),
            };
            match fs4::FileExt::try_lock(&file) {
                Ok(()) => {}
                Err(fs4::TryLockError::WouldBlock) => {
                    tracing::debug!(wal = %path.display(), "write-ahead log in use by a live process");
                    continue;
                }
                Err(fs4::TryLockError::Error(e)) => return Err(e),
            }
            // Its owner may have removed it between our open and our lock.
            let locked = FileId::of(&file.metadata()?);
            match fs::metadata(&path) {
                Ok(meta) if FileId::of(&meta) == locked => {}
                Ok(_) => continue,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(e),
            }
            let mut bytes = Vec::new();
            file.read_to_end(&mut bytes)?;
            let mut scan = log_record::scan(&Bytes::from(bytes));
            let before = dead.entries.len();
            let mut unreadable = 0;
            for record in std::mem::take(&mut scan.records) {
                match parse_entry(record.payload) {
                    Some(entry) => dead.entries.push(entry),
                    None => unreadable += 1,
                }
            }
            tracing::info!(
                wal = %path.display(),
                entries = dead.entries.len() - before,
                torn_tail_bytes = scan.torn_tail.as_ref().map_or(0, ExactSizeIterator::len),
                "found the write-ahead log of a process that did not shut down cleanly"
            );
            let foreign = scan.name.as_deref().is_some_and(|n| n != WAL_HEADER_NAME);
            if scan.is_damaged() || unreadable > 0 || foreign {
                tracing::warn!(
                    wal = %path.display(),
                    damaged_bytes = scan.damaged_bytes(),
                    unreadable_entries = unreadable,
                    "write-ahead log is damaged; replaying the entries that check out"
                );
            }
            dead.files.push((path, file));
        }
        Ok(dead)
    }

    /// Removes the claimed WALs, once what they hold is durable in the document logs.
    pub(super) fn remove(self, dir: &Path) -> io::Result<()> {
        if self.files.is_empty() {
            return Ok(());
        }
        for (path, _) in &self.files {
            match fs::remove_file(path) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
        durable::sync_dir(dir)
    }
}

/// Whether `name` is a WAL file's name (tests count them).
#[cfg(test)]
pub(super) fn is_wal_name(name: &str) -> bool {
    name.starts_with(WAL_PREFIX) && name.ends_with(WAL_SUFFIX)
}

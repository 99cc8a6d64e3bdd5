//! The node-wide write-ahead log (WAL) every append goes to first; under
//! [`FsyncPolicy::Always`](crate::FsyncPolicy) one `fdatasync` of it makes many documents'
//! appends durable; [`super::log`] explains where it
//! fits. This module owns the WAL files, the writer and checkpointer threads, and reading dead
//! WALs back; and replaying them into document logs.
//!
//! ```text
//! file   := log_record file header (name "chorus write-ahead log")
//!           • log_record record*        (record seq = entry number within the file)
//! entry  := u8 kind (1 = append) • u64 LE inode • u64 LE birth time (ns, 0 if unknown)
//!           • u64 LE document seq • u16 LE name length • name • update
//! ```
//!
//! The inode and birth time name the *incarnation* of the document's log file the record is
//! for (the file its process held the lease on). Replay skips entries for another incarnation:
//! the document was deleted (and maybe created again, numbering from 1), or its log was
//! rewritten by truncation, which first flushes every pending record into the old file and
//! fsyncs every record it keeps, so nothing of the old file needs replaying.
//!
//! Files are `wal-<16 hex>.wal` in the log directory, each `flock`ed by its process while it
//! exists: a WAL whose lock can be taken belongs to a dead process and is replayed at the next
//! open. A new WAL is created under a temporary name, locked, then renamed, so it is never
//! visible unlocked while its owner lives.
//!
//! # Layout
//! - [`format`]: file names and the entry format;
//! - [`channel`]: what appenders, this handle and the writer pass each other;
//! - [`epoch`], [`writer`], [`checkpoint`]: the WAL being written, the `chorus-wal` writer
//!   thread and the `chorus-wal-checkpoint` thread;
//! - [`dead`], [`replay`]: reading back the WALs of dead processes and replaying them.

mod channel;
mod checkpoint;
mod dead;
mod epoch;
mod format;
mod replay;
mod writer;

use std::io;
use std::path::Path;
use std::sync::Arc;
#[cfg(test)]
use std::sync::Mutex;
use std::sync::mpsc::{self, Sender};
use std::thread::JoinHandle;

use tokio::sync::oneshot;

use super::deferred::Deferred;
use super::stats::Counters;
use channel::Cmd;
use checkpoint::Checkpointer;
use writer::Writer;

pub(crate) use channel::{SyncWait, stopped};
#[cfg(test)]
pub(crate) use epoch::MIN_PREALLOC;
#[cfg(test)]
pub(crate) use format::is_wal_name;
pub(crate) use format::{ENTRY_HEADER, Submission};
pub(crate) use replay::replay_dead_wals;
pub(crate) use writer::WalLimits;

/// Retired WALs waiting for their checkpoint. When full the writer (and so appends) waits:
/// it bounds how many WAL files and open document handles pile up behind a slow disk.
const RETIRED_CAPACITY: usize = 4;

/// The handle [`super::log`] keeps: the writer and checkpointer threads behind it end, after a
/// final checkpoint, when it is dropped.
#[derive(Debug)]
pub(crate) struct Wal {
    /// Unbounded, so that submitting never blocks (it happens under a document's state, on
    /// the async path). What bounds it: a room has one append in flight at a time.
    cmd_tx: Option<Sender<Cmd>>,
    threads: Vec<JoinHandle<()>>,
    counters: Arc<Counters>,
    /// Tests: the writer holds this while it collects and writes a batch.
    #[cfg(test)]
    gate: Arc<Mutex<()>>,
}

impl Wal {
    /// Starts the writer and checkpointer threads for WALs in `dir`; the writer fsyncs each
    /// batch if `sync_each_batch`, and a checkpoint writes `deferred`'s records to the
    /// document logs. No file is created until the first append: an idle log leaves no WAL
    /// behind.
    pub(crate) fn start(
        dir: &Path,
        limits: WalLimits,
        sync_each_batch: bool,
        deferred: Arc<Deferred>,
    ) -> io::Result<Self> {
        let counters = Arc::clone(&deferred.files().counters);
        let (cmd_tx, cmd_rx) = mpsc::channel();
        let (retired_tx, retired_rx) = mpsc::sync_channel(RETIRED_CAPACITY);
        #[cfg(test)]
        let gate = Arc::default();
        let spare = epoch::Spare::default();
        let writer = Writer {
            dir: dir.to_owned(),
            sync_each_batch,
            deferred: Arc::clone(&deferred),
            limits,
            counters: Arc::clone(&counters),
            current: None,
            next_prealloc: epoch::MIN_PREALLOC,
            spare: Arc::clone(&spare),
            retired_tx,
            #[cfg(test)]
            gate: Arc::clone(&gate),
        };
        let checkpointer = Checkpointer {
            dir: dir.to_owned(),
            deferred,
            counters: Arc::clone(&counters),
            kept: Vec::new(),
            failure: None,
            spare,
        };
        let checkpoint_thread = std::thread::Builder::new()
            .name("chorus-wal-checkpoint".to_owned())
            .spawn(move || checkpointer.run(retired_rx))?;
        let writer_thread = std::thread::Builder::new()
            .name("chorus-wal".to_owned())
            .spawn(move || writer.run(cmd_rx))?;
        Ok(Self {
            cmd_tx: Some(cmd_tx),
            // Joined in this order: the writer's end closes the checkpointer's queue.
            threads: vec![writer_thread, checkpoint_thread],
            counters,
            #[cfg(test)]
            gate,
        })
    }

    /// Hands the records of `submission` to the writer without blocking; the returned
    /// receiver resolves once they are durable.
    pub(crate) fn submit(&self, submission: Submission) -> io::Result<SyncWait> {
        let (reply_tx, reply_rx) = oneshot::channel();
        self.send(Cmd::Append(submission, reply_tx))?;
        Counters::add(&self.counters.wal_submissions, 1);
        Ok(reply_rx)
    }

    /// Retires the current WAL and blocks until every WAL retired so far is checkpointed
    /// (deferred records written to the document files and fsynced, WAL removed).
    pub(crate) fn checkpoint(&self) -> io::Result<()> {
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
    pub(crate) fn abandon(&self) {
        let _ = self.send(Cmd::Abandon);
    }

    /// Tests: while the guard lives the writer cannot start a batch.
    #[cfg(test)]
    pub(crate) fn pause(&self) -> std::sync::MutexGuard<'_, ()> {
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

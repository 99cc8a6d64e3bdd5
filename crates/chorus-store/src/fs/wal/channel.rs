//! What the [`Wal`](super::Wal) handle, appenders and the writer pass each other.

use std::collections::HashMap;
use std::fs::File;
use std::io;
use std::path::PathBuf;
use std::sync::{Mutex, MutexGuard, PoisonError};

use tokio::sync::oneshot;

use super::format::Submission;
use crate::fs::crash_safe::FileId;

/// Document files written since the last retirement of a WAL, for its checkpoint to fsync.
///
/// An appender adds its file *before* submitting, and the writer takes the set when it
/// retires a WAL, between two batches. So an entry in WAL `k` has its file in the set of WAL
/// `k` or of an earlier one, and checkpoints run in order: by the time WAL `k` is removed, the
/// file has been fsynced after the write. Appenders doing this themselves keeps the writer's
/// serial work to one write and one fsync per batch.
pub(crate) type DirtySet = HashMap<FileId, (PathBuf, File)>;

/// Answers one appender or checkpoint request. A tokio oneshot: an async append awaits it
/// without keeping a blocking-pool thread asleep (thread hand-offs, not fsyncs, are what
/// costs most once fsyncs are shared), and blocking callers use `blocking_recv`.
pub(crate) type Reply = oneshot::Sender<io::Result<()>>;

/// Resolves once an append's records are durable in the WAL, or failed to be.
pub(crate) type SyncWait = oneshot::Receiver<io::Result<()>>;

pub(crate) enum Cmd {
    Append(Submission, Reply),
    Checkpoint(Reply),
    /// Tests: stop as a crash would, leaving the current WAL unlocked and unsynced files as
    /// they are.
    #[cfg(test)]
    Abandon,
}

pub(crate) fn lock_dirty(dirty: &Mutex<DirtySet>) -> MutexGuard<'_, DirtySet> {
    // Every critical section is one insert or one swap: a panic cannot leave it half done.
    dirty.lock().unwrap_or_else(PoisonError::into_inner)
}

pub(crate) fn stopped() -> io::Error {
    io::Error::other("the write-ahead log writer has stopped")
}

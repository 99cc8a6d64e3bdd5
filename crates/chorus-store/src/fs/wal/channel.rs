//! What the [`Wal`](super::Wal) handle, appenders and the writer pass each other.

use std::io;

use tokio::sync::oneshot;

use super::format::Submission;

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

pub(crate) fn stopped() -> io::Error {
    io::Error::other("the write-ahead log writer has stopped")
}

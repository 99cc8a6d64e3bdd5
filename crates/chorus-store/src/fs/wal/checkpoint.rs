//! The `chorus-wal-checkpoint` thread: once a WAL is retired, writes every deferred record to
//! its document's log file and fsyncs it ([`Deferred::flush_all`]), then removes the WAL.

use std::fs::{self, File};
use std::io;
use std::path::PathBuf;
use std::sync::mpsc::Receiver;
use std::sync::{Arc, PoisonError};

use super::channel::Reply;
use super::epoch::{self, Epoch, Spare};
use crate::fs::crash_safe;
use crate::fs::deferred::Deferred;
use crate::fs::stats::Counters;

/// A WAL to checkpoint (none when only waiting for earlier ones), and who waits for it.
pub(crate) struct Retired {
    pub(crate) epoch: Option<Epoch>,
    pub(crate) replies: Vec<Reply>,
    /// Make the next WAL ready, with this much space written ahead.
    pub(crate) spare_prealloc: Option<u64>,
}

/// The `chorus-wal-checkpoint` thread: writes what a retired WAL covers to the document logs,
/// then removes it.
pub(crate) struct Checkpointer {
    pub(crate) dir: PathBuf,
    /// The records waiting for their document logs.
    pub(crate) deferred: Arc<Deferred>,
    pub(crate) counters: Arc<Counters>,
    /// WALs whose checkpoint failed: kept, and locked while this process lives, so that the
    /// next start replays them.
    pub(crate) kept: Vec<File>,
    /// The last failure, reported to the next checkpoint request.
    pub(crate) failure: Option<io::Error>,
    /// Where the next WAL is made ready for the writer.
    pub(crate) spare: Spare,
}

impl Checkpointer {
    pub(crate) fn run(mut self, retired_rx: Receiver<Retired>) {
        for retired in retired_rx {
            // First, as the writer will want it before this checkpoint (which may take a
            // while) is done.
            if let Some(prealloc) = retired.spare_prealloc {
                self.make_spare(prealloc);
            }
            let wal = retired.epoch.as_ref().map(|e| e.path.clone());
            if let Err(e) = self.checkpoint(retired.epoch) {
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
        // The writer has ended: a WAL made ready for it will not be used.
        if let Some(spare) = epoch::take_spare(&self.spare) {
            epoch::discard(spare);
        }
    }

    /// Makes the next WAL ready unless one is. On failure the writer creates it itself.
    fn make_spare(&self, prealloc: u64) {
        if self
            .spare
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .is_some()
        {
            return;
        }
        match Epoch::create(&self.dir, prealloc) {
            Ok(epoch) => {
                let stale = self
                    .spare
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .replace(epoch);
                // Only this thread makes spares, so none appeared meanwhile.
                if let Some(stale) = stale {
                    epoch::discard(stale);
                }
            }
            Err(e) => {
                tracing::warn!(dir = %self.dir.display(), error = %e, "could not make the next write-ahead log ready")
            }
        }
    }

    fn checkpoint(&mut self, epoch: Option<Epoch>) -> io::Result<()> {
        // Every record of the retired WAL is pending in a leased slot, or was written and
        // fsynced by an earlier flush (see `fs::deferred`). Records appended since, which are
        // in the next WAL, are written too: earlier than needed, never too late.
        let flushed = self
            .deferred
            .flush_all()
            .map_err(|e| io::Error::other(e.to_string()));
        let Some(Epoch { path, file, .. }) = epoch else {
            return flushed;
        };
        let removed = match flushed {
            Err(e) => Err(e),
            Ok(()) => match fs::remove_file(&path) {
                Ok(()) => crash_safe::sync_dir(&self.dir),
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

//! The `chorus-wal-checkpoint` thread: once a WAL is retired, fsyncs every document file it
//! covers, then removes it.

use std::fs::{self, File};
use std::io;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::mpsc::Receiver;

use super::channel::{DirtySet, Reply};
use super::epoch::Epoch;
use crate::fs::crash_safe;
use crate::fs::stats::Counters;

/// A WAL to checkpoint (none when only waiting for earlier ones), the files to fsync before
/// removing it, and who waits for it.
pub(crate) struct Retired {
    pub(crate) epoch: Option<Epoch>,
    pub(crate) dirty: DirtySet,
    pub(crate) replies: Vec<Reply>,
}

/// The `chorus-wal-checkpoint` thread: fsyncs what a retired WAL covers, then removes it.
pub(crate) struct Checkpointer {
    pub(crate) dir: PathBuf,
    pub(crate) counters: Arc<Counters>,
    /// WALs whose checkpoint failed: kept, and locked while this process lives, so that the
    /// next start replays them.
    pub(crate) kept: Vec<File>,
    /// The last failure, reported to the next checkpoint request.
    pub(crate) failure: Option<io::Error>,
}

impl Checkpointer {
    pub(crate) fn run(mut self, retired_rx: Receiver<Retired>) {
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

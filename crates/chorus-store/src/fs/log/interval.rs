//! [`FsyncPolicy::Interval`](crate::FsyncPolicy::Interval): appends are written at once and
//! fsynced by a background thread every interval (like Redis' `appendfsync everysec`).

use std::collections::HashMap;
use std::fs::File;
use std::io;
use std::path::PathBuf;
use std::sync::{MutexGuard, PoisonError, Weak};
use std::time::Duration;

use super::Inner;
use crate::StoreError;
use crate::fs::durable::{self, FileId};
use crate::fs::stats::Counters;

/// Writes not fsynced yet, under [`FsyncPolicy::Interval`].
#[derive(Debug, Default)]
pub(crate) struct Unsynced {
    pub(crate) files: HashMap<FileId, (PathBuf, File)>,
    /// A log file was created: the directory needs an fsync too.
    pub(crate) dir: bool,
    /// The last background fsync failed; reported by the next append or flush.
    pub(crate) failure: Option<(String, io::Error)>,
}

impl Inner {
    pub(crate) fn unsynced(&self) -> MutexGuard<'_, Unsynced> {
        // As above: plain inserts and swaps.
        self.unsynced.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Reports a failed background fsync once, to whoever asks next.
    pub(crate) fn take_flush_failure(&self) -> Result<(), StoreError> {
        match self.unsynced().failure.take() {
            None => Ok(()),
            Some((location, source)) => Err(StoreError::Io {
                action: "fsyncing update log (background)",
                location,
                source,
            }),
        }
    }

    /// Fsyncs every write made since the last call.
    pub(crate) fn sync_unsynced(&self) -> Result<(), StoreError> {
        let (files, dir) = {
            let mut unsynced = self.unsynced();
            (
                std::mem::take(&mut unsynced.files),
                std::mem::take(&mut unsynced.dir),
            )
        };
        let mut first_error = None;
        for (path, file) in files.into_values() {
            Counters::add(&self.files.counters.log_fsyncs, 1);
            if let Err(e) = file.sync_data() {
                tracing::error!(file = %path.display(), error = %e, "fsync of update log failed");
                first_error.get_or_insert((path.display().to_string(), e));
            }
        }
        if dir && let Err(e) = durable::sync_dir(&self.files.dir) {
            tracing::error!(dir = %self.files.dir.display(), error = %e, "fsync of log directory failed");
            first_error.get_or_insert((self.files.dir.display().to_string(), e));
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

/// Starts the thread behind [`FsyncPolicy::Interval`]. It holds only a weak reference, so it
/// ends at its first wake-up after the log is dropped. A thread rather than a tokio task: the
/// log can be opened outside a runtime, and fsync blocks anyway.
pub(crate) fn spawn_flusher(inner: Weak<Inner>, every: Duration) -> Result<(), StoreError> {
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

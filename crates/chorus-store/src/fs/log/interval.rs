//! [`FsyncPolicy::Interval`](crate::FsyncPolicy::Interval): appends are written at once and
//! fsynced by a background thread every interval (like Redis' `appendfsync everysec`).

use std::collections::HashMap;
use std::fs::File;
use std::io;
use std::path::PathBuf;
use std::sync::{Mutex, MutexGuard, PoisonError, Weak};
use std::time::Duration;

use crate::StoreError;
use crate::fs::crash_safe::{self, FileId};
use crate::fs::files::LogFiles;
use crate::fs::stats::Counters;

/// Writes not fsynced yet, under [`FsyncPolicy::Interval`](crate::FsyncPolicy::Interval).
#[derive(Debug, Default)]
pub(crate) struct Unsynced(Mutex<Pending>);

#[derive(Debug, Default)]
struct Pending {
    files: HashMap<FileId, (PathBuf, File)>,
    /// A log file was created: the directory needs an fsync too.
    dir: bool,
    /// The last background fsync failed; reported by the next append or flush.
    failure: Option<(String, io::Error)>,
}

impl Unsynced {
    fn pending(&self) -> MutexGuard<'_, Pending> {
        // Every critical section is a plain insert or swap: a panic cannot leave it half done.
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Remembers `file` (the log at `path`, whose identity is `id`) for the next fsync, and its
    /// directory too if the file is `new`.
    pub(crate) fn add(&self, id: FileId, path: PathBuf, file: File, new: bool) {
        let mut pending = self.pending();
        pending.dir |= new;
        pending.files.insert(id, (path, file));
    }

    /// Reports a failed background fsync once, to whoever asks next.
    pub(crate) fn take_failure(&self) -> Result<(), StoreError> {
        match self.pending().failure.take() {
            None => Ok(()),
            Some((location, source)) => Err(StoreError::Io {
                action: "fsyncing update log (background)",
                location,
                source,
            }),
        }
    }

    /// Fsyncs every write (to a file of `logs`) made since the last call.
    pub(crate) fn sync(&self, logs: &LogFiles) -> Result<(), StoreError> {
        let (files, dir) = {
            let mut pending = self.pending();
            (
                std::mem::take(&mut pending.files),
                std::mem::take(&mut pending.dir),
            )
        };
        let mut first_error = None;
        for (path, file) in files.into_values() {
            Counters::add(&logs.counters.log_fsyncs, 1);
            if let Err(e) = file.sync_data() {
                tracing::error!(file = %path.display(), error = %e, "fsync of update log failed");
                first_error.get_or_insert((path.display().to_string(), e));
            }
        }
        if dir && let Err(e) = crash_safe::sync_dir(&logs.dir) {
            tracing::error!(dir = %logs.dir.display(), error = %e, "fsync of log directory failed");
            first_error.get_or_insert((logs.dir.display().to_string(), e));
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

    /// [`Unsynced::sync`] in the background: a failure waits for [`Unsynced::take_failure`].
    pub(crate) fn sync_in_background(&self, logs: &LogFiles) {
        if let Err(StoreError::Io {
            location, source, ..
        }) = self.sync(logs)
        {
            self.pending().failure = Some((location, source));
        }
    }
}

/// Starts the thread behind [`FsyncPolicy::Interval`](crate::FsyncPolicy::Interval): `sync` on
/// `log` every interval. It holds only a weak reference, so it ends at its first wake-up after
/// the log is dropped. A thread rather than a tokio task: the log can be opened outside a
/// runtime, and fsync blocks anyway.
pub(crate) fn spawn_flusher<T: Send + Sync + 'static>(
    log: Weak<T>,
    every: Duration,
    sync: fn(&T),
) -> Result<(), StoreError> {
    std::thread::Builder::new()
        .name("chorus-log-fsync".to_owned())
        .spawn(move || {
            loop {
                std::thread::sleep(every);
                let Some(log) = log.upgrade() else { break };
                sync(&log);
            }
        })
        .map(drop)
        .map_err(|e| StoreError::Io {
            action: "starting the update log flusher",
            location: String::new(),
            source: e,
        })
}

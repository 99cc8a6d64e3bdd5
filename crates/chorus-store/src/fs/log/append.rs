//! Appending to a document's log under the policy of the [`FsLog`](super::FsLog): written and
//! fsynced, written and left to the interval flusher, or written and handed to the write-ahead
//! log (whose answer the async caller awaits without holding a thread).

use std::io;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use chorus_protocol::DocName;

use super::interval::Unsynced;
use crate::fs::crash_safe::{self, FileId};
use crate::fs::files::{LogFiles, Recovered, Tail};
use crate::fs::lock::FileLock;
use crate::fs::stats::Counters;
use crate::fs::wal::{self, Incarnation, Submission, Wal};
use crate::log_record::MAX_PAYLOAD;
use crate::{FsyncPolicy, StoreError};

/// How far an append got.
pub(crate) enum Appended {
    /// Written and, as the policy requires, synced to disk: through this sequence number.
    Done(u64),
    /// Written, and handed to the write-ahead log.
    Pending(Pending),
}

/// An append whose records are written and handed to the write-ahead log, waiting for the
/// WAL's fsync. It holds the document's lock until then (see [`Appender::write_batch`]).
pub(crate) struct Pending {
    seq: u64,
    durable: wal::SyncWait,
    lock: FileLock,
    dir: PathBuf,
}

impl Pending {
    /// Waits without holding a thread.
    pub(crate) async fn wait(mut self) -> Result<u64, StoreError> {
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

/// What an append needs of the [`FsLog`](super::FsLog), borrowed for one append.
pub(crate) struct Appender<'a> {
    pub(crate) files: &'a LogFiles,
    pub(crate) policy: FsyncPolicy,
    /// The write-ahead log, under [`FsyncPolicy::Always`].
    pub(crate) wal: Option<&'a Wal>,
    /// Files written and not fsynced yet, under [`FsyncPolicy::Interval`].
    pub(crate) unsynced: &'a Unsynced,
}

impl Appender<'_> {
    /// Appends and, under the WAL, blocks until the records are durable (tests).
    #[cfg(test)]
    pub(crate) fn append(&self, doc: &DocName, updates: &[Bytes]) -> Result<u64, StoreError> {
        match self.start_append(doc, updates)? {
            Appended::Done(seq) => Ok(seq),
            Appended::Pending(pending) => pending.wait_blocking(),
        }
    }

    pub(crate) fn start_append(
        &self,
        doc: &DocName,
        updates: &[Bytes],
    ) -> Result<Appended, StoreError> {
        let path = self.files.path_of(doc);
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
        self.unsynced.take_failure()?;
        loop {
            let lock =
                FileLock::acquire(&path).map_err(StoreError::io("locking update log", &path))?;
            let meta = lock
                .file()
                .metadata()
                .map_err(StoreError::io("inspecting update log", &path))?;
            let id = FileId::of(&meta);
            let tail = match self.files.cached(&path, id, meta.len()) {
                Some(tail) => tail,
                None => match self.files.recover(&lock, &path, doc)? {
                    Recovered::Clean { tail, .. } => tail,
                    Recovered::Rewritten => continue,
                },
            };
            let incarnation = Incarnation::of(&meta);
            return self.write_batch(lock, &path, doc, (tail, incarnation), updates);
        }
    }

    pub(crate) fn write_batch(
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
        let len = self.files.write_records(&lock, path, doc, tail, &records)?;
        Counters::add(&self.files.counters.records, records.len() as u64);
        let written = Tail {
            len,
            high_water: seq,
            ..tail
        };
        match (self.policy, self.wal) {
            (FsyncPolicy::Always, Some(wal)) => {
                // A new file's name is durable before anything is acknowledged, so that after
                // a power cut a missing log always means a deleted document (replay relies
                // on it).
                if new_file && let Err(e) = crash_safe::sync_dir(&self.files.dir) {
                    self.files.forget(path);
                    return Err(StoreError::io("fsyncing log directory", &self.files.dir)(e));
                }
                self.files.remember(path, written);
                if records.is_empty() {
                    return Ok(Appended::Done(seq));
                }
                let submission = Submission {
                    doc: doc.as_str().to_owned(),
                    file: incarnation,
                    records,
                };
                // The lock stays held until the records are durable, so that this process's
                // WAL holds each document's records in sequence order (a room has one append
                // in flight: nobody waits on it).
                let durable =
                    wal.submit(submission, tail.id, path, lock.file())
                        .map_err(StoreError::io(
                            "writing the write-ahead log",
                            &self.files.dir,
                        ))?;
                return Ok(Appended::Pending(Pending {
                    seq,
                    durable,
                    lock,
                    dir: self.files.dir.clone(),
                }));
            }
            // Not reached once `open` has started the WAL; the plain path, one fsync per append.
            (FsyncPolicy::Always, None) => {
                Counters::add(&self.files.counters.log_fsyncs, 1);
                let synced = lock.file().sync_data().and_then(|()| {
                    if new_file {
                        crash_safe::sync_dir(&self.files.dir)
                    } else {
                        Ok(())
                    }
                });
                if let Err(e) = synced {
                    // After a failed fsync the kernel may have dropped the pages: what is in
                    // the file is unknown, so rescan next time.
                    self.files.forget(path);
                    return Err(StoreError::io("fsyncing update log", path)(e));
                }
                self.files.remember(path, written);
            }
            (FsyncPolicy::Interval(_), _) => {
                self.files.remember(path, written);
                let file = lock
                    .unlock_keep_open()
                    .map_err(StoreError::io("unlocking update log", path))?;
                self.unsynced.add(tail.id, path.to_owned(), file, new_file);
            }
        }
        Ok(Appended::Done(seq))
    }
}

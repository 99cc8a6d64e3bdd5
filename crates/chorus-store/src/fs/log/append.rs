//! Appending under [`FsyncPolicy::Interval`](crate::FsyncPolicy::Interval): written to the
//! document's log under its lock and left to the interval flusher; and the size check every
//! append passes first. (Under `Always` appends go through [`crate::fs::deferred`].)

use std::path::Path;

use bytes::Bytes;
use chorus_protocol::DocName;

use super::interval::Unsynced;
use crate::StoreError;
use crate::fs::crash_safe::FileId;
use crate::fs::files::{LogFiles, Recovered, Tail};
use crate::fs::lock::FileLock;
use crate::fs::stats::Counters;
use crate::fs::wal;
use crate::log_record::MAX_PAYLOAD;

/// Refuses an update too big for one record. The limit leaves room for a WAL entry's header
/// under either policy, so that the limit does not change with `--fsync`.
pub(crate) fn check_sizes(
    files: &LogFiles,
    doc: &DocName,
    updates: &[Bytes],
) -> Result<(), StoreError> {
    let max_payload = MAX_PAYLOAD - wal::ENTRY_HEADER - doc.as_str().len();
    match updates.iter().find(|u| u.len() > max_payload) {
        None => Ok(()),
        Some(long) => Err(StoreError::Rejected {
            location: files.path_of(doc).display().to_string(),
            reason: format!(
                "a {}-byte update does not fit in one log record",
                long.len()
            ),
        }),
    }
}

/// What an append needs of the [`FsLog`](super::FsLog), borrowed for one append.
pub(crate) struct Appender<'a> {
    pub(crate) files: &'a LogFiles,
    /// Files written and not fsynced yet.
    pub(crate) unsynced: &'a Unsynced,
}

impl Appender<'_> {
    /// Writes `updates` at the end of the log of `doc`, under its lock; returns the sequence
    /// number of the last one. Blocks.
    pub(crate) fn append(&self, doc: &DocName, updates: &[Bytes]) -> Result<u64, StoreError> {
        let path = self.files.path_of(doc);
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
            return self.write_batch(lock, &path, doc, tail, updates);
        }
    }

    fn write_batch(
        &self,
        lock: FileLock,
        path: &Path,
        doc: &DocName,
        tail: Tail,
        updates: &[Bytes],
    ) -> Result<u64, StoreError> {
        let records: Vec<(u64, Bytes)> = (tail.high_water + 1..)
            .zip(updates.iter().cloned())
            .collect();
        let seq = records.last().map_or(tail.high_water, |(seq, _)| *seq);
        let new_file = tail.len == 0;
        let len = self.files.write_records(&lock, path, doc, tail, &records)?;
        Counters::add(&self.files.counters.records, records.len() as u64);
        self.files.remember(
            path,
            Tail {
                len,
                high_water: seq,
                ..tail
            },
        );
        let file = lock
            .unlock_keep_open()
            .map_err(StoreError::io("unlocking update log", path))?;
        self.unsynced.add(tail.id, path.to_owned(), file, new_file);
        Ok(seq)
    }
}

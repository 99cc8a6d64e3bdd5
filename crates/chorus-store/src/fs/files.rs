//! [`LogFiles`]: the update log files of one directory, one per document, each under its own
//! `flock`: finding where a file ends (cached), repairing a damaged or torn file, writing
//! records, reading, truncating and deleting. What makes appends durable (the write-ahead log,
//! and the records deferred to its checkpoints) is built on top, in [`super::wal`],
//! [`super::deferred`] and [`super::log`].

use std::collections::HashMap;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use bytes::{Bytes, BytesMut};
use chorus_protocol::DocName;

use super::crash_safe::{self, FileId, link_aside, write_atomically};
use super::lock::FileLock;
use super::stats::Counters;
use crate::log_record::{self, Record, put_file_header, put_record};
use crate::{StoreError, naming};

/// File name suffix of update logs.
pub(crate) const LOG_SUFFIX: &str = ".log";

/// Tails remembered per process; past this the cache is cleared and each log costs one rescan
/// on its next append. Bounds memory on servers that touch millions of documents.
const MAX_CACHED_TAILS: usize = 16 * 1024;

/// The update log files in one directory; see the module docs.
#[derive(Debug)]
pub(crate) struct LogFiles {
    /// The directory.
    pub(crate) dir: PathBuf,
    /// Where each file ends, as of our last look; see [`Tail`].
    tails: Mutex<HashMap<PathBuf, Tail>>,
    /// Shared with the write-ahead log.
    pub(crate) counters: Arc<Counters>,
}

/// Where a log file ends, as of our last look.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Tail {
    pub(crate) id: FileId,
    pub(crate) len: u64,
    pub(crate) high_water: u64,
}

/// What a scan under the lock found.
pub(crate) enum Recovered {
    /// The file is clean (possibly after cutting a torn tail).
    Clean { tail: Tail, records: Vec<Record> },
    /// The file was replaced: the lock held is on the old one, so start over.
    Rewritten,
}

impl LogFiles {
    /// The log files in `dir` (which must exist).
    pub(crate) fn new(dir: PathBuf) -> Self {
        Self {
            dir,
            tails: Mutex::default(),
            counters: Arc::default(),
        }
    }

    fn tails(&self) -> MutexGuard<'_, HashMap<PathBuf, Tail>> {
        // Every critical section is a single map operation: a panic cannot leave it half done.
        self.tails.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The cached tail of `path`, if it still describes the file `id` of length `len`.
    pub(crate) fn cached(&self, path: &Path, id: FileId, len: u64) -> Option<Tail> {
        self.tails()
            .get(path)
            .copied()
            .filter(|t| t.id == id && t.len == len)
    }

    pub(crate) fn path_of(&self, doc: &DocName) -> PathBuf {
        self.dir.join(format!("{}{LOG_SUFFIX}", naming::stem(doc)))
    }

    pub(crate) fn remember(&self, path: &Path, tail: Tail) {
        let mut tails = self.tails();
        if tails.len() >= MAX_CACHED_TAILS && !tails.contains_key(path) {
            tails.clear();
        }
        tails.insert(path.to_owned(), tail);
    }

    pub(crate) fn forget(&self, path: &Path) {
        self.tails().remove(path);
    }

    /// Writes `records` (and the file header, for an empty file) at the end of the locked
    /// log, without fsyncing; returns the new length.
    pub(crate) fn write_records(
        &self,
        lock: &FileLock,
        path: &Path,
        doc: &DocName,
        tail: Tail,
        records: &[(u64, Bytes)],
    ) -> Result<u64, StoreError> {
        let mut batch = BytesMut::with_capacity(
            records
                .iter()
                .map(|(_, u)| u.len() + log_record::RECORD_OVERHEAD)
                .sum::<usize>()
                + log_record::file_header_len(doc.as_str().len()),
        );
        if tail.len == 0 {
            put_file_header(&mut batch, doc.as_str());
        }
        for (seq, update) in records {
            put_record(&mut batch, *seq, update);
        }
        let mut file = lock.file();
        let written = file
            .seek(SeekFrom::Start(tail.len))
            .and_then(|_| file.write_all(&batch));
        if let Err(e) = written {
            // Leave no half record behind for the next append to trip over.
            let _ = file.set_len(tail.len);
            self.forget(path);
            return Err(StoreError::io("appending to update log", path)(e));
        }
        Ok(tail.len + batch.len() as u64)
    }

    /// Scans the locked file and repairs it; see the module docs.
    pub(crate) fn recover(
        &self,
        lock: &FileLock,
        path: &Path,
        doc: &DocName,
    ) -> Result<Recovered, StoreError> {
        let mut file = lock.file();
        let mut bytes = Vec::new();
        file.seek(SeekFrom::Start(0))
            .and_then(|_| file.read_to_end(&mut bytes))
            .map_err(StoreError::io("reading update log", path))?;
        let bytes = Bytes::from(bytes);
        let scan = log_record::scan(&bytes);
        let foreign = scan.name.as_deref().is_some_and(|n| n != doc.as_str());
        if foreign || scan.is_damaged() {
            let kept = link_aside(path)
                .map_err(StoreError::io("keeping damaged update log aside", path))?;
            let mut clean = BytesMut::new();
            put_file_header(&mut clean, doc.as_str());
            let mut kept_records = 0;
            if !foreign {
                for record in &scan.records {
                    put_record(&mut clean, record.seq, &record.payload);
                    kept_records += 1;
                }
            }
            tracing::warn!(
                file = %path.display(),
                kept_at = %kept.display(),
                foreign_document = ?scan.name.as_deref().filter(|_| foreign),
                damaged_ranges = ?scan.damaged,
                damaged_bytes = scan.damaged_bytes(),
                torn_tail_bytes = scan.torn_tail.as_ref().map_or(0, ExactSizeIterator::len),
                records_kept = kept_records,
                "update log is damaged: kept the original aside and rewrote it with the valid records"
            );
            write_atomically(&self.dir, path, &clean)
                .map_err(StoreError::io("rewriting damaged update log", path))?;
            self.forget(path);
            return Ok(Recovered::Rewritten);
        }
        let mut len = bytes.len() as u64;
        if let Some(torn) = &scan.torn_tail {
            tracing::warn!(
                file = %path.display(),
                offset = torn.start,
                bytes = torn.len(),
                "dropping a torn record at the end of the update log (interrupted append)"
            );
            len = scan.valid_end as u64;
            lock.file()
                .set_len(len)
                .and_then(|()| lock.file().sync_data())
                .map_err(StoreError::io("cutting torn tail of update log", path))?;
        }
        let meta = lock
            .file()
            .metadata()
            .map_err(StoreError::io("inspecting update log", path))?;
        let tail = Tail {
            id: FileId::of(&meta),
            len,
            high_water: scan.high_water(),
        };
        self.remember(path, tail);
        Ok(Recovered::Clean {
            tail,
            records: scan.records,
        })
    }

    pub(crate) fn read(&self, doc: &DocName) -> Result<Vec<(u64, Bytes)>, StoreError> {
        let path = self.path_of(doc);
        loop {
            let Some(lock) = FileLock::acquire_existing(&path)
                .map_err(StoreError::io("locking update log", &path))?
            else {
                return Ok(Vec::new());
            };
            match self.recover(&lock, &path, doc)? {
                Recovered::Rewritten => continue,
                Recovered::Clean { records, .. } => {
                    return Ok(records
                        .into_iter()
                        .filter(|r| !r.is_marker())
                        .map(|r| (r.seq, r.payload))
                        .collect());
                }
            }
        }
    }

    /// The highest sequence number handed out for `doc` so far (0 if it has no log).
    pub(crate) fn high_water(&self, doc: &DocName) -> Result<u64, StoreError> {
        let path = self.path_of(doc);
        loop {
            let Some(lock) = FileLock::acquire_existing(&path)
                .map_err(StoreError::io("locking update log", &path))?
            else {
                return Ok(0);
            };
            match self.recover(&lock, &path, doc)? {
                Recovered::Rewritten => continue,
                Recovered::Clean { tail, .. } => return Ok(tail.high_water),
            }
        }
    }

    pub(crate) fn truncate(&self, doc: &DocName, through: u64) -> Result<(), StoreError> {
        let path = self.path_of(doc);
        loop {
            let Some(lock) = FileLock::acquire_existing(&path)
                .map_err(StoreError::io("locking update log", &path))?
            else {
                return Ok(());
            };
            let records = match self.recover(&lock, &path, doc)? {
                Recovered::Rewritten => continue,
                Recovered::Clean { records, .. } => records,
            };
            if !records.iter().any(|r| r.seq <= through && !r.is_marker()) {
                return Ok(());
            }
            let mut contents = BytesMut::new();
            put_file_header(&mut contents, doc.as_str());
            if let Some(marker) = records
                .iter()
                .map(|r| r.seq)
                .filter(|&s| s <= through)
                .max()
            {
                put_record(&mut contents, marker, &[]);
            }
            for record in records.iter().filter(|r| r.seq > through) {
                put_record(&mut contents, record.seq, &record.payload);
            }
            write_atomically(&self.dir, &path, &contents)
                .map_err(StoreError::io("truncating update log", &path))?;
            self.forget(&path);
            return Ok(());
        }
    }

    pub(crate) fn delete(&self, doc: &DocName) -> Result<(), StoreError> {
        let path = self.path_of(doc);
        let Some(lock) = FileLock::acquire_existing(&path)
            .map_err(StoreError::io("locking update log", &path))?
        else {
            return Ok(());
        };
        lock.remove()
            .map_err(StoreError::io("deleting update log", &path))?;
        self.forget(&path);
        crash_safe::sync_dir(&self.dir).map_err(StoreError::io("deleting update log", &self.dir))
    }
}

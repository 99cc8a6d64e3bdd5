//! [`Epoch`]: the WAL file being written, from its creation to its retirement.
//!
//! The file is written ahead with zeros (preallocated) and the records overwrite them, so that
//! a batch's `fdatasync` flushes data only: an append that grows a file also makes the
//! filesystem commit the new size and extents to its journal, which (on ext4, measured here)
//! more than doubles the fsync's CPU and latency. The zeros are real writes, not
//! `fallocate`, whose unwritten extents need the same metadata commit when first written.
//! Replay reads the zeros after the last record as a tail that holds no record.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use bytes::BytesMut;

use super::format::{WAL_HEADER_NAME, WAL_PREFIX, WAL_SUFFIX};
use crate::fs::crash_safe;
use crate::log_record::put_file_header;

/// Least space written ahead; a WAL starts with at least this much.
pub(crate) const MIN_PREALLOC: u64 = 64 * 1024;
/// Most space written ahead at once: the zeros cost a write of their own, which past a few
/// MiB per WAL outweighs the metadata commits they save (batches are large at such rates).
pub(crate) const MAX_PREALLOC: u64 = 4 * 1024 * 1024;

/// The next WAL, made ready by the checkpointer while the current one fills, so that the
/// writer does not create a file and fsync the directory (milliseconds, measured here) in
/// the middle of a batch. Shared by the writer (takes it, or removes it when the log falls
/// idle) and the checkpointer (makes it, and removes it when the log shuts down).
pub(crate) type Spare = Arc<Mutex<Option<Epoch>>>;

/// Takes the spare WAL out of `spare`, if there is one.
pub(crate) fn take_spare(spare: &Spare) -> Option<Epoch> {
    spare.lock().unwrap_or_else(PoisonError::into_inner).take()
}

/// Removes a spare WAL that will not be used. It holds no record, so a power cut that brings
/// it back only leaves an empty WAL for the next start to replay and remove.
pub(crate) fn discard(epoch: Epoch) {
    if let Err(e) = fs::remove_file(&epoch.path) {
        tracing::warn!(wal = %epoch.path.display(), error = %e, "could not remove an unused write-ahead log");
    }
}

/// The WAL being written and what its checkpoint will have to fsync.
pub(crate) struct Epoch {
    pub(crate) path: PathBuf,
    /// Holds the WAL's `flock` for as long as the file exists.
    pub(crate) file: File,
    /// Bytes of header and records: where the next batch goes.
    pub(crate) len: u64,
    /// The file's size: records up to here overwrite zeros instead of growing it.
    allocated: u64,
    pub(crate) opened: Instant,
    pub(crate) entries: u64,
}

impl Epoch {
    /// Creates, locks and names a new WAL with `prealloc` bytes written ahead; see the
    /// module docs.
    pub(crate) fn create(dir: &Path, prealloc: u64) -> io::Result<Self> {
        let temp = crash_safe::temp_path(dir);
        let created = (|| {
            let mut file = OpenOptions::new()
                .read(true)
                .write(true)
                .create_new(true)
                .open(&temp)?;
            // Nobody else knows this file yet: taking its lock cannot fail for contention.
            fs4::FileExt::try_lock(&file).map_err(io::Error::from)?;
            let mut header = BytesMut::new();
            put_file_header(&mut header, WAL_HEADER_NAME);
            file.write_all(&header)?;
            let path = loop {
                let path = dir.join(format!(
                    "{WAL_PREFIX}{:016x}{WAL_SUFFIX}",
                    fastrand::u64(..)
                ));
                if !fs::exists(&path)? {
                    break path;
                }
            };
            let len = header.len() as u64;
            let allocated = len + write_ahead(&file, len, prealloc);
            fs::rename(&temp, &path)?;
            // The WAL's name must survive a power cut before anything in it is acknowledged.
            // Its size does not need to: the first batch's fdatasync makes it durable.
            crash_safe::sync_dir(dir)?;
            Ok(Self {
                path,
                file,
                len,
                allocated,
                opened: Instant::now(),
                entries: 0,
            })
        })();
        if created.is_err() {
            let _ = fs::remove_file(&temp);
        }
        created
    }

    /// Writes `batch` after the last record, first writing more zeros ahead if it would grow
    /// the file (at least as much again as the file holds, so growth is rare).
    pub(crate) fn append(&mut self, batch: &[u8]) -> io::Result<()> {
        let end = self.len + batch.len() as u64;
        if end > self.allocated {
            let more = (end - self.allocated)
                .max(self.allocated)
                .clamp(MIN_PREALLOC, MAX_PREALLOC);
            self.allocated += write_ahead(&self.file, self.allocated, more);
        }
        self.file.write_all_at(batch, self.len)?;
        self.len = end;
        Ok(())
    }
}

/// Writes up to `len` zeros at `offset` and returns how many it wrote. Writing ahead only
/// saves work: when it fails (a full disk, say) the records are written anyway, growing the
/// file as they go, and the batch reports any error of its own.
fn write_ahead(file: &File, offset: u64, len: u64) -> u64 {
    static ZEROS: [u8; 64 * 1024] = [0; 64 * 1024];
    let mut written = 0;
    while written < len {
        let chunk = (len - written).min(ZEROS.len() as u64) as usize;
        if let Err(e) = file.write_all_at(&ZEROS[..chunk], offset + written) {
            tracing::debug!(error = %e, "could not write the write-ahead log's space ahead");
            break;
        }
        written += chunk as u64;
    }
    written
}

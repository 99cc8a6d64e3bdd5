//! [`FsLogStats`]: what an [`FsLog`](super::FsLog) did, counted by the log and its write-ahead
//! log alike.

use std::sync::atomic::{AtomicU64, Ordering};

/// What an [`FsLog`](super::FsLog) did since it was opened (see
/// [`FsLog::stats`](super::FsLog::stats)): for benchmarks, tests and
/// metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FsLogStats {
    /// Records appended.
    pub records: u64,
    /// `fdatasync`s of document log files.
    pub log_fsyncs: u64,
    /// Appends handed to the write-ahead log.
    pub wal_submissions: u64,
    /// `fdatasync`s of the write-ahead log: each makes a whole group of appends durable.
    pub wal_fsyncs: u64,
    /// Write-ahead log files started.
    pub wal_files: u64,
    /// Of those, how many had been made ready ahead, while the previous one filled.
    pub wal_files_ready: u64,
    /// Write-ahead log files checkpointed (their documents fsynced) and removed.
    pub checkpoints: u64,
    /// Records replayed from the write-ahead logs of dead processes when this log opened.
    pub recovered: u64,
}

/// The live counters behind [`FsLogStats`].
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) records: AtomicU64,
    pub(crate) log_fsyncs: AtomicU64,
    pub(crate) wal_submissions: AtomicU64,
    pub(crate) wal_fsyncs: AtomicU64,
    pub(crate) wal_files: AtomicU64,
    pub(crate) wal_files_ready: AtomicU64,
    pub(crate) checkpoints: AtomicU64,
    pub(crate) recovered: AtomicU64,
}

impl Counters {
    pub(crate) fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    pub(crate) fn snapshot(&self) -> FsLogStats {
        FsLogStats {
            records: self.records.load(Ordering::Relaxed),
            log_fsyncs: self.log_fsyncs.load(Ordering::Relaxed),
            wal_submissions: self.wal_submissions.load(Ordering::Relaxed),
            wal_fsyncs: self.wal_fsyncs.load(Ordering::Relaxed),
            wal_files: self.wal_files.load(Ordering::Relaxed),
            wal_files_ready: self.wal_files_ready.load(Ordering::Relaxed),
            checkpoints: self.checkpoints.load(Ordering::Relaxed),
            recovered: self.recovered.load(Ordering::Relaxed),
        }
    }
}

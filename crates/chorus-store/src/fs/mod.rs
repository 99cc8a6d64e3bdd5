//! Files in one local directory: [`FsStore`] for snapshots, [`FsLog`] for update logs.
//!
//! For a document whose [stem](crate::naming) is `s` the directory holds:
//! - `s.snap`: the snapshot ([`snapshot_file`](crate::snapshot_file) format), replaced
//!   atomically (temporary file, fsync, rename, directory fsync);
//! - `s.lock`: an empty file whose `flock` serialises snapshot saves of `s`;
//! - `s.log`: the update log ([`log_record`](crate::log_record) format), locked itself;
//! - `s.snap.corrupt-<ms>`, `s.log.corrupt-<ms>`: damaged data kept aside, never deleted by
//!   Chorus.
//!
//! and, for the logs:
//! - `wal-<hex>.wal`: a process's write-ahead log, locked by it while it exists; one left
//!   unlocked is replayed by the next [`FsLog::open`];
//! - `.wal-recovery.lock`: an empty file whose `flock` serialises that replay;
//!
//! and, for version history ([`FsVersions`]), a directory `versions/s/` per document with
//! `<id>.version` files and `activity.jsonl`.
//!
//! # Several nodes on one directory
//! Saving is the compare-and-swap (`cas` module) every shared backend runs: read the
//! stored snapshot, merge the new one into it ([`merge`](crate::merge)), then, under the lock,
//! rename the result into place only if the file is still byte for byte what was read (and
//! start over if not). A node whose room state is older than the file therefore adds its edits
//! instead of erasing the other node's, and the merge runs outside the lock. The lock is
//! advisory `flock`: it holds between processes on one machine (or pods sharing a local volume)
//! but not on every network file system; use the Redis or S3 store there.
//!
//! Update logs are shared the same way: a process appending to a document holds its log's
//! `flock` (its *lease*, see `deferred`) until its next checkpoint, at most a second, so two
//! processes appending to one document take turns, each waiting up to that long for the other.
//!
//! # Layout
//! Each module imports only from those listed before it (no import circles):
//! - `crash_safe`, `lock`, `stats`, `dir`: crash-safe file operations, `flock` locks, the
//!   [`FsLogStats`] counters, the directory itself (preparing and listing it);
//! - `store`: [`FsStore`];
//! - `files`: the update log files, one per document (tail cache, repair, read, truncate);
//! - `deferred`: records in the write-ahead log only, per document, under its lease, until a
//!   checkpoint writes them to their files;
//! - `wal`: the write-ahead log: its format, writer and checkpoint threads, and the replay of
//!   dead processes' WALs into the log files;
//! - `log`: [`FsLog`], which appends through `deferred` and `wal` and reads through `files`;
//! - `versions`: [`FsVersions`], version history under `versions/`.
mod crash_safe;
mod deferred;
mod dir;
mod files;
mod lock;
mod log;
mod stats;
mod store;
mod versions;
mod wal;

pub use log::FsLog;
pub use stats::FsLogStats;
pub use store::FsStore;
pub use versions::FsVersions;

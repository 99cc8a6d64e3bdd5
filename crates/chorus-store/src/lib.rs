//! Where Chorus keeps documents: snapshots, update logs, and the backends behind them.
//!
//! A *snapshot* is a document's whole state as one Yjs v1 update. Rooms load it when they open and
//! save it (debounced, on unload and on shutdown). Between two snapshots every update a room
//! accepts is appended to the document's *update log*, so a crash loses nothing that was
//! acknowledged; once a snapshot covering them is stored, the room truncates the log.
//!
//! Several nodes may hold the same room, so no save may erase what another node stored: every
//! backend that other processes can reach saves by merging the new snapshot into the stored one
//! under a compare-and-swap or a lock ([`merge`] explains why a merge is always right).
//!
//! # Layout
//! - [`SnapshotStore`], [`UpdateLog`]: the traits every backend implements; [`StoreError`],
//!   [`FormatError`].
//! - [`config`]: [`StoreConfig`], [`FsyncPolicy`] and [`open`], which builds the pair a server uses.
//! - [`fs`]: [`FsStore`] and [`FsLog`], files in a local directory (the embedded default).
//! - [`memory`]: [`MemoryStore`] and [`MemoryLog`], for tests and ephemeral servers.
//! - [`redis`]: [`RedisStore`] and [`RedisLog`], for pods without disks.
//! - `s3` (cargo feature `s3`): `S3Store`, snapshots in S3-compatible object storage.
//! - [`ops`]: what the operator commands do: list, export, import, compact; and
//!   [`ops::save_compacted`], the compaction rooms run with every snapshot.
//! - [`merge`]: merging Yjs states; `cas` (private): the one compare-and-swap save loop the
//!   shared backends run, and their one policy for a damaged stored snapshot.
//! - [`snapshot_file`], [`log_record`]: the checksummed formats written to disk and Redis.
//! - [`naming`]: document names as file names and keys.
//! - [`versions`]: version history and the activity timeline: [`VersionStore`] and its
//!   backends, [`Retention`].

#![warn(missing_docs)]

mod cas;
mod compact;
pub mod config;
mod error;
pub mod fs;
pub mod log_record;
pub mod memory;
pub mod merge;
pub mod naming;
pub mod ops;
pub mod redis;
#[cfg(feature = "s3")]
pub mod s3;
pub mod snapshot_file;
pub mod versions;

use async_trait::async_trait;
use bytes::Bytes;
use chorus_protocol::DocName;

pub use config::{
    FsyncPolicy, LogBackend, ParseFsyncPolicyError, S3Config, SnapshotBackend, StoreConfig, open,
    open_versions,
};
pub use error::{FormatError, StoreError};
pub use fs::{FsLog, FsLogStats, FsStore};
pub use memory::{MemoryLog, MemoryStore};
pub use redis::{RedisLog, RedisStore};
#[cfg(feature = "s3")]
pub use s3::S3Store;
pub use versions::{
    FsVersions, MemoryVersions, RedisVersions, Retention, Version, VersionId, VersionMeta,
    VersionStore,
};

/// A place to keep one snapshot per document.
///
/// Implementations must make [`SnapshotStore::save`] atomic: a reader sees the old snapshot or the
/// new one, never a mix, even if the process dies halfway.
#[async_trait]
pub trait SnapshotStore: Send + Sync + 'static {
    /// The latest snapshot of `doc`, or `None` if it was never saved.
    ///
    /// # Errors
    /// [`StoreError::Io`] or [`StoreError::Backend`] if the backend fails,
    /// [`StoreError::Corrupt`] (naming the file or key) if the stored bytes do not pass their
    /// integrity check; they are then left as they are.
    async fn load(&self, doc: &DocName) -> Result<Option<Bytes>, StoreError>;

    /// Stores `snapshot` as the state of `doc`.
    ///
    /// Shared backends (files, Redis, S3) merge it into whatever is stored, so that a save never
    /// erases state another node saved meanwhile; a damaged stored snapshot is first kept aside
    /// (`….corrupt-<unix ms>`), never overwritten.
    ///
    /// # Errors
    /// [`StoreError::Io`] or [`StoreError::Backend`] if the backend fails,
    /// [`StoreError::Rejected`] if `snapshot` is not a Yjs v1 update,
    /// [`StoreError::Contended`] if other writers kept winning the compare-and-swap. In every case
    /// the previous snapshot is still intact.
    async fn save(&self, doc: &DocName, snapshot: Bytes) -> Result<(), StoreError>;

    /// Removes the snapshot of `doc`; removing a missing one is not an error.
    ///
    /// # Errors
    /// [`StoreError::Io`] or [`StoreError::Backend`] if the backend fails.
    async fn delete(&self, doc: &DocName) -> Result<(), StoreError>;

    /// Every document that has a snapshot, in name order.
    ///
    /// # Errors
    /// [`StoreError::Io`] or [`StoreError::Backend`] if the backend fails.
    async fn list(&self) -> Result<Vec<DocName>, StoreError>;
}

/// An append-only log of updates per document: what a room accepted since its last snapshot.
///
/// Records carry strictly increasing sequence numbers per document, which survive truncation
/// (numbering resumes above the highest number ever handed out) but not [`UpdateLog::delete`].
/// Stored records are checksummed: a torn last record (a crash in the middle of an append) is
/// dropped, a damaged record in the middle is skipped with a warning and the damaged original
/// kept aside; neither is an error.
#[async_trait]
pub trait UpdateLog: Send + Sync + 'static {
    /// Appends `updates` as one batch and returns the sequence number of the last one (or the
    /// highest number so far, if `updates` is empty).
    ///
    /// Returns once the batch is as durable as the backend's policy makes it: fsynced under
    /// [`FsyncPolicy::Always`], written (and fsynced within the interval) under
    /// [`FsyncPolicy::Interval`], Redis' own persistence for [`RedisLog`]. Callers get group
    /// commit by batching every update that arrived while the previous append was in flight.
    ///
    /// # Errors
    /// [`StoreError::Io`] or [`StoreError::Backend`] if the backend fails: the batch is not
    /// acknowledged, though some of it may be read back later (appending it again is safe:
    /// applying a Yjs update twice changes nothing); [`StoreError::Rejected`] if an update is
    /// too big for one record.
    async fn append(&self, doc: &DocName, updates: &[Bytes]) -> Result<u64, StoreError>;

    /// Every valid record of `doc`, in order, with its sequence number.
    ///
    /// # Errors
    /// [`StoreError::Io`] or [`StoreError::Backend`] if the backend fails.
    async fn read(&self, doc: &DocName) -> Result<Vec<(u64, Bytes)>, StoreError>;

    /// Drops the records with sequence numbers up to and including `through`; call it once a
    /// snapshot that covers them is safely stored.
    ///
    /// # Errors
    /// [`StoreError::Io`] or [`StoreError::Backend`] if the backend fails; the log is then
    /// unchanged.
    async fn truncate(&self, doc: &DocName, through: u64) -> Result<(), StoreError>;

    /// Removes the log of `doc`, numbering included; removing a missing one is not an error.
    ///
    /// # Errors
    /// [`StoreError::Io`] or [`StoreError::Backend`] if the backend fails.
    async fn delete(&self, doc: &DocName) -> Result<(), StoreError>;

    /// Every document that has a log (possibly empty after truncation), in name order.
    ///
    /// # Errors
    /// [`StoreError::Io`] or [`StoreError::Backend`] if the backend fails.
    async fn list(&self) -> Result<Vec<DocName>, StoreError>;

    /// Makes every append so far durable, whatever the policy; call it on shutdown.
    ///
    /// # Errors
    /// [`StoreError::Io`] if an fsync (this one, or an earlier background one) failed.
    async fn flush(&self) -> Result<(), StoreError> {
        Ok(())
    }
}

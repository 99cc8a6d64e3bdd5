//! Storage for Chorus document snapshots.
//!
//! A snapshot is a document's whole state as one Yjs v1 update. Rooms load it when they open and
//! save it (debounced, on unload and on shutdown); the server never reads a store on the hot path.
//!
//! # Layout
//! - [`SnapshotStore`]: the trait every backend implements.
//! - [`fs`]: [`FsStore`], one file per document in a directory (the embedded default).
//! - [`memory`]: [`MemoryStore`], for tests and ephemeral servers.
//! - [`snapshot_file`]: the checksummed on-disk format the file store writes.

pub mod fs;
pub mod memory;
pub mod snapshot_file;

use async_trait::async_trait;
use bytes::Bytes;
use chorus_protocol::DocName;

pub use fs::FsStore;
pub use memory::MemoryStore;

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The backend failed (disk, network...).
    #[error("{action} {location}")]
    Io {
        /// What was being done, e.g. "writing snapshot".
        action: &'static str,
        /// The file or key involved.
        location: String,
        /// The underlying failure.
        #[source]
        source: std::io::Error,
    },
    /// Stored bytes failed their integrity check; they are left in place, never overwritten.
    #[error("snapshot {location} is corrupt: {reason}")]
    Corrupt {
        /// The file or key involved.
        location: String,
        /// What is wrong with it.
        reason: String,
    },
}

/// A place to keep one snapshot per document.
///
/// Implementations must make [`SnapshotStore::save`] atomic: a reader sees the old snapshot or the
/// new one, never a mix, even if the process dies halfway.
#[async_trait]
pub trait SnapshotStore: Send + Sync + 'static {
    /// The latest snapshot of `doc`, or `None` if it was never saved.
    ///
    /// # Errors
    /// [`StoreError::Io`] if the backend fails, [`StoreError::Corrupt`] if the stored bytes do
    /// not pass their integrity check.
    async fn load(&self, doc: &DocName) -> Result<Option<Bytes>, StoreError>;

    /// Replaces the snapshot of `doc`.
    ///
    /// # Errors
    /// [`StoreError::Io`] if the backend fails; the previous snapshot is then still intact.
    async fn save(&self, doc: &DocName, snapshot: Bytes) -> Result<(), StoreError>;

    /// Removes the snapshot of `doc`; removing a missing one is not an error.
    ///
    /// # Errors
    /// [`StoreError::Io`] if the backend fails.
    async fn delete(&self, doc: &DocName) -> Result<(), StoreError>;

    /// Every document that has a snapshot, in name order.
    ///
    /// # Errors
    /// [`StoreError::Io`] if the backend fails.
    async fn list(&self) -> Result<Vec<DocName>, StoreError>;
}

//! What the operator commands (`chorus doc list|export|import|compact`) do, over any pair of
//! backends, and the compaction rooms run after every snapshot ([`save_compacted`]). Each works
//! while servers are running: saves merge, so nothing here can erase what a live room stores
//! concurrently, and truncation only drops records that were merged.

use bytes::Bytes;
use chorus_protocol::DocName;

use crate::compact::merge_logged;
use crate::{SnapshotStore, StoreError, UpdateLog};

pub use crate::compact::{Compacted, compact, save_compacted};

/// Every document with a snapshot, a log or both, in name order.
///
/// # Errors
/// The first backend failure.
pub async fn list(
    store: &dyn SnapshotStore,
    log: &dyn UpdateLog,
) -> Result<Vec<DocName>, StoreError> {
    let mut names = store.list().await?;
    names.extend(log.list().await?);
    names.sort();
    names.dedup();
    Ok(names)
}

/// A document as the server would load it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exported {
    /// The snapshot and every logged update merged into one Yjs v1 update.
    pub state: Bytes,
    /// Sequence number of the last log record included; 0 if none.
    pub through: u64,
    /// Log records included.
    pub records: usize,
}

/// The whole state of `doc` (snapshot plus log) as one Yjs v1 update, or `None` if the document
/// has neither.
///
/// # Errors
/// The backend's error ([`StoreError::Corrupt`] for a damaged snapshot: nothing is exported
/// rather than a state that silently lacks it), or [`StoreError::Corrupt`] naming a log record
/// that passed its checksum but is not a Yjs update.
pub async fn export(
    store: &dyn SnapshotStore,
    log: &dyn UpdateLog,
    doc: &DocName,
) -> Result<Option<Exported>, StoreError> {
    let snapshot = store.load(doc).await?;
    let records = log.read(doc).await?;
    if snapshot.is_none() && records.is_empty() {
        return Ok(None);
    }
    let through = records.last().map_or(0, |(seq, _)| *seq);
    let state = merge_logged(doc, snapshot.as_ref(), &records)?;
    Ok(Some(Exported {
        state,
        through,
        records: records.len(),
    }))
}

/// Stores `state` (a Yjs v1 update, e.g. from [`export`]) into `doc`. Merges with what is there,
/// like every save: importing into a live document adds to it and erases nothing.
///
/// # Errors
/// [`StoreError::Rejected`] if `state` is not a Yjs update; otherwise the store's error.
pub async fn import(
    store: &dyn SnapshotStore,
    doc: &DocName,
    state: Bytes,
) -> Result<(), StoreError> {
    store.save(doc, state).await
}

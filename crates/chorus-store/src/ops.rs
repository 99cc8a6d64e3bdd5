//! What the operator commands (`chorus store list|export|import|compact`) do, over any pair of
//! backends. Each works while servers are running: saves merge, so nothing here can erase what
//! a live room stores concurrently, and truncation only drops records that were merged.

use bytes::Bytes;
use chorus_protocol::DocName;

use crate::merge::{MergeError, merge_stored};
use crate::{SnapshotStore, StoreError, UpdateLog};

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
    let count = records.len();
    let inputs: Vec<&[u8]> = snapshot
        .iter()
        .map(Bytes::as_ref)
        .chain(records.iter().map(|(_, update)| update.as_ref()))
        .collect();
    let state = merge_stored(inputs).map_err(|error| {
        let MergeError::Stored { index, reason } = &error else {
            return StoreError::Corrupt {
                location: doc.to_string(),
                reason: error.to_string(),
            };
        };
        let what = match (snapshot.is_some(), index) {
            (true, 0) => "the snapshot".to_owned(),
            (has_snapshot, i) => {
                let record = i - usize::from(has_snapshot);
                format!(
                    "log record {}",
                    records.get(record).map_or(0, |(seq, _)| *seq)
                )
            }
        };
        StoreError::Corrupt {
            location: format!("{doc} ({what})"),
            reason: format!("not a Yjs v1 update: {reason}"),
        }
    })?;
    Ok(Some(Exported {
        state,
        through,
        records: count,
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

/// What [`compact`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Compacted {
    /// Log records merged into the snapshot and then dropped.
    pub records: usize,
    /// Size of the snapshot written.
    pub snapshot_bytes: usize,
}

/// Folds the log of `doc` into its snapshot: load both, merge, save, then truncate the log
/// through the last record merged. Records appended meanwhile stay in the log.
///
/// # Errors
/// As [`export`], then the store's or the log's error. If the save fails nothing is truncated;
/// if the truncation fails the snapshot already holds the records and a later compaction drops
/// them.
pub async fn compact(
    store: &dyn SnapshotStore,
    log: &dyn UpdateLog,
    doc: &DocName,
) -> Result<Option<Compacted>, StoreError> {
    let Some(exported) = export(store, log, doc).await? else {
        return Ok(None);
    };
    if exported.records == 0 {
        return Ok(Some(Compacted {
            records: 0,
            snapshot_bytes: exported.state.len(),
        }));
    }
    let snapshot_bytes = exported.state.len();
    store.save(doc, exported.state).await?;
    log.truncate(doc, exported.through).await?;
    Ok(Some(Compacted {
        records: exported.records,
        snapshot_bytes,
    }))
}

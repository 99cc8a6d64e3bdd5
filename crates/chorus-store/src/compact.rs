//! Compaction, the one way the log of a document is folded into its snapshot: merge the
//! snapshot with the log records it covers, save the result, then truncate the log through the
//! last record merged. Rooms use it for every snapshot ([`save_compacted`]) and the operator
//! command `chorus doc compact` for a stored document ([`compact`]); both run [`fold`].
//!
//! Several nodes may share one log, so records up to the covered sequence number can hold
//! another node's updates that have not reached this node's document yet (the relay is a few
//! milliseconds behind). They are merged into the snapshot before it is saved, so dropping them
//! loses nothing; records appended after it stay in the log.

use bytes::Bytes;
use chorus_protocol::DocName;

use crate::merge::{MergeError, merge_stored};
use crate::{SnapshotStore, StoreError, UpdateLog};

/// Saves `snapshot` for `doc`, merged with the log records up to `covered` (sequence numbers are the log's), then truncates the log through `covered`; returns what was saved.
///
/// With `covered == 0` the snapshot is saved as it is. If the records do not merge with it
/// (a record that is not a Yjs update), the snapshot is saved alone, a warning is logged and
/// the log is not truncated. A failed truncation is logged, not an error: it only leaves
/// records that a later compaction drops.
///
/// # Errors
/// The log's error when reading it, or the store's when saving; nothing is truncated then.
pub async fn save_compacted(
    store: &dyn SnapshotStore,
    log: &dyn UpdateLog,
    doc: &DocName,
    snapshot: Bytes,
    covered: u64,
) -> Result<Bytes, StoreError> {
    if covered == 0 {
        store.save(doc, snapshot.clone()).await?;
        return Ok(snapshot);
    }
    let records = log.read(doc).await?;
    match fold(store, log, doc, Some(snapshot.clone()), records, covered).await? {
        Folded::Compacted { saved, .. } => Ok(saved),
        Folded::Unmerged(error) => {
            tracing::warn!(doc = %doc, %error, "log records do not merge; saved the snapshot without compacting");
            Ok(snapshot)
        }
    }
}

/// What [`compact`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Compacted {
    /// Log records merged into the snapshot and then dropped.
    pub records: usize,
    /// Size of the snapshot written.
    pub snapshot_bytes: usize,
}

/// Folds the log of `doc` into its stored snapshot: load both, then as [`save_compacted`]
/// through the last record read. Records appended meanwhile stay in the log. `None` if the
/// document has neither snapshot nor log.
///
/// # Errors
/// The backend's error ([`StoreError::Corrupt`] for a damaged snapshot), or
/// [`StoreError::Corrupt`] naming a log record that is not a Yjs update: nothing is then
/// truncated. If the truncation fails the snapshot already holds the records and a later
/// compaction drops them.
pub async fn compact(
    store: &dyn SnapshotStore,
    log: &dyn UpdateLog,
    doc: &DocName,
) -> Result<Option<Compacted>, StoreError> {
    let snapshot = store.load(doc).await?;
    let records = log.read(doc).await?;
    let Some(&(through, _)) = records.last() else {
        return Ok(snapshot.map(|snapshot| Compacted {
            records: 0,
            snapshot_bytes: snapshot.len(),
        }));
    };
    match fold(store, log, doc, snapshot, records, through).await? {
        Folded::Compacted { saved, records } => Ok(Some(Compacted {
            records,
            snapshot_bytes: saved.len(),
        })),
        Folded::Unmerged(error) => Err(error),
    }
}

/// What [`fold`] did.
enum Folded {
    /// Saved the merge of the snapshot and `records` log records, and truncated the log.
    Compacted { saved: Bytes, records: usize },
    /// The records do not merge, for this reason: saved the snapshot alone (if there is one),
    /// truncated nothing.
    Unmerged(StoreError),
}

/// Merges `snapshot` with the `records` up to `covered`, saves the result and truncates the
/// log through `covered`; see the module docs.
async fn fold(
    store: &dyn SnapshotStore,
    log: &dyn UpdateLog,
    doc: &DocName,
    snapshot: Option<Bytes>,
    mut records: Vec<(u64, Bytes)>,
    covered: u64,
) -> Result<Folded, StoreError> {
    records.retain(|(seq, _)| *seq <= covered);
    let merged = match merge_logged(doc, snapshot.as_ref(), &records) {
        Ok(merged) => merged,
        Err(error) => {
            if let Some(snapshot) = snapshot {
                store.save(doc, snapshot).await?;
            }
            return Ok(Folded::Unmerged(error));
        }
    };
    store.save(doc, merged.clone()).await?;
    if let Err(error) = log.truncate(doc, covered).await {
        tracing::warn!(doc = %doc, %error, "could not truncate the update log after a snapshot");
    }
    Ok(Folded::Compacted {
        saved: merged,
        records: records.len(),
    })
}

/// The snapshot (if any) and the log `records` of `doc` merged into one Yjs v1 update.
///
/// # Errors
/// [`StoreError::Corrupt`] naming the snapshot or the log record that is not a Yjs update.
pub(crate) fn merge_logged(
    doc: &DocName,
    snapshot: Option<&Bytes>,
    records: &[(u64, Bytes)],
) -> Result<Bytes, StoreError> {
    let inputs = snapshot
        .into_iter()
        .chain(records.iter().map(|(_, update)| update))
        .map(Bytes::as_ref);
    merge_stored(inputs).map_err(|error| {
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
    })
}

//! Version history on the server side: what a room hands off when it records a version or its
//! activity, and the background work that stores them. The room task only encodes the state
//! (cheap, in memory) and takes its activity tally; everything that touches the store runs
//! here, in tasks the room does not wait for, so making a version never blocks a room.
//!
//! # Several nodes
//! Every node counts the edits its own clients make and adds them to the shared timeline
//! (records add up per minute and identity). Each node holding an edited room would also make
//! automatic versions on its own clock; a node skips its automatic version when the newest
//! stored one is younger than half the interval or has the same state vector, so two nodes
//! make about one version per interval between them, not two.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use chorus_protocol::DocName;
use chorus_room::Activity;
use chorus_store::StoreError;
use chorus_store::versions::{
    ActivityRecord, Retention, Version, VersionId, VersionKind, VersionMeta, VersionStore, now_ms,
    prune,
};

use crate::config::HistoryConfig;
use crate::metrics;

/// The version store and the policy around it, shared by every room of a server.
#[derive(Clone)]
pub struct History {
    inner: Arc<Inner>,
}

struct Inner {
    store: Arc<dyn VersionStore>,
    interval: Option<Duration>,
    retention: Retention,
}

impl std::fmt::Debug for History {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("History")
            .field("interval", &self.inner.interval)
            .field("retention", &self.inner.retention)
            .finish_non_exhaustive()
    }
}

/// A version a room asks for: its state, encoded on the room task.
#[derive(Debug)]
pub(crate) struct NewVersion {
    pub kind: VersionKind,
    pub label: Option<String>,
    pub restored_from: Option<VersionId>,
    pub state: Bytes,
    pub state_vector: Bytes,
}

impl History {
    /// History kept in `store` under `config`'s interval and retention.
    pub fn new(store: Arc<dyn VersionStore>, config: &HistoryConfig) -> Self {
        Self {
            inner: Arc::new(Inner {
                store,
                interval: config.auto_interval(),
                retention: config.version_retention,
            }),
        }
    }

    /// Where versions are kept.
    pub fn store(&self) -> &dyn VersionStore {
        self.inner.store.as_ref()
    }

    /// How long after the first edit since a version the next automatic one is made.
    pub fn interval(&self) -> Option<Duration> {
        self.inner.interval
    }

    /// Stores a room's tally as activity of `minute` (minutes since the Unix epoch). Failures
    /// are logged: activity is statistics, and a room must not fail over it.
    pub(crate) async fn record_activity(&self, doc: &DocName, minute: u64, tally: Vec<Activity>) {
        let records = to_records(minute, tally);
        if let Err(error) = self.store().record_activity(doc, &records).await {
            metrics::get().store_errors.increment(1);
            tracing::warn!(%doc, %error, "recording activity failed");
        }
    }

    /// The background half of making a version: stores the activity that came with it, then
    /// the version with the authors since the previous one, then applies the retention
    /// policy. `None` when an automatic version was skipped (see the module docs).
    ///
    /// # Errors
    /// The store's error; the version is then not listed.
    pub(crate) async fn record_version(
        &self,
        doc: &DocName,
        version: NewVersion,
        minute: u64,
        tally: Vec<Activity>,
    ) -> Result<Option<VersionMeta>, StoreError> {
        let store = self.store();
        if !tally.is_empty() {
            store
                .record_activity(doc, &to_records(minute, tally))
                .await?;
        }
        let created_ms = now_ms();
        let versions = store.list(doc).await?;
        let previous = versions.last();
        if version.kind == VersionKind::Auto
            && let Some(previous) = previous
        {
            let half = self.inner.interval.unwrap_or_default() / 2;
            let recent = created_ms.saturating_sub(previous.created_ms) < millis(half);
            let same = store
                .get(doc, &previous.id)
                .await?
                .is_some_and(|p| p.state_vector == version.state_vector);
            if recent || same {
                tracing::debug!(%doc, recent, same, "automatic version skipped");
                return Ok(None);
            }
        }
        let since_minute = previous.map_or(0, |p| p.created_ms / 60_000);
        let authors: BTreeSet<String> = store
            .activity(doc)
            .await?
            .into_iter()
            .filter(|r| r.minute >= since_minute)
            .map(|r| r.identity)
            .collect();
        let meta = VersionMeta {
            id: VersionId::new(created_ms),
            doc: doc.to_string(),
            created_ms,
            kind: version.kind,
            label: version.label,
            restored_from: version.restored_from,
            authors: authors.into_iter().collect(),
            state_bytes: u64::try_from(version.state.len()).unwrap_or(u64::MAX),
        };
        store
            .put(
                doc,
                &Version {
                    meta: meta.clone(),
                    state: version.state,
                    state_vector: version.state_vector,
                },
            )
            .await?;
        tracing::info!(%doc, id = %meta.id, kind = ?meta.kind, bytes = meta.state_bytes, "version recorded");
        let pruned = prune(store, doc, self.inner.retention, created_ms).await?;
        if !pruned.removed.is_empty() || pruned.activity_removed > 0 {
            tracing::info!(
                %doc,
                removed = pruned.removed.len(),
                kept = pruned.kept,
                activity_removed = pruned.activity_removed,
                retention = %self.inner.retention,
                "versions pruned"
            );
        }
        Ok(Some(meta))
    }
}

/// The state vector (v1) of a whole-document update, for versions made outside a room (the
/// CLI's restore).
///
/// # Errors
/// When `state` is not a Yjs v1 update that applies.
pub fn state_vector_of(state: &[u8]) -> Result<Vec<u8>, String> {
    use yrs::updates::decoder::Decode;
    use yrs::updates::encoder::Encode;
    use yrs::{ReadTxn, Transact};
    let update = yrs::Update::decode_v1(state).map_err(|e| e.to_string())?;
    let doc = yrs::Doc::new();
    let mut txn = doc.transact_mut();
    txn.apply_update(update).map_err(|e| e.to_string())?;
    Ok(txn.state_vector().encode_v1())
}

/// The record of a version made outside a room (the CLI): stored like a room's, then the
/// retention policy applied.
///
/// # Errors
/// The store's error.
pub async fn record_offline(
    history: &History,
    doc: &DocName,
    version: Version,
) -> Result<(), StoreError> {
    history.store().put(doc, &version).await?;
    prune(
        history.store(),
        doc,
        history.inner.retention,
        version.meta.created_ms,
    )
    .await?;
    Ok(())
}

fn to_records(minute: u64, tally: Vec<Activity>) -> Vec<ActivityRecord> {
    tally
        .into_iter()
        .map(|a| ActivityRecord {
            minute,
            identity: a.identity.to_string(),
            updates: a.updates,
            bytes: a.bytes,
        })
        .collect()
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// The current minute, as minutes since the Unix epoch.
pub(crate) fn current_minute() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() / 60)
}

/// How long until the next minute starts on the wall clock.
pub(crate) fn until_next_minute() -> Duration {
    let into = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(Duration::ZERO, |d| {
            Duration::from_millis(u64::try_from(d.as_millis() % 60_000).unwrap_or(0))
        });
    Duration::from_secs(60).saturating_sub(into)
}

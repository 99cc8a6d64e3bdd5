//! In-memory backends, for tests and servers that need no persistence: [`MemoryStore`] and
//! [`MemoryLog`].

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Mutex, MutexGuard, PoisonError};

use async_trait::async_trait;
use bytes::Bytes;
use chorus_protocol::DocName;

use crate::{SnapshotStore, StoreError, UpdateLog};

/// Snapshots in a map; lost when the process exits.
///
/// Only this process can write to it, and a room has at most one save in flight, so a save
/// simply replaces the snapshot: there is no other node whose state it could erase.
#[derive(Debug, Default)]
pub struct MemoryStore {
    snapshots: Mutex<BTreeMap<DocName, Bytes>>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn snapshots(&self) -> MutexGuard<'_, BTreeMap<DocName, Bytes>> {
        // A panic while holding this lock cannot leave the map half-updated (every operation is
        // a single map call), so a poisoned lock is still safe to use.
        self.snapshots
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

#[async_trait]
impl SnapshotStore for MemoryStore {
    async fn load(&self, doc: &DocName) -> Result<Option<Bytes>, StoreError> {
        Ok(self.snapshots().get(doc).cloned())
    }

    async fn save(&self, doc: &DocName, snapshot: Bytes) -> Result<(), StoreError> {
        self.snapshots().insert(doc.clone(), snapshot);
        Ok(())
    }

    async fn delete(&self, doc: &DocName) -> Result<(), StoreError> {
        self.snapshots().remove(doc);
        Ok(())
    }

    async fn list(&self) -> Result<Vec<DocName>, StoreError> {
        Ok(self.snapshots().keys().cloned().collect())
    }
}

/// Update logs in a map; lost when the process exits.
#[derive(Debug, Default)]
pub struct MemoryLog {
    logs: Mutex<BTreeMap<DocName, DocLog>>,
}

#[derive(Debug, Default)]
struct DocLog {
    /// Highest sequence number handed out, kept when truncation empties `records`.
    high_water: u64,
    records: VecDeque<(u64, Bytes)>,
}

impl MemoryLog {
    /// An empty log.
    pub fn new() -> Self {
        Self::default()
    }

    fn logs(&self) -> MutexGuard<'_, BTreeMap<DocName, DocLog>> {
        // As in `MemoryStore::snapshots`: no critical section can be left half done.
        self.logs.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[async_trait]
impl UpdateLog for MemoryLog {
    async fn append(&self, doc: &DocName, updates: &[Bytes]) -> Result<u64, StoreError> {
        let mut logs = self.logs();
        let log = logs.entry(doc.clone()).or_default();
        for update in updates {
            log.high_water += 1;
            log.records.push_back((log.high_water, update.clone()));
        }
        Ok(log.high_water)
    }

    async fn read(&self, doc: &DocName) -> Result<Vec<(u64, Bytes)>, StoreError> {
        Ok(self
            .logs()
            .get(doc)
            .map(|log| log.records.iter().cloned().collect())
            .unwrap_or_default())
    }

    async fn truncate(&self, doc: &DocName, through: u64) -> Result<(), StoreError> {
        if let Some(log) = self.logs().get_mut(doc) {
            while log.records.front().is_some_and(|(seq, _)| *seq <= through) {
                log.records.pop_front();
            }
        }
        Ok(())
    }

    async fn delete(&self, doc: &DocName) -> Result<(), StoreError> {
        self.logs().remove(doc);
        Ok(())
    }

    async fn list(&self) -> Result<Vec<DocName>, StoreError> {
        Ok(self.logs().keys().cloned().collect())
    }
}

//! An in-memory [`SnapshotStore`](crate::SnapshotStore): for tests, and servers that need no
//! persistence.

use std::collections::BTreeMap;
use std::sync::Mutex;

use async_trait::async_trait;
use bytes::Bytes;
use chorus_protocol::DocName;

use crate::{SnapshotStore, StoreError};

/// Snapshots in a map; lost when the process exits.
#[derive(Debug, Default)]
pub struct MemoryStore {
    snapshots: Mutex<BTreeMap<DocName, Bytes>>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn snapshots(&self) -> std::sync::MutexGuard<'_, BTreeMap<DocName, Bytes>> {
        // A panic while holding this lock cannot leave the map half-updated (every operation is
        // a single map call), so a poisoned lock is still safe to use.
        self.snapshots
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
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

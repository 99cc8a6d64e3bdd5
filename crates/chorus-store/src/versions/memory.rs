//! [`MemoryVersions`]: versions and activity in maps; lost when the process exits.

use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard, PoisonError};

use async_trait::async_trait;
use chorus_protocol::DocName;

use super::{ActivityRecord, Version, VersionId, VersionMeta, VersionStore, merge_activity};
use crate::StoreError;

/// Versions in memory, for tests and servers without persistence.
#[derive(Debug, Default)]
pub struct MemoryVersions {
    docs: Mutex<BTreeMap<DocName, DocHistory>>,
}

#[derive(Debug, Default)]
struct DocHistory {
    versions: BTreeMap<VersionId, Version>,
    activity: Vec<ActivityRecord>,
}

impl MemoryVersions {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn docs(&self) -> MutexGuard<'_, BTreeMap<DocName, DocHistory>> {
        // Every critical section is a few map calls that leave the map consistent, so a
        // poisoned lock is still safe to use.
        self.docs.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[async_trait]
impl VersionStore for MemoryVersions {
    async fn put(&self, doc: &DocName, version: &Version) -> Result<(), StoreError> {
        self.docs()
            .entry(doc.clone())
            .or_default()
            .versions
            .insert(version.meta.id.clone(), version.clone());
        Ok(())
    }

    async fn list(&self, doc: &DocName) -> Result<Vec<VersionMeta>, StoreError> {
        Ok(self.docs().get(doc).map_or_else(Vec::new, |history| {
            history.versions.values().map(|v| v.meta.clone()).collect()
        }))
    }

    async fn get(&self, doc: &DocName, id: &VersionId) -> Result<Option<Version>, StoreError> {
        Ok(self
            .docs()
            .get(doc)
            .and_then(|history| history.versions.get(id).cloned()))
    }

    async fn remove(&self, doc: &DocName, id: &VersionId) -> Result<bool, StoreError> {
        Ok(self
            .docs()
            .get_mut(doc)
            .is_some_and(|history| history.versions.remove(id).is_some()))
    }

    async fn record_activity(
        &self,
        doc: &DocName,
        records: &[ActivityRecord],
    ) -> Result<(), StoreError> {
        let mut docs = self.docs();
        let history = docs.entry(doc.clone()).or_default();
        let all = std::mem::take(&mut history.activity);
        history.activity = merge_activity(all.into_iter().chain(records.iter().cloned()));
        Ok(())
    }

    async fn activity(&self, doc: &DocName) -> Result<Vec<ActivityRecord>, StoreError> {
        Ok(self
            .docs()
            .get(doc)
            .map(|history| history.activity.clone())
            .unwrap_or_default())
    }

    async fn prune_activity(&self, doc: &DocName, minute: u64) -> Result<usize, StoreError> {
        let mut docs = self.docs();
        let Some(history) = docs.get_mut(doc) else {
            return Ok(0);
        };
        let before = history.activity.len();
        history.activity.retain(|r| r.minute >= minute);
        Ok(before - history.activity.len())
    }
}

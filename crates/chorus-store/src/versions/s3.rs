//! [`S3Versions`]: version history as objects beside the snapshots:
//! `<prefix>/versions/<stem>/<id>.version` (the [`format`](super::format) every backend
//! writes) and `<prefix>/versions/<stem>/activity/<minute>-<random>.json`, one object per flush
//! (objects are immutable, so appending is writing a new one; they add up when read, and
//! pruning deletes those whose newest minute is too old).

use std::sync::Arc;

use async_trait::async_trait;
use chorus_protocol::DocName;
use futures_util::TryStreamExt;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};

use super::format::{HEADER_LEN, decode_version, encode_version, meta_len, read_meta};
use super::{ActivityRecord, Version, VersionId, VersionMeta, VersionStore, merge_activity};
use crate::StoreError;
use crate::s3::object_stem;

const VERSION_SUFFIX: &str = ".version";
/// Bytes fetched first when listing: enough for most descriptions, so one request each.
const FIRST_READ: usize = 4096;

/// Versions in an object store.
#[derive(Debug, Clone)]
pub struct S3Versions {
    store: Arc<dyn ObjectStore>,
    root: Path,
}

impl S3Versions {
    /// Versions under `<prefix>/versions` in `store`.
    ///
    /// # Errors
    /// [`StoreError::Config`] if `prefix` is not a valid object path.
    pub fn with_object_store(
        store: Arc<dyn ObjectStore>,
        prefix: &str,
    ) -> Result<Self, StoreError> {
        let prefix = Path::parse(prefix)
            .map_err(|e| StoreError::Config(format!("S3 prefix {prefix:?}: {e}")))?;
        Ok(Self {
            store,
            root: prefix.join("versions"),
        })
    }

    /// The S3 client `config` describes, as [`crate::S3Store::new`] builds it.
    ///
    /// # Errors
    /// [`StoreError::Config`] if the configuration is incomplete or invalid.
    pub fn new(config: &crate::S3Config) -> Result<Self, StoreError> {
        let (store, prefix) = crate::S3Store::new(config)?.parts();
        Self::with_object_store(store, &prefix)
    }

    /// The records of one activity object; `None` (logged) when it does not parse.
    async fn activity_object(
        &self,
        path: &Path,
        doing: &'static str,
    ) -> Result<Option<Vec<ActivityRecord>>, StoreError> {
        let fail = |e| StoreError::backend(doing, path.as_ref(), e);
        let bytes = self
            .store
            .get(path)
            .await
            .map_err(fail)?
            .bytes()
            .await
            .map_err(fail)?;
        match serde_json::from_slice::<Vec<ActivityRecord>>(&bytes) {
            Ok(records) => Ok(Some(records)),
            Err(error) => {
                tracing::warn!(object = %path, %error, "skipping unreadable activity");
                Ok(None)
            }
        }
    }

    fn dir_of(&self, doc: &DocName) -> Path {
        self.root.clone().join(object_stem(doc))
    }

    fn path_of(&self, doc: &DocName, id: &VersionId) -> Path {
        self.dir_of(doc).join(format!("{id}{VERSION_SUFFIX}"))
    }

    async fn objects(&self, under: &Path) -> Result<Vec<object_store::ObjectMeta>, StoreError> {
        self.store
            .list(Some(under))
            .try_collect()
            .await
            .map_err(|e| StoreError::backend("listing versions", under.as_ref(), e))
    }

    async fn meta_of(&self, object: &object_store::ObjectMeta) -> Result<VersionMeta, StoreError> {
        let path = &object.location;
        let fail =
            |e: object_store::Error| StoreError::backend("reading version", path.as_ref(), e);
        let size = usize::try_from(object.size).unwrap_or(usize::MAX);
        let first = self
            .store
            .get_range(path, 0..u64::try_from(FIRST_READ.min(size)).unwrap_or(0))
            .await
            .map_err(fail)?;
        let corrupt = |reason: &str| StoreError::Corrupt {
            location: path.to_string(),
            reason: reason.to_owned(),
        };
        let len = first
            .get(..HEADER_LEN)
            .and_then(meta_len)
            .ok_or_else(|| corrupt("not a Chorus version"))?;
        let start = if HEADER_LEN + len <= first.len() {
            first
        } else {
            let end = u64::try_from(HEADER_LEN + len).unwrap_or(u64::MAX);
            self.store.get_range(path, 0..end).await.map_err(fail)?
        };
        read_meta(&start).map(|(meta, _)| meta).map_err(corrupt)
    }
}

#[async_trait]
impl VersionStore for S3Versions {
    async fn put(&self, doc: &DocName, version: &Version) -> Result<(), StoreError> {
        let path = self.path_of(doc, &version.meta.id);
        self.store
            .put(&path, PutPayload::from(encode_version(version)))
            .await
            .map_err(|e| StoreError::backend("writing version", path.as_ref(), e))?;
        Ok(())
    }

    async fn list(&self, doc: &DocName) -> Result<Vec<VersionMeta>, StoreError> {
        let dir = self.dir_of(doc);
        let depth = dir.parts_count() + 1;
        let mut metas = Vec::new();
        for object in self.objects(&dir).await? {
            let is_version = object.location.parts_count() == depth
                && object
                    .location
                    .filename()
                    .is_some_and(|f| f.ends_with(VERSION_SUFFIX));
            if !is_version {
                continue;
            }
            match self.meta_of(&object).await {
                Ok(meta) => metas.push(meta),
                Err(error) => {
                    tracing::warn!(object = %object.location, %error, "skipping unreadable version");
                }
            }
        }
        metas.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(metas)
    }

    async fn get(&self, doc: &DocName, id: &VersionId) -> Result<Option<Version>, StoreError> {
        let path = self.path_of(doc, id);
        let fail = |e| StoreError::backend("reading version", path.as_ref(), e);
        let bytes = match self.store.get(&path).await {
            Ok(result) => result.bytes().await.map_err(fail)?,
            Err(object_store::Error::NotFound { .. }) => return Ok(None),
            Err(e) => return Err(fail(e)),
        };
        decode_version(&bytes, path.as_ref()).map(Some)
    }

    async fn remove(&self, doc: &DocName, id: &VersionId) -> Result<bool, StoreError> {
        let path = self.path_of(doc, id);
        if self.store.head(&path).await.is_err() {
            return Ok(false);
        }
        match self.store.delete(&path).await {
            Ok(()) => Ok(true),
            Err(object_store::Error::NotFound { .. }) => Ok(false),
            Err(e) => Err(StoreError::backend("removing version", path.as_ref(), e)),
        }
    }

    async fn record_activity(
        &self,
        doc: &DocName,
        records: &[ActivityRecord],
    ) -> Result<(), StoreError> {
        let Some(newest) = records.iter().map(|r| r.minute).max() else {
            return Ok(());
        };
        let path = self
            .dir_of(doc)
            .join("activity")
            .join(format!("{newest:010}-{:016x}.json", fastrand::u64(..)));
        // Plain strings and numbers: serialising cannot fail.
        let body = serde_json::to_vec(records).unwrap_or_default();
        self.store
            .put(&path, PutPayload::from(body))
            .await
            .map_err(|e| StoreError::backend("recording activity", path.as_ref(), e))?;
        Ok(())
    }

    async fn activity(&self, doc: &DocName) -> Result<Vec<ActivityRecord>, StoreError> {
        let dir = self.dir_of(doc).join("activity");
        let mut all = Vec::new();
        for object in self.objects(&dir).await? {
            if let Some(records) = self
                .activity_object(&object.location, "reading activity")
                .await?
            {
                all.extend(records);
            }
        }
        Ok(merge_activity(all))
    }

    async fn prune_activity(&self, doc: &DocName, minute: u64) -> Result<usize, StoreError> {
        // One object per flush, which may hold minutes on both sides of the cut: each object
        // is read, and removed or written back with only its newer records.
        let dir = self.dir_of(doc).join("activity");
        let mut removed = 0;
        for object in self.objects(&dir).await? {
            let path = &object.location;
            let fail = |e| StoreError::backend("pruning activity", path.as_ref(), e);
            // Unreadable: `activity` skips it; leave it for an operator to look at.
            let Some(records) = self.activity_object(path, "pruning activity").await? else {
                continue;
            };
            let (old, kept): (Vec<_>, Vec<_>) =
                records.into_iter().partition(|r| r.minute < minute);
            if old.is_empty() {
                continue;
            }
            if kept.is_empty() {
                self.store.delete(path).await.map_err(fail)?;
            } else {
                // Plain strings and numbers: serialising cannot fail.
                let body = serde_json::to_vec(&kept).unwrap_or_default();
                self.store
                    .put(path, PutPayload::from(body))
                    .await
                    .map_err(fail)?;
            }
            removed += old.len();
        }
        Ok(removed)
    }
}

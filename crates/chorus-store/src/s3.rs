//! [`S3Store`]: snapshots as objects in S3-compatible storage (AWS S3, MinIO, R2, …) through the
//! `object_store` crate. Behind the cargo feature `s3`.
//!
//! Objects are `<prefix>/<name>.snap` in the [`snapshot_file`] format, the same bytes
//! [`FsStore`](crate::FsStore) writes. `<name>` is the document's [stem](crate::naming) spelt
//! with URL-unreserved characters only (`%` becomes `.`, the `~` of hashed stems `..`): stores
//! differ in how they decode escaped object paths (moto keeps `%7E` literally where S3 decodes
//! it), and a name that needs no escaping reads back the same everywhere.
//!
//! # Several nodes, one document
//! Saving is read-merge-write under a conditional put: the object is read with its e-tag, the
//! new snapshot merged into it, and the result written with `If-Match: <e-tag>`
//! ([`PutMode::Update`]), or `If-None-Match: *` ([`PutMode::Create`]) when there was none. A
//! lost race (HTTP 412) starts over from the read. S3 has honoured both headers on `PutObject`
//! since late 2024; other stores need them too (MinIO and R2 do). The loop itself, and what
//! happens to a damaged stored snapshot, are the ones every shared backend runs (the crate's
//! `cas` module).

use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use chorus_protocol::DocName;
use futures_util::TryStreamExt;
use object_store::aws::{AmazonS3Builder, S3ConditionalPut};
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload, UpdateVersion};

use crate::cas::{self, KeptAside};
use crate::naming::{self, Stem};
use crate::{S3Config, SnapshotStore, StoreError, snapshot_file};
/// The `object_store` crate this backend is built on, for callers of
/// [`S3Store::with_object_store`].
pub use object_store;

/// Suffix of snapshot objects.
const SNAPSHOT_SUFFIX: &str = ".snap";

/// Snapshots in an object store; see the module docs.
#[derive(Debug, Clone)]
pub struct S3Store {
    store: Arc<dyn ObjectStore>,
    prefix: Path,
}

impl S3Store {
    /// Builds the S3 client described by `config`. Credentials come from the usual `AWS_*`
    /// environment variables (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`,
    /// `AWS_SESSION_TOKEN`, …), or the instance metadata service when those are unset.
    ///
    /// # Errors
    /// [`StoreError::Config`] if the configuration is incomplete or invalid.
    pub fn new(config: &S3Config) -> Result<Self, StoreError> {
        let mut builder = AmazonS3Builder::from_env()
            .with_bucket_name(&config.bucket)
            .with_conditional_put(S3ConditionalPut::ETagMatch)
            .with_allow_http(config.allow_http);
        if let Some(endpoint) = &config.endpoint {
            builder = builder.with_endpoint(endpoint);
        }
        if let Some(region) = &config.region {
            builder = builder.with_region(region);
        }
        let store = builder
            .build()
            .map_err(|e| StoreError::Config(format!("S3: {e}")))?;
        Self::with_object_store(Arc::new(store), &config.prefix)
    }

    /// Uses any object store (one with conditional puts, or saves lose their protection).
    ///
    /// # Errors
    /// [`StoreError::Config`] if `prefix` is not a valid object path.
    pub fn with_object_store(
        store: Arc<dyn ObjectStore>,
        prefix: &str,
    ) -> Result<Self, StoreError> {
        let prefix = Path::parse(prefix)
            .map_err(|e| StoreError::Config(format!("S3 prefix {prefix:?}: {e}")))?;
        Ok(Self { store, prefix })
    }

    /// The client and prefix, for the version store beside the snapshots.
    pub(crate) fn parts(self) -> (Arc<dyn ObjectStore>, String) {
        (self.store, self.prefix.to_string())
    }

    /// The object that holds the snapshot of `doc`.
    pub fn path_of(&self, doc: &DocName) -> Path {
        self.prefix
            .clone()
            .join(format!("{}{SNAPSHOT_SUFFIX}", object_stem(doc)))
    }

    fn slot(&self, doc: &DocName) -> S3Slot<'_> {
        S3Slot {
            store: self,
            path: self.path_of(doc),
        }
    }

    /// The stored object and its version, if there is one.
    async fn fetch(&self, path: &Path) -> Result<Option<(Bytes, UpdateVersion)>, StoreError> {
        let result = match self.store.get(path).await {
            Ok(result) => result,
            Err(object_store::Error::NotFound { .. }) => return Ok(None),
            Err(e) => return Err(StoreError::backend("reading snapshot", path.as_ref(), e)),
        };
        let version = UpdateVersion {
            e_tag: result.meta.e_tag.clone(),
            version: result.meta.version.clone(),
        };
        let bytes = result
            .bytes()
            .await
            .map_err(|e| StoreError::backend("reading snapshot", path.as_ref(), e))?;
        Ok(Some((bytes, version)))
    }
}

/// The object of one document, for the compare-and-swap save ([`cas`]).
struct S3Slot<'a> {
    store: &'a S3Store,
    path: Path,
}

#[async_trait]
impl cas::Slot for S3Slot<'_> {
    /// The object's e-tag (and version, where the bucket keeps versions).
    type Version = UpdateVersion;

    fn location(&self) -> String {
        location(&self.path)
    }

    async fn read(&self) -> Result<Option<(Bytes, UpdateVersion)>, StoreError> {
        self.store.fetch(&self.path).await
    }

    async fn write(
        &self,
        frame: Bytes,
        expected: Option<&UpdateVersion>,
    ) -> Result<bool, StoreError> {
        let mode = match expected {
            None => PutMode::Create,
            Some(version) => PutMode::Update(version.clone()),
        };
        match self
            .store
            .store
            .put_opts(&self.path, PutPayload::from(frame), PutOptions::from(mode))
            .await
        {
            Ok(_) => Ok(true),
            Err(
                object_store::Error::Precondition { .. }
                | object_store::Error::AlreadyExists { .. },
            ) => Ok(false),
            Err(e) => Err(StoreError::backend(
                "saving snapshot",
                self.path.as_ref(),
                e,
            )),
        }
    }

    /// Copies the damaged bytes to `<object>.corrupt-<ms>`, never replacing an existing object;
    /// the original is then replaced under its version as usual.
    async fn keep_aside(
        &self,
        stored: Bytes,
        version: UpdateVersion,
    ) -> Result<KeptAside<UpdateVersion>, StoreError> {
        let path = &self.path;
        let millis = naming::unix_millis();
        for attempt in 0..100 {
            let aside = Path::from_iter(
                path.parts()
                    .take(path.parts_count().saturating_sub(1))
                    .chain(std::iter::once(
                        naming::corrupt_name(path.filename().unwrap_or_default(), millis, attempt)
                            .into(),
                    )),
            );
            let put = self
                .store
                .store
                .put_opts(
                    &aside,
                    PutPayload::from(stored.clone()),
                    PutMode::Create.into(),
                )
                .await;
            match put {
                Ok(_) => {
                    return Ok(KeptAside::At {
                        at: location(&aside),
                        expect: Some(version),
                    });
                }
                Err(object_store::Error::AlreadyExists { .. }) => continue,
                Err(e) => {
                    return Err(StoreError::backend(
                        "keeping damaged snapshot aside",
                        path.as_ref(),
                        e,
                    ));
                }
            }
        }
        Err(StoreError::backend(
            "keeping damaged snapshot aside",
            path.as_ref(),
            std::io::Error::other("every aside object name is taken"),
        ))
    }
}

#[async_trait]
impl SnapshotStore for S3Store {
    async fn load(&self, doc: &DocName) -> Result<Option<Bytes>, StoreError> {
        cas::load(&self.slot(doc), doc).await
    }

    async fn save(&self, doc: &DocName, snapshot: Bytes) -> Result<(), StoreError> {
        cas::save(&self.slot(doc), doc, &snapshot).await
    }

    async fn delete(&self, doc: &DocName) -> Result<(), StoreError> {
        let path = self.path_of(doc);
        match self.store.delete(&path).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(StoreError::backend("deleting snapshot", path.as_ref(), e)),
        }
    }

    async fn list(&self) -> Result<Vec<DocName>, StoreError> {
        let objects: Vec<_> = self
            .store
            .list(Some(&self.prefix))
            .try_collect()
            .await
            .map_err(|e| StoreError::backend("listing snapshots", self.prefix.as_ref(), e))?;
        let depth = self.prefix.parts_count() + 1;
        let mut names = Vec::new();
        for object in objects {
            if object.location.parts_count() != depth {
                continue;
            }
            let Some(stem) = object
                .location
                .filename()
                .and_then(|f| f.strip_suffix(SNAPSHOT_SUFFIX))
            else {
                continue;
            };
            match parse_object_stem(stem) {
                Stem::Name(name) => names.push(name),
                Stem::Foreign => {}
                Stem::Hashed => {
                    let name = self
                        .fetch(&object.location)
                        .await?
                        .and_then(|(bytes, _)| snapshot_file::decode_name(&bytes).ok())
                        .and_then(|name| DocName::parse(name).ok());
                    match name {
                        Some(name) => names.push(name),
                        None => {
                            tracing::warn!(object = %object.location, "skipping unreadable snapshot")
                        }
                    }
                }
            }
        }
        names.sort();
        names.dedup();
        Ok(names)
    }
}

/// The stem of `doc` in URL-unreserved characters; see the module docs.
pub(crate) fn object_stem(doc: &DocName) -> String {
    let stem = naming::stem(doc);
    match stem.strip_prefix(naming::HASHED_PREFIX) {
        Some(hash) => format!("..{hash}"),
        None => stem.replace('%', "."),
    }
}

/// The inverse of [`object_stem`]. Unambiguous: in a plain stem every `.` is followed by two
/// hex digits, so only hashed stems start with `..`.
fn parse_object_stem(stem: &str) -> Stem {
    if stem.starts_with("..") {
        return Stem::Hashed;
    }
    naming::parse_stem(&stem.replace('.', "%"))
}

fn location(path: &Path) -> String {
    format!("object {path}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn object_names_need_no_escaping_and_read_back() {
        for name in ["notes", "team/notes", "ü ü", "..", "~x", &"ü/".repeat(150)] {
            let doc = DocName::parse(name).expect("name");
            let stem = object_stem(&doc);
            assert!(
                stem.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b)),
                "{stem}"
            );
            let expected = if stem.starts_with("..") {
                Stem::Hashed
            } else {
                Stem::Name(doc)
            };
            assert_eq!(parse_object_stem(&stem), expected);
        }
    }
}

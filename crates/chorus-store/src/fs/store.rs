//! [`FsStore`]: one snapshot file per document, saved through the compare-and-swap every
//! shared backend runs (see the [module docs](super) for files and locking).

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use bytes::Bytes;
use chorus_protocol::DocName;

use super::crash_safe::{self, link_aside, write_atomically};
use super::dir::{list_dir, prepare_dir, read_name};
use super::lock::FileLock;
use crate::cas::{self, KeptAside, Slot as _};
use crate::{SnapshotStore, StoreError, naming, snapshot_file};

/// File name suffix of snapshots.
const SNAPSHOT_SUFFIX: &str = ".snap";
/// File name suffix of the lock that serialises snapshot saves.
const LOCK_SUFFIX: &str = ".lock";

/// Snapshots as files in one directory.
#[derive(Debug, Clone)]
pub struct FsStore {
    dir: PathBuf,
}

impl FsStore {
    /// Opens (and creates, if needed) the directory `dir`.
    ///
    /// # Errors
    /// [`StoreError::Io`] when the directory cannot be created or is not writable.
    pub fn open(dir: impl Into<PathBuf>) -> Result<Self, StoreError> {
        let dir = dir.into();
        prepare_dir(&dir)?;
        Ok(Self { dir })
    }

    /// The directory snapshots live in.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The file that holds the snapshot of `doc`.
    pub fn path_of(&self, doc: &DocName) -> PathBuf {
        self.dir
            .join(format!("{}{SNAPSHOT_SUFFIX}", naming::stem(doc)))
    }

    fn lock_path_of(&self, doc: &DocName) -> PathBuf {
        self.dir.join(format!("{}{LOCK_SUFFIX}", naming::stem(doc)))
    }

    fn slot(&self, doc: &DocName) -> FsSlot {
        FsSlot {
            dir: self.dir.clone(),
            path: self.path_of(doc),
            lock_path: self.lock_path_of(doc),
        }
    }

    fn delete_blocking(&self, doc: &DocName) -> Result<(), StoreError> {
        let path = self.path_of(doc);
        let lock_path = self.lock_path_of(doc);
        let lock = FileLock::acquire(&lock_path)
            .map_err(StoreError::io("locking snapshot", &lock_path))?;
        match fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(StoreError::io("deleting snapshot", &path)(e)),
        }
        lock.remove()
            .map_err(StoreError::io("deleting snapshot lock", &lock_path))?;
        crash_safe::sync_dir(&self.dir).map_err(StoreError::io("deleting snapshot", &self.dir))
    }
}

/// The snapshot file of one document, for the compare-and-swap save (the `cas` module). Reading needs
/// no lock (files are replaced by rename); writing and keeping aside take the document's lock
/// and first check that the file is still byte for byte what was read, so nothing another
/// process saved in between is lost.
#[derive(Debug, Clone)]
struct FsSlot {
    dir: PathBuf,
    path: PathBuf,
    lock_path: PathBuf,
}

impl FsSlot {
    /// Runs `work` under the document's lock if the file still holds `expected` (`None`: no
    /// file); `Ok(None)` if it changed.
    async fn locked_if<T: Send + 'static>(
        &self,
        action: &'static str,
        expected: Option<Bytes>,
        work: impl FnOnce(&Self) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<Option<T>, StoreError> {
        let slot = self.clone();
        let location = self.location();
        tokio::task::spawn_blocking(move || {
            let _lock = FileLock::acquire(&slot.lock_path)
                .map_err(StoreError::io("locking snapshot", &slot.lock_path))?;
            if read_file(&slot.path)? != expected {
                return Ok(None);
            }
            work(&slot).map(Some)
        })
        .await
        .map_err(StoreError::join(action, location))?
    }
}

/// The bytes of `path`, or `None` if there is no such file.
fn read_file(path: &Path) -> Result<Option<Bytes>, StoreError> {
    match fs::read(path) {
        Ok(bytes) => Ok(Some(Bytes::from(bytes))),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(StoreError::io("reading snapshot", path)(e)),
    }
}

#[async_trait]
impl cas::Slot for FsSlot {
    /// The whole file: equal bytes are an equal state, whoever wrote them.
    type Version = Bytes;

    fn location(&self) -> String {
        self.path.display().to_string()
    }

    async fn read(&self) -> Result<Option<(Bytes, Bytes)>, StoreError> {
        match tokio::fs::read(&self.path).await {
            Ok(bytes) => {
                let bytes = Bytes::from(bytes);
                Ok(Some((bytes.clone(), bytes)))
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(StoreError::io("reading snapshot", &self.path)(e)),
        }
    }

    async fn write(&self, frame: Bytes, expected: Option<&Bytes>) -> Result<bool, StoreError> {
        let written = self
            .locked_if("writing snapshot", expected.cloned(), move |slot| {
                write_atomically(&slot.dir, &slot.path, &frame)
                    .map_err(StoreError::io("writing snapshot", &slot.path))
            })
            .await?;
        Ok(written.is_some())
    }

    /// Hard-links the damaged file aside; the write that follows replaces the original.
    async fn keep_aside(
        &self,
        _stored: Bytes,
        version: Bytes,
    ) -> Result<KeptAside<Bytes>, StoreError> {
        let kept = self
            .locked_if(
                "keeping damaged snapshot aside",
                Some(version.clone()),
                |slot| {
                    link_aside(&slot.path)
                        .map_err(StoreError::io("keeping damaged snapshot aside", &slot.path))
                },
            )
            .await?;
        Ok(match kept {
            Some(kept) => KeptAside::At {
                at: kept.display().to_string(),
                expect: Some(version),
            },
            None => KeptAside::Changed,
        })
    }
}

#[async_trait]
impl SnapshotStore for FsStore {
    async fn load(&self, doc: &DocName) -> Result<Option<Bytes>, StoreError> {
        cas::load(&self.slot(doc), doc).await
    }

    async fn save(&self, doc: &DocName, snapshot: Bytes) -> Result<(), StoreError> {
        cas::save(&self.slot(doc), doc, &snapshot).await
    }

    async fn delete(&self, doc: &DocName) -> Result<(), StoreError> {
        let store = self.clone();
        let doc = doc.clone();
        let location = self.path_of(&doc).display().to_string();
        tokio::task::spawn_blocking(move || store.delete_blocking(&doc))
            .await
            .map_err(StoreError::join("deleting snapshot", location))?
    }

    async fn list(&self) -> Result<Vec<DocName>, StoreError> {
        let dir = self.dir.clone();
        let location = dir.display().to_string();
        tokio::task::spawn_blocking(move || {
            list_dir(&dir, SNAPSHOT_SUFFIX, |path| {
                read_name(path, snapshot_file::header_len, snapshot_file::decode_name)
            })
        })
        .await
        .map_err(StoreError::join("listing snapshots", location))?
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use yrs::{Doc, ReadTxn, StateVector, Text, Transact};

    fn doc(name: &str) -> DocName {
        DocName::parse(name).expect("valid test name")
    }

    fn update_with(text: &str) -> Bytes {
        let doc = Doc::with_client_id(1);
        doc.get_or_insert_text("t")
            .push(&mut doc.transact_mut(), text);
        Bytes::from(
            doc.transact()
                .encode_state_as_update_v1(&StateVector::default()),
        )
    }

    #[tokio::test]
    async fn saves_loads_lists_and_deletes() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = FsStore::open(dir.path()).expect("open");
        let long = "ü/".repeat(150);
        for name in ["a", "team/notes", "..", ".hidden", long.as_str()] {
            assert_eq!(store.load(&doc(name)).await.expect("load"), None);
            store
                .save(&doc(name), update_with(name))
                .await
                .expect("save");
            let path = store.path_of(&doc(name));
            assert_eq!(
                path.parent(),
                Some(dir.path()),
                "{name} stays in the directory"
            );
            assert!(path.file_name().map_or(0, |n| n.len()) <= 255);
        }
        assert_eq!(
            store.load(&doc("team/notes")).await.expect("load"),
            Some(update_with("team/notes"))
        );
        let mut expected = vec![
            doc("a"),
            doc("team/notes"),
            doc(".."),
            doc(".hidden"),
            doc(&long),
        ];
        expected.sort();
        assert_eq!(store.list().await.expect("list"), expected);
        store.delete(&doc("a")).await.expect("delete");
        store
            .delete(&doc("a"))
            .await
            .expect("deleting twice is fine");
        assert_eq!(store.load(&doc("a")).await.expect("load"), None);
        assert!(!store.lock_path_of(&doc("a")).exists());
    }

    #[tokio::test]
    async fn refuses_a_snapshot_that_is_not_a_yjs_update() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = FsStore::open(dir.path()).expect("open");
        let result = store
            .save(&doc("d"), Bytes::from_static(b"\xff\xff\xff"))
            .await;
        assert!(
            matches!(result, Err(StoreError::Rejected { .. })),
            "{result:?}"
        );
        assert_eq!(store.load(&doc("d")).await.expect("load"), None);
    }
}

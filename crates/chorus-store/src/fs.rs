//! [`FsStore`]: one snapshot file per document in a local directory, the embedded default.
//!
//! Writes are atomic: the new snapshot goes to a temporary file in the same directory, is
//! fsynced, then renamed over the old one, and the directory is fsynced so the rename itself
//! survives a power cut.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use bytes::Bytes;
use chorus_protocol::DocName;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};
use sha2::{Digest, Sha256};

use crate::{SnapshotStore, StoreError, snapshot_file};

/// File name suffix of snapshots.
const SNAPSHOT_SUFFIX: &str = ".snap";
/// Prefix of temporary files; never a valid encoded name, since `.` is always percent-encoded.
const TEMP_PREFIX: &str = ".tmp-";
/// Encoded names longer than this are replaced by a hash: most file systems cap a file name at
/// 255 bytes, and a 512-byte document name can encode to three times that.
const MAX_ENCODED_NAME: usize = 200;
/// Everything but ASCII letters, digits, `-` and `_` is percent-encoded, so a name can never be
/// `..`, contain `/`, or start with a dot.
const FILE_NAME_SET: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'_');

/// Snapshots as files in one directory.
#[derive(Debug)]
pub struct FsStore {
    dir: PathBuf,
    temp_counter: AtomicU64,
}

impl FsStore {
    /// Opens (and creates, if needed) the directory `dir`.
    ///
    /// # Errors
    /// [`StoreError::Io`] when the directory cannot be created or is not writable.
    pub fn open(dir: impl Into<PathBuf>) -> Result<Self, StoreError> {
        let dir = dir.into();
        fs::create_dir_all(&dir).map_err(io_error("creating data directory", &dir))?;
        // Fail at startup, not at the first snapshot, if the directory is read-only.
        let probe = dir.join(format!("{TEMP_PREFIX}probe"));
        File::create(&probe)
            .and_then(|_| fs::remove_file(&probe))
            .map_err(io_error("writing to data directory", &dir))?;
        Ok(Self {
            dir,
            temp_counter: AtomicU64::new(0),
        })
    }

    /// The directory snapshots live in.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The file that holds the snapshot of `doc`.
    pub fn path_of(&self, doc: &DocName) -> PathBuf {
        let encoded = utf8_percent_encode(doc.as_str(), FILE_NAME_SET).to_string();
        let stem = if encoded.len() <= MAX_ENCODED_NAME {
            encoded
        } else {
            let digest = Sha256::digest(doc.as_str().as_bytes());
            let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
            format!("~{hex}")
        };
        self.dir.join(format!("{stem}{SNAPSHOT_SUFFIX}"))
    }
}

#[async_trait]
impl SnapshotStore for FsStore {
    async fn load(&self, doc: &DocName) -> Result<Option<Bytes>, StoreError> {
        let path = self.path_of(doc);
        let file = match tokio::fs::read(&path).await {
            Ok(bytes) => Bytes::from(bytes),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io_error("reading snapshot", &path)(e)),
        };
        let corrupt = |reason: String| StoreError::Corrupt {
            location: path.display().to_string(),
            reason,
        };
        let (name, payload) = snapshot_file::decode(&file).map_err(corrupt)?;
        if name != doc.as_str() {
            return Err(corrupt(format!(
                "it belongs to another document ({name:?})"
            )));
        }
        Ok(Some(payload))
    }

    async fn save(&self, doc: &DocName, snapshot: Bytes) -> Result<(), StoreError> {
        let path = self.path_of(doc);
        let temp = self.dir.join(format!(
            "{TEMP_PREFIX}{}-{}",
            std::process::id(),
            self.temp_counter.fetch_add(1, Ordering::Relaxed)
        ));
        let contents = snapshot_file::encode(doc.as_str(), &snapshot);
        let dir = self.dir.clone();
        let written = tokio::task::spawn_blocking(move || {
            write_atomically(&dir, &temp, &path, &contents).map_err(|e| (e, path))
        })
        .await
        .map_err(|join| StoreError::Io {
            action: "writing snapshot",
            location: self.dir.display().to_string(),
            source: io::Error::other(join),
        })?;
        written.map_err(|(e, path)| io_error("writing snapshot", &path)(e))
    }

    async fn delete(&self, doc: &DocName) -> Result<(), StoreError> {
        let path = self.path_of(doc);
        match tokio::fs::remove_file(&path).await {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io_error("deleting snapshot", &path)(e)),
        }
    }

    async fn list(&self) -> Result<Vec<DocName>, StoreError> {
        let dir = self.dir.clone();
        tokio::task::spawn_blocking(move || list_dir(&dir))
            .await
            .map_err(|join| StoreError::Io {
                action: "listing snapshots",
                location: String::new(),
                source: io::Error::other(join),
            })?
    }
}

fn write_atomically(dir: &Path, temp: &Path, path: &Path, contents: &[u8]) -> io::Result<()> {
    let result = (|| {
        let mut file = OpenOptions::new().write(true).create_new(true).open(temp)?;
        file.write_all(contents)?;
        file.sync_all()?;
        fs::rename(temp, path)?;
        File::open(dir)?.sync_all()
    })();
    if result.is_err() {
        let _ = fs::remove_file(temp);
    }
    result
}

fn list_dir(dir: &Path) -> Result<Vec<DocName>, StoreError> {
    let mut names = Vec::new();
    let entries = fs::read_dir(dir).map_err(io_error("listing snapshots", dir))?;
    for entry in entries {
        let entry = entry.map_err(io_error("listing snapshots", dir))?;
        let file_name = entry.file_name();
        let Some(stem) = file_name
            .to_str()
            .and_then(|n| n.strip_suffix(SNAPSHOT_SUFFIX))
        else {
            continue;
        };
        let name = if stem.starts_with('~') {
            match read_stored_name(&entry.path()) {
                Ok(name) => name,
                Err(reason) => {
                    tracing::warn!(file = %entry.path().display(), %reason, "skipping unreadable snapshot");
                    continue;
                }
            }
        } else {
            percent_decode_str(stem).decode_utf8_lossy().into_owned()
        };
        if let Ok(name) = DocName::parse(name) {
            names.push(name);
        }
    }
    names.sort();
    Ok(names)
}

fn read_stored_name(path: &Path) -> Result<String, String> {
    let mut header =
        vec![0; snapshot_file::header_len(chorus_protocol::doc_name::MAX_DOC_NAME_BYTES)];
    let mut file = File::open(path).map_err(|e| e.to_string())?;
    let mut filled = 0;
    while filled < header.len() {
        match file
            .read(&mut header[filled..])
            .map_err(|e| e.to_string())?
        {
            0 => break,
            n => filled += n,
        }
    }
    snapshot_file::decode_name(&header[..filled])
}

fn io_error(action: &'static str, location: &Path) -> impl FnOnce(io::Error) -> StoreError {
    let location = location.display().to_string();
    move |source| StoreError::Io {
        action,
        location,
        source,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(name: &str) -> DocName {
        DocName::parse(name).expect("valid test name")
    }

    #[tokio::test]
    async fn saves_loads_lists_and_deletes() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = FsStore::open(dir.path()).expect("open");
        let long = "ü/".repeat(150);
        for name in ["a", "team/notes", "..", ".hidden", long.as_str()] {
            assert_eq!(store.load(&doc(name)).await.expect("load"), None);
            store
                .save(&doc(name), Bytes::from(name.to_owned()))
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
            Some(Bytes::from_static(b"team/notes"))
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
    }

    #[tokio::test]
    async fn a_corrupt_snapshot_is_an_error_and_is_left_in_place() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = FsStore::open(dir.path()).expect("open");
        store
            .save(&doc("d"), Bytes::from_static(b"state"))
            .await
            .expect("save");
        let path = store.path_of(&doc("d"));
        let mut bytes = fs::read(&path).expect("read");
        let last = bytes.len() - 6;
        bytes[last] ^= 0xff;
        fs::write(&path, &bytes).expect("damage");
        assert!(matches!(
            store.load(&doc("d")).await,
            Err(StoreError::Corrupt { .. })
        ));
        assert_eq!(fs::read(&path).expect("still there"), bytes);
    }
}

//! [`FsVersions`]: version history as files under `<data dir>/versions/<stem>/`:
//! - `<id>.version`: one version ([`format`](crate::versions::format)), written atomically and
//!   never changed;
//! - `activity.jsonl`: activity records, one JSON object per line, appended under the `flock`
//!   of `activity.lock` (so that several processes appending and one pruning never lose a
//!   line); lines for the same minute and identity add up when read.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use chorus_protocol::DocName;

use super::crash_safe::{sync_dir, write_atomically};
use super::dir::prepare_dir;
use super::lock::FileLock;
use crate::versions::format::{HEADER_LEN, decode_version, encode_version, meta_len, read_meta};
use crate::versions::{
    ActivityRecord, Version, VersionId, VersionMeta, VersionStore, merge_activity,
};
use crate::{StoreError, naming};

const VERSION_SUFFIX: &str = ".version";
const ACTIVITY_FILE: &str = "activity.jsonl";
const ACTIVITY_LOCK: &str = "activity.lock";

/// Versions as files under a data directory.
#[derive(Debug, Clone)]
pub struct FsVersions {
    root: PathBuf,
}

impl FsVersions {
    /// Versions under `<dir>/versions`, created if needed.
    ///
    /// # Errors
    /// [`StoreError::Io`] when the directory cannot be created or is not writable.
    pub fn open(dir: impl AsRef<Path>) -> Result<Self, StoreError> {
        let root = dir.as_ref().join("versions");
        prepare_dir(&root)?;
        Ok(Self { root })
    }

    fn dir_of(&self, doc: &DocName) -> PathBuf {
        self.root.join(naming::stem(doc))
    }

    fn path_of(&self, doc: &DocName, id: &VersionId) -> PathBuf {
        self.dir_of(doc).join(format!("{id}{VERSION_SUFFIX}"))
    }

    async fn blocking<T: Send + 'static>(
        &self,
        action: &'static str,
        doc: &DocName,
        work: impl FnOnce(Self, DocName) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let (this, name) = (self.clone(), doc.clone());
        tokio::task::spawn_blocking(move || work(this, name))
            .await
            .map_err(StoreError::join(action, doc.to_string()))?
    }

    fn list_blocking(&self, doc: &DocName) -> Result<Vec<VersionMeta>, StoreError> {
        let dir = self.dir_of(doc);
        let entries = match fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(StoreError::io("listing versions", &dir)(e)),
        };
        let mut metas = Vec::new();
        for entry in entries {
            let entry = entry.map_err(StoreError::io("listing versions", &dir))?;
            let path = entry.path();
            if !path.to_string_lossy().ends_with(VERSION_SUFFIX) {
                continue;
            }
            match read_meta_file(&path) {
                Ok(meta) => metas.push(meta),
                Err(error) => {
                    tracing::warn!(file = %path.display(), %error, "skipping unreadable version");
                }
            }
        }
        metas.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(metas)
    }

    fn read_activity(path: &Path) -> Result<Vec<ActivityRecord>, StoreError> {
        let file = match File::open(path) {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(StoreError::io("reading activity", path)(e)),
        };
        let mut records = Vec::new();
        for line in BufReader::new(file).lines() {
            let line = line.map_err(StoreError::io("reading activity", path))?;
            // A line torn by a crash mid-append is the only kind that fails to parse; what it
            // counted is lost, nothing else.
            if let Ok(record) = serde_json::from_str::<ActivityRecord>(&line) {
                records.push(record);
            }
        }
        Ok(records)
    }
}

/// The description of the version in `path`, reading only the start of the file.
fn read_meta_file(path: &Path) -> Result<VersionMeta, StoreError> {
    let corrupt = |reason: &str| StoreError::Corrupt {
        location: path.display().to_string(),
        reason: reason.to_owned(),
    };
    let mut file = File::open(path).map_err(StoreError::io("reading version", path))?;
    let mut header = [0u8; HEADER_LEN];
    file.read_exact(&mut header)
        .map_err(|_| corrupt("truncated version"))?;
    let len = meta_len(&header).ok_or_else(|| corrupt("not a Chorus version (bad magic)"))?;
    let mut start = header.to_vec();
    let read = (&mut file)
        .take(u64::try_from(len).unwrap_or(u64::MAX))
        .read_to_end(&mut start)
        .map_err(StoreError::io("reading version", path))?;
    if read < len {
        return Err(corrupt("truncated description"));
    }
    read_meta(&start).map(|(meta, _)| meta).map_err(corrupt)
}

#[async_trait]
impl VersionStore for FsVersions {
    async fn put(&self, doc: &DocName, version: &Version) -> Result<(), StoreError> {
        let version = version.clone();
        self.blocking("writing version", doc, move |this, doc| {
            let dir = this.dir_of(&doc);
            fs::create_dir_all(&dir).map_err(StoreError::io("creating version directory", &dir))?;
            let path = this.path_of(&doc, &version.meta.id);
            write_atomically(&dir, &path, &encode_version(&version))
                .map_err(StoreError::io("writing version", &path))
        })
        .await
    }

    async fn list(&self, doc: &DocName) -> Result<Vec<VersionMeta>, StoreError> {
        self.blocking("listing versions", doc, move |this, doc| {
            this.list_blocking(&doc)
        })
        .await
    }

    async fn get(&self, doc: &DocName, id: &VersionId) -> Result<Option<Version>, StoreError> {
        let id = id.clone();
        self.blocking("reading version", doc, move |this, doc| {
            let path = this.path_of(&doc, &id);
            match fs::read(&path) {
                Ok(bytes) => decode_version(&bytes, &path.display().to_string()).map(Some),
                Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
                Err(e) => Err(StoreError::io("reading version", &path)(e)),
            }
        })
        .await
    }

    async fn remove(&self, doc: &DocName, id: &VersionId) -> Result<bool, StoreError> {
        let id = id.clone();
        self.blocking("removing version", doc, move |this, doc| {
            let path = this.path_of(&doc, &id);
            match fs::remove_file(&path) {
                Ok(()) => {
                    let dir = this.dir_of(&doc);
                    sync_dir(&dir).map_err(StoreError::io("removing version", &dir))?;
                    Ok(true)
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
                Err(e) => Err(StoreError::io("removing version", &path)(e)),
            }
        })
        .await
    }

    async fn record_activity(
        &self,
        doc: &DocName,
        records: &[ActivityRecord],
    ) -> Result<(), StoreError> {
        if records.is_empty() {
            return Ok(());
        }
        let mut lines = Vec::new();
        for record in records {
            // Plain strings and numbers: serialising cannot fail.
            serde_json::to_writer(&mut lines, record).unwrap_or_default();
            lines.push(b'\n');
        }
        self.blocking("recording activity", doc, move |this, doc| {
            let dir = this.dir_of(&doc);
            fs::create_dir_all(&dir).map_err(StoreError::io("creating version directory", &dir))?;
            let lock_path = dir.join(ACTIVITY_LOCK);
            let _lock = FileLock::acquire(&lock_path)
                .map_err(StoreError::io("locking activity", &lock_path))?;
            let path = dir.join(ACTIVITY_FILE);
            let mut file = OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)
                .map_err(StoreError::io("recording activity", &path))?;
            // Not fsynced: activity is statistics, and a crash loses at most the last minute.
            file.write_all(&lines)
                .map_err(StoreError::io("recording activity", &path))
        })
        .await
    }

    async fn activity(&self, doc: &DocName) -> Result<Vec<ActivityRecord>, StoreError> {
        self.blocking("reading activity", doc, move |this, doc| {
            Ok(merge_activity(Self::read_activity(
                &this.dir_of(&doc).join(ACTIVITY_FILE),
            )?))
        })
        .await
    }

    async fn prune_activity(&self, doc: &DocName, minute: u64) -> Result<usize, StoreError> {
        self.blocking("pruning activity", doc, move |this, doc| {
            let dir = this.dir_of(&doc);
            let path = dir.join(ACTIVITY_FILE);
            if !path.exists() {
                return Ok(0);
            }
            let lock_path = dir.join(ACTIVITY_LOCK);
            let _lock = FileLock::acquire(&lock_path)
                .map_err(StoreError::io("locking activity", &lock_path))?;
            let merged = merge_activity(Self::read_activity(&path)?);
            let before = merged.len();
            let mut kept = Vec::new();
            for record in merged.into_iter().filter(|r| r.minute >= minute) {
                serde_json::to_writer(&mut kept, &record).unwrap_or_default();
                kept.push(b'\n');
            }
            let after = kept.iter().filter(|&&b| b == b'\n').count();
            // Rewritten merged even when nothing is dropped: pruning also compacts the file.
            write_atomically(&dir, &path, &kept)
                .map_err(StoreError::io("pruning activity", &path))?;
            Ok(before - after)
        })
        .await
    }
}

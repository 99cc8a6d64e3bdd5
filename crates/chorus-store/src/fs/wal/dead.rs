//! Reading back the WALs of dead processes: [`Dead::claim`] locks every WAL no live process
//! holds and reads its entries; [`super::replay`] writes them into the document logs.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use bytes::Bytes;

use super::format::{Entry, WAL_HEADER_NAME, WAL_PREFIX, WAL_SUFFIX, parse_entry};
use crate::fs::crash_safe::{self, FileId};
use crate::fs::lock::FileLock;
use crate::log_record;

/// Serialises recovery between processes opening one directory at once: the second waits until
/// the first has replayed (and removed) the dead WALs, instead of serving before that.
/// Starts with `.`, which a document stem never does.
const RECOVERY_LOCK: &str = ".wal-recovery.lock";

/// The WALs of dead processes in a directory, claimed (locked) for replay.
pub(crate) struct Dead {
    /// Held until the replay is done; see [`RECOVERY_LOCK`].
    _recovery: FileLock,
    files: Vec<(PathBuf, File)>,
    /// Every entry of every claimed WAL, in file order.
    pub(crate) entries: Vec<Entry>,
}

impl Dead {
    /// Locks every WAL in `dir` whose owner is gone and reads its entries. Live WALs (locked
    /// by their process) are left alone.
    pub(crate) fn claim(dir: &Path) -> io::Result<Self> {
        let recovery = FileLock::acquire(&dir.join(RECOVERY_LOCK))?;
        let mut dead = Self {
            _recovery: recovery,
            files: Vec::new(),
            entries: Vec::new(),
        };
        for dir_entry in fs::read_dir(dir)? {
            let path = dir_entry?.path();
            let is_wal = path
                .file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(WAL_PREFIX) && n.ends_with(WAL_SUFFIX));
            if !is_wal {
                continue;
            }
            let mut file = match OpenOptions::new().read(true).write(true).open(&path) {
                Ok(file) => file,
                // Checkpointed by its owner since we listed the directory.
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(e),
            };
            match fs4::FileExt::try_lock(&file) {
                Ok(()) => {}
                Err(fs4::TryLockError::WouldBlock) => {
                    tracing::debug!(wal = %path.display(), "write-ahead log in use by a live process");
                    continue;
                }
                Err(fs4::TryLockError::Error(e)) => return Err(e),
            }
            // Its owner may have removed it between our open and our lock.
            let locked = FileId::of(&file.metadata()?);
            match fs::metadata(&path) {
                Ok(meta) if FileId::of(&meta) == locked => {}
                Ok(_) => continue,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(e),
            }
            let mut bytes = Vec::new();
            file.read_to_end(&mut bytes)?;
            let bytes = Bytes::from(bytes);
            let mut scan = log_record::scan(&bytes);
            let before = dead.entries.len();
            let mut unreadable = 0;
            for record in std::mem::take(&mut scan.records) {
                match parse_entry(record.payload) {
                    Some(entry) => dead.entries.push(entry),
                    None => unreadable += 1,
                }
            }
            tracing::info!(
                wal = %path.display(),
                entries = dead.entries.len() - before,
                // Zeros after the last record are space written ahead (see `epoch`), not a
                // torn write.
                torn_tail_bytes = scan.torn_tail.clone().map_or(0, |tail| {
                    bytes[tail].iter().filter(|&&b| b != 0).count()
                }),
                "found the write-ahead log of a process that did not shut down cleanly"
            );
            let foreign = scan.name.as_deref().is_some_and(|n| n != WAL_HEADER_NAME);
            if scan.is_damaged() || unreadable > 0 || foreign {
                tracing::warn!(
                    wal = %path.display(),
                    damaged_bytes = scan.damaged_bytes(),
                    unreadable_entries = unreadable,
                    "write-ahead log is damaged; replaying the entries that check out"
                );
            }
            dead.files.push((path, file));
        }
        Ok(dead)
    }

    /// Removes the claimed WALs, once what they hold is durable in the document logs.
    pub(crate) fn remove(self, dir: &Path) -> io::Result<()> {
        if self.files.is_empty() {
            return Ok(());
        }
        for (path, _) in &self.files {
            match fs::remove_file(path) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
        crash_safe::sync_dir(dir)
    }
}

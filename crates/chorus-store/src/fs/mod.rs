//! Files in one local directory: [`FsStore`] for snapshots, [`FsLog`] for update logs.
//!
//! For a document whose [stem](crate::naming) is `s` the directory holds:
//! - `s.snap`: the snapshot ([`snapshot_file`] format), replaced
//!   atomically (temporary file, fsync, rename, directory fsync);
//! - `s.lock`: an empty file whose `flock` serialises snapshot saves of `s`;
//! - `s.log`: the update log ([`log_record`](crate::log_record) format), locked itself;
//! - `s.snap.corrupt-<ms>`, `s.log.corrupt-<ms>`: damaged data kept aside, never deleted by
//!   Chorus.
//!
//! and, for the logs under [`FsyncPolicy::Always`](crate::FsyncPolicy::Always):
//! - `wal-<hex>.wal`: a process's write-ahead log, locked by it while it exists; one left
//!   unlocked is replayed by the next [`FsLog::open`];
//! - `.wal-recovery.lock`: an empty file whose `flock` serialises that replay.
//!
//! # Several nodes on one directory
//! Saving is the compare-and-swap (`cas` module) every shared backend runs: read the
//! stored snapshot, merge the new one into it ([`merge`](crate::merge)), then, under the lock,
//! rename the result into place only if the file is still byte for byte what was read (and
//! start over if not). A node whose room state is older than the file therefore adds its edits
//! instead of erasing the other node's, and the merge runs outside the lock. The lock is
//! advisory `flock`: it holds between processes on one machine (or pods sharing a local volume)
//! but not on every network file system; use the Redis or S3 store there.
mod durable;
mod files;
mod lock;
mod log;
mod stats;
mod store;
mod wal;

use std::fs::{self, File};
use std::io::Read;
use std::path::Path;

use chorus_protocol::DocName;

use crate::StoreError;
use crate::naming::{self, Stem};

pub use log::FsLog;
pub use stats::FsLogStats;
pub use store::FsStore;

use durable::TEMP_PREFIX;

/// Creates `dir` if needed and checks, at startup rather than at the first write, that it is
/// writable.
fn prepare_dir(dir: &Path) -> Result<(), StoreError> {
    fs::create_dir_all(dir).map_err(StoreError::io("creating data directory", dir))?;
    let probe = dir.join(format!("{TEMP_PREFIX}probe-{}", std::process::id()));
    File::create(&probe)
        .and_then(|_| fs::remove_file(&probe))
        .map_err(StoreError::io("writing to data directory", dir))
}

/// Documents with a file ending in `suffix` in `dir`, in name order. Hashed stems are resolved
/// through `name_of`, which reads the name stored in the file.
fn list_dir(
    dir: &Path,
    suffix: &str,
    name_of: impl Fn(&Path) -> Result<String, String>,
) -> Result<Vec<DocName>, StoreError> {
    let mut names = Vec::new();
    let entries = fs::read_dir(dir).map_err(StoreError::io("listing documents", dir))?;
    for entry in entries {
        let entry = entry.map_err(StoreError::io("listing documents", dir))?;
        let file_name = entry.file_name();
        let Some(stem) = file_name.to_str().and_then(|n| n.strip_suffix(suffix)) else {
            continue;
        };
        let name = match naming::parse_stem(stem) {
            Stem::Name(name) => name,
            Stem::Foreign => continue,
            Stem::Hashed => match name_of(&entry.path()).map(DocName::parse) {
                Ok(Ok(name)) => name,
                Ok(Err(e)) => {
                    tracing::warn!(file = %entry.path().display(), reason = %e, "skipping unreadable file");
                    continue;
                }
                Err(reason) => {
                    tracing::warn!(file = %entry.path().display(), %reason, "skipping unreadable file");
                    continue;
                }
            },
        };
        names.push(name);
    }
    names.sort();
    names.dedup();
    Ok(names)
}

/// Reads the document name from the header at the start of `path`.
fn read_name(
    path: &Path,
    header_len: fn(usize) -> usize,
    decode: fn(&[u8]) -> Result<String, String>,
) -> Result<String, String> {
    let mut header = vec![0; header_len(chorus_protocol::doc_name::MAX_DOC_NAME_BYTES)];
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
    decode(&header[..filled])
}

//! Blocking file operations that survive a crash or power cut at any point.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::UNIX_EPOCH;

use crate::naming;

/// Prefix of temporary files; never a stem, since stems are percent-encoded and `.` is encoded.
pub const TEMP_PREFIX: &str = ".tmp-";

/// Unique temporary file names within one process; the pid separates processes.
static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// A fresh temporary path in `dir`.
pub fn temp_path(dir: &Path) -> PathBuf {
    dir.join(format!(
        "{TEMP_PREFIX}{}-{}",
        std::process::id(),
        TEMP_COUNTER.fetch_add(1, Ordering::Relaxed)
    ))
}

/// Replaces `path` with `contents`: written to a temporary file in the same directory, fsynced,
/// renamed over `path`, then the directory is fsynced so the rename itself survives a power cut.
/// A reader sees the old file or the new one, never a mix.
pub fn write_atomically(dir: &Path, path: &Path, contents: &[u8]) -> io::Result<()> {
    let temp = temp_path(dir);
    let result = (|| {
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&temp)?;
        file.write_all(contents)?;
        file.sync_all()?;
        fs::rename(&temp, path)?;
        sync_dir(dir)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&temp);
    }
    result
}

/// Makes renames, creations and removals in `dir` durable.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Keeps damaged data as evidence without ever overwriting anything: `path` is hard-linked to
/// `<path>.corrupt-<unix ms>` (linking fails rather than replace an existing file). `path`
/// itself stays; the caller replaces it atomically next. Returns where the copy is.
pub fn link_aside(path: &Path) -> io::Result<PathBuf> {
    let millis = naming::unix_millis();
    let original = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    for attempt in 0..1000 {
        let keep = path.with_file_name(naming::corrupt_name(&original, millis, attempt));
        match fs::hard_link(path, &keep) {
            Ok(()) => return Ok(keep),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
    Err(io::Error::new(
        io::ErrorKind::AlreadyExists,
        "every name for keeping the damaged file aside is taken",
    ))
}

/// Identity of an open file or a path: two handles refer to the same file when these match.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FileId {
    dev: u64,
    ino: u64,
}

impl FileId {
    /// The identity behind `meta`.
    #[cfg(unix)]
    pub fn of(meta: &fs::Metadata) -> Self {
        use std::os::unix::fs::MetadataExt;
        Self {
            dev: meta.dev(),
            ino: meta.ino(),
        }
    }

    /// The identity behind `meta`. Without inode numbers every file looks the same, which only
    /// costs a rescan of the log after another process replaced it.
    #[cfg(not(unix))]
    pub fn of(_meta: &fs::Metadata) -> Self {
        Self { dev: 0, ino: 0 }
    }
}

/// Which incarnation of a document's log file a record went to; see the `wal` module docs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Incarnation {
    pub(crate) ino: u64,
    pub(crate) birth_ns: u64,
}

impl Incarnation {
    /// The incarnation behind `meta`. The birth time tells apart a new file that reuses a
    /// deleted file's inode number; where the file system has none, the inode alone decides.
    pub(crate) fn of(meta: &fs::Metadata) -> Self {
        #[cfg(unix)]
        let ino = std::os::unix::fs::MetadataExt::ino(meta);
        #[cfg(not(unix))]
        let ino = 0;
        let birth_ns = meta
            .created()
            .ok()
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
        Self { ino, birth_ns }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeping_aside_never_overwrites_earlier_evidence() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("doc.snap");
        let mut kept = Vec::new();
        for round in 0..3 {
            fs::write(&path, format!("damaged {round}")).expect("write");
            kept.push(link_aside(&path).expect("keep aside"));
            fs::remove_file(&path).expect("replace");
        }
        for (round, keep) in kept.iter().enumerate() {
            assert_eq!(
                fs::read_to_string(keep).expect("kept"),
                format!("damaged {round}")
            );
        }
    }
}

//! Exclusive advisory locks (`flock(2)` through `fs4`) that coordinate every process, and every
//! store instance within one process, that shares a data directory.
//!
//! A lock is taken on a file that may be replaced (an update log rewritten by truncation) or
//! removed (a deleted document) by whoever holds it. Whoever was waiting then wakes up holding a
//! lock on a file nobody else will ever lock again, so [`FileLock::acquire`] checks, once it
//! holds the lock, that the path still names the file it locked, and starts over if not.
//!
//! `flock` locks belong to the open file description, so two handles opened separately conflict
//! even inside one process: two `FsStore`s on one directory exclude each other like two nodes.
//! (They are advisory and may not work on network file systems; see the `fs` module docs.)

use std::fs::{self, File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};

use super::crash_safe::FileId;

/// An exclusive lock on one file, released when dropped.
#[derive(Debug)]
pub struct FileLock {
    file: File,
    path: PathBuf,
}

impl FileLock {
    /// Blocks until this handle holds the lock on `path`, creating the file if needed.
    ///
    /// # Errors
    /// Whatever opening, locking or inspecting the file reports.
    pub fn acquire(path: &Path) -> io::Result<Self> {
        // With `create` the loop only ends holding a lock or with an error.
        Self::lock(path, true)?.ok_or_else(|| io::ErrorKind::NotFound.into())
    }

    /// Like [`FileLock::acquire`] for a file that must already exist: `None` if it does not.
    ///
    /// # Errors
    /// Whatever opening, locking or inspecting the file reports.
    pub fn acquire_existing(path: &Path) -> io::Result<Option<Self>> {
        Self::lock(path, false)
    }

    fn lock(path: &Path, create: bool) -> io::Result<Option<Self>> {
        loop {
            let file = match OpenOptions::new()
                .read(true)
                .write(true)
                .create(create)
                .truncate(false)
                .open(path)
            {
                Ok(file) => file,
                Err(e) if e.kind() == io::ErrorKind::NotFound && !create => return Ok(None),
                Err(e) => return Err(e),
            };
            // Called through the trait: `File::lock` (std 1.89) is newer than our MSRV.
            fs4::FileExt::lock(&file)?;
            let locked = FileId::of(&file.metadata()?);
            match fs::metadata(path) {
                Ok(meta) if FileId::of(&meta) == locked => {
                    return Ok(Some(Self {
                        file,
                        path: path.to_owned(),
                    }));
                }
                // Replaced or removed while we waited: that lock guards nothing.
                Ok(_) => continue,
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    if create {
                        continue;
                    }
                    return Ok(None);
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// The locked file.
    pub fn file(&self) -> &File {
        &self.file
    }

    /// Removes the file while still holding its lock, so that waiters notice and start over.
    ///
    /// # Errors
    /// Whatever removing the file reports.
    pub fn remove(self) -> io::Result<()> {
        match fs::remove_file(&self.path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn excludes_other_handles_in_the_same_process() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("doc.lock");
        let held = FileLock::acquire(&path).expect("lock");
        let other = File::open(&path).expect("open");
        assert!(
            fs4::FileExt::try_lock(&other).is_err(),
            "a second handle cannot take the lock"
        );
        drop(held);
        assert!(fs4::FileExt::try_lock(&other).is_ok(), "free once dropped");
    }

    #[test]
    fn a_waiter_on_a_removed_file_starts_over() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("doc.lock");
        let held = FileLock::acquire(&path).expect("lock");
        let waiter = {
            let path = path.clone();
            std::thread::spawn(move || FileLock::acquire_existing(&path).expect("lock").is_none())
        };
        held.remove().expect("remove");
        assert!(waiter.join().expect("waiter"), "the file is gone");
        assert!(
            FileLock::acquire_existing(&path).expect("lock").is_none(),
            "no lock on a missing file without create"
        );
    }
}

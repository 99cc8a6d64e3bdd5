//! [`Epoch`]: the WAL file being written, from its creation to its retirement.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use bytes::BytesMut;

use super::format::{WAL_HEADER_NAME, WAL_PREFIX, WAL_SUFFIX};
use crate::fs::crash_safe;
use crate::log_record::put_file_header;

/// The WAL being written and what its checkpoint will have to fsync.
pub(crate) struct Epoch {
    pub(crate) path: PathBuf,
    /// Holds the WAL's `flock` for as long as the file exists.
    pub(crate) file: File,
    pub(crate) len: u64,
    pub(crate) opened: Instant,
    pub(crate) entries: u64,
}

impl Epoch {
    /// Creates, locks and names a new WAL; see the module docs.
    pub(crate) fn create(dir: &Path) -> io::Result<Self> {
        let temp = crash_safe::temp_path(dir);
        let created = (|| {
            let mut file = OpenOptions::new()
                .read(true)
                .write(true)
                .create_new(true)
                .open(&temp)?;
            // Nobody else knows this file yet: taking its lock cannot fail for contention.
            fs4::FileExt::try_lock(&file).map_err(io::Error::from)?;
            let mut header = BytesMut::new();
            put_file_header(&mut header, WAL_HEADER_NAME);
            file.write_all(&header)?;
            let path = loop {
                let path = dir.join(format!(
                    "{WAL_PREFIX}{:016x}{WAL_SUFFIX}",
                    fastrand::u64(..)
                ));
                if !fs::exists(&path)? {
                    break path;
                }
            };
            fs::rename(&temp, &path)?;
            // The WAL's name must survive a power cut before anything in it is acknowledged.
            crash_safe::sync_dir(dir)?;
            Ok(Self {
                path,
                file,
                len: header.len() as u64,
                opened: Instant::now(),
                entries: 0,
            })
        })();
        if created.is_err() {
            let _ = fs::remove_file(&temp);
        }
        created
    }
}

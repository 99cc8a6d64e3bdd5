//! The data directory itself: preparing it, and listing the documents that have a file in it.

use std::fs::{self, File};
use std::io::Read;
use std::path::Path;

use chorus_protocol::DocName;

use super::crash_safe::TEMP_PREFIX;
use crate::naming::{self, Stem};
use crate::{FormatError, StoreError};

/// Creates `dir` if needed and checks, at startup rather than at the first write, that it is
/// writable.
pub(crate) fn prepare_dir(dir: &Path) -> Result<(), StoreError> {
    fs::create_dir_all(dir).map_err(StoreError::io("creating data directory", dir))?;
    let probe = dir.join(format!("{TEMP_PREFIX}probe-{}", std::process::id()));
    File::create(&probe)
        .and_then(|_| fs::remove_file(&probe))
        .map_err(StoreError::io("writing to data directory", dir))
}

/// Documents with a file ending in `suffix` in `dir`, in name order. Hashed stems are resolved
/// through `name_of`, which reads the name stored in the file.
pub(crate) fn list_dir(
    dir: &Path,
    suffix: &str,
    name_of: impl Fn(&Path) -> Result<DocName, StoreError>,
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
            Stem::Hashed => match name_of(&entry.path()) {
                Ok(name) => name,
                Err(error) => {
                    tracing::warn!(file = %entry.path().display(), %error, "skipping unreadable file");
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
///
/// # Errors
/// [`StoreError::Io`] if the file cannot be read, [`StoreError::Corrupt`] if its header does
/// not decode or holds no valid document name.
pub(crate) fn read_name(
    path: &Path,
    header_len: fn(usize) -> usize,
    decode: fn(&[u8]) -> Result<String, FormatError>,
) -> Result<DocName, StoreError> {
    let mut header = vec![0; header_len(chorus_protocol::doc_name::MAX_DOC_NAME_BYTES)];
    let reading = StoreError::io("reading document name", path);
    let mut file = File::open(path).map_err(reading)?;
    let mut filled = 0;
    while filled < header.len() {
        match file
            .read(&mut header[filled..])
            .map_err(StoreError::io("reading document name", path))?
        {
            0 => break,
            n => filled += n,
        }
    }
    let corrupt = |reason: String| StoreError::Corrupt {
        location: path.display().to_string(),
        reason,
    };
    let name = decode(&header[..filled]).map_err(|e| corrupt(e.to_string()))?;
    DocName::parse(name).map_err(|e| corrupt(e.to_string()))
}

//! The data directory itself: preparing it, and listing the documents that have a file in it.

use std::fs::{self, File};
use std::io::Read;
use std::path::Path;

use chorus_protocol::DocName;

use super::durable::TEMP_PREFIX;
use crate::StoreError;
use crate::naming::{self, Stem};

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
pub(crate) fn read_name(
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

//! What a WAL file holds (see the [module docs](super)): names, and the entries written for
//! every appended record.

use std::fs;
use std::time::UNIX_EPOCH;

use bytes::{Buf, BufMut, Bytes, BytesMut};

/// Start of every WAL file name.
pub(crate) const WAL_PREFIX: &str = "wal-";
/// End of every WAL file name; never `.log`, so listing documents does not see WALs.
pub(crate) const WAL_SUFFIX: &str = ".wal";
/// Name in the WAL's file header, so that no tool mistakes it for a document's log.
pub(crate) const WAL_HEADER_NAME: &str = "chorus write-ahead log";

/// Entry kind: an appended record.
pub(crate) const ENTRY_APPEND: u8 = 1;
/// Bytes an entry adds before its name and update: kind, inode, birth, seq, name length.
pub(crate) const ENTRY_HEADER: usize = 1 + 8 + 8 + 8 + 2;

/// Which incarnation of a document's log file a record went to; see the module docs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Incarnation {
    ino: u64,
    birth_ns: u64,
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

/// Records just written (not fsynced) to a document's log, handed to the WAL.
#[derive(Debug)]
pub(crate) struct Submission {
    /// The document's name.
    pub(crate) doc: String,
    /// The log file they were written to.
    pub(crate) file: Incarnation,
    /// The records, with their sequence numbers.
    pub(crate) records: Vec<(u64, Bytes)>,
}

/// Appends one WAL entry (the payload of one WAL record).
pub(crate) fn put_entry(out: &mut BytesMut, doc: &str, file: Incarnation, seq: u64, update: &[u8]) {
    out.put_u8(ENTRY_APPEND);
    out.put_u64_le(file.ino);
    out.put_u64_le(file.birth_ns);
    out.put_u64_le(seq);
    // Document names are at most 512 bytes (`DocName`).
    out.put_u16_le(doc.len() as u16);
    out.put_slice(doc.as_bytes());
    out.put_slice(update);
}

/// One record read back from a dead WAL.
#[derive(Debug)]
pub(crate) struct Entry {
    pub(crate) doc: String,
    pub(crate) file: Incarnation,
    pub(crate) seq: u64,
    pub(crate) update: Bytes,
}

pub(crate) fn parse_entry(mut payload: Bytes) -> Option<Entry> {
    if payload.len() < ENTRY_HEADER || payload.get_u8() != ENTRY_APPEND {
        return None;
    }
    let file = Incarnation {
        ino: payload.get_u64_le(),
        birth_ns: payload.get_u64_le(),
    };
    let seq = payload.get_u64_le();
    let name_len = usize::from(payload.get_u16_le());
    if payload.len() < name_len {
        return None;
    }
    let name = payload.split_to(name_len);
    let doc = String::from_utf8(name.to_vec()).ok()?;
    Some(Entry {
        doc,
        file,
        seq,
        update: payload,
    })
}

/// Whether `name` is a WAL file's name (tests count them).
#[cfg(test)]
pub(crate) fn is_wal_name(name: &str) -> bool {
    name.starts_with(WAL_PREFIX) && name.ends_with(WAL_SUFFIX)
}

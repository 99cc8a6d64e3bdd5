//! What a WAL file holds (see the [module docs](super)): names, and the entries written for
//! every appended record.

use bytes::{Buf, BufMut, Bytes, BytesMut};

pub(crate) use crate::fs::crash_safe::Incarnation;
pub(crate) use crate::fs::deferred::Submission;

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

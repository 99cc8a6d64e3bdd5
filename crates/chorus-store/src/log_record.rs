//! The on-disk format of update logs and the scanner that recovers them after a crash. Sans-IO.
//!
//! ```text
//! file    := header • record*
//! header  := "CHORUSL1" • u32 LE name length • name (UTF-8) • u32 LE CRC-32 of the header so far
//! record  := "CHL1" • u64 LE seq • u32 LE payload length • u32 LE CRC-32 of the 16 bytes before it
//!            • payload • u32 LE CRC-32 of (header CRC • payload)
//! ```
//!
//! The header names the document, so a directory of logs can be listed even when file names are
//! hashes. Each record carries two checksums: the header one lets the scanner trust the length
//! (and so skip exactly one damaged payload), the payload one binds the payload to its header.
//! Sequence numbers increase strictly through the file.
//!
//! A record with an empty payload is a *marker*: it only carries a sequence number, so that
//! numbering resumes above it after truncation has dropped every real record. A Yjs update is
//! never empty, so no update is mistaken for a marker.
//!
//! [`scan`] reads a file front to back. Where a record does not check out it looks for the next
//! record that does (by its magic and both checksums): damage *followed* by a valid record is
//! corruption in the middle; damage that runs to the end of the file is a torn tail, the normal
//! result of a crash in the middle of an append.

use std::ops::Range;

use bytes::{BufMut, Bytes, BytesMut};

use crate::FormatError;

/// Identifies a log file and its format version.
pub const FILE_MAGIC: &[u8; 8] = b"CHORUSL1";
/// Starts every record; the scanner resynchronises on it.
pub const RECORD_MAGIC: &[u8; 4] = b"CHL1";
/// Bytes of a record header: magic, seq, length, header checksum.
pub const RECORD_HEADER: usize = 4 + 8 + 4 + 4;
/// Bytes a record adds to its payload.
pub const RECORD_OVERHEAD: usize = RECORD_HEADER + 4;
/// Longest payload one record can hold.
pub const MAX_PAYLOAD: usize = u32::MAX as usize;

/// Appends the file header for the document `name`.
pub fn put_file_header(out: &mut BytesMut, name: &str) {
    let start = out.len();
    out.put_slice(FILE_MAGIC);
    // Document names are at most 512 bytes (`DocName`), far below u32::MAX.
    out.put_u32_le(name.len() as u32);
    out.put_slice(name.as_bytes());
    let crc = crc32fast::hash(&out[start..]);
    out.put_u32_le(crc);
}

/// Length of the file header for a name of `name_len` bytes.
pub fn file_header_len(name_len: usize) -> usize {
    FILE_MAGIC.len() + 4 + name_len + 4
}

/// Appends one record.
///
/// # Panics
/// If `payload` is longer than [`MAX_PAYLOAD`]; callers check first.
pub fn put_record(out: &mut BytesMut, seq: u64, payload: &[u8]) {
    assert!(payload.len() <= MAX_PAYLOAD, "record payload too long");
    let start = out.len();
    out.put_slice(RECORD_MAGIC);
    out.put_u64_le(seq);
    out.put_u32_le(payload.len() as u32);
    let header_crc = crc32fast::hash(&out[start..]);
    out.put_u32_le(header_crc);
    out.put_slice(payload);
    out.put_u32_le(payload_crc(header_crc, payload));
}

fn payload_crc(header_crc: u32, payload: &[u8]) -> u32 {
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&header_crc.to_le_bytes());
    hasher.update(payload);
    hasher.finalize()
}

/// Reads the document name from the start of a log file.
///
/// # Errors
/// What is wrong when `file` does not start with a valid header.
pub fn read_file_header(file: &[u8]) -> Result<(String, usize), FormatError> {
    let truncated = FormatError::Truncated("header");
    let rest = file
        .strip_prefix(FILE_MAGIC.as_slice())
        .ok_or(FormatError::BadMagic("update log"))?;
    let len = rest
        .get(..4)
        .and_then(|b| <[u8; 4]>::try_from(b).ok())
        .map(u32::from_le_bytes)
        .ok_or(truncated.clone())? as usize;
    let end = file_header_len(len);
    let header = file.get(..end).ok_or(truncated.clone())?;
    let (body, crc) = header.split_at(end - 4);
    let stored = u32::from_le_bytes(crc.try_into().map_err(|_| truncated)?);
    if crc32fast::hash(body) != stored {
        return Err(FormatError::Checksum("header"));
    }
    let name = &body[FILE_MAGIC.len() + 4..];
    let name = String::from_utf8(name.to_vec()).map_err(|_| FormatError::NameNotUtf8)?;
    Ok((name, end))
}

/// One valid record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Its sequence number.
    pub seq: u64,
    /// The update; empty for a marker.
    pub payload: Bytes,
}

impl Record {
    /// Whether this is a marker (a sequence number without an update).
    pub fn is_marker(&self) -> bool {
        self.payload.is_empty()
    }
}

/// What [`scan`] found in a file.
#[derive(Debug, Default)]
pub struct Scan {
    /// The document named by the header, if the header is intact.
    pub name: Option<String>,
    /// Every valid record, in file order (strictly increasing `seq`).
    pub records: Vec<Record>,
    /// End of the header or of the last valid record: where the next append goes.
    pub valid_end: usize,
    /// Damaged byte ranges that a valid record follows (the header counts, if it is damaged).
    pub damaged: Vec<Range<usize>>,
    /// Bytes after the last valid record that do not form a record: a torn append.
    pub torn_tail: Option<Range<usize>>,
}

impl Scan {
    /// The highest sequence number in the file, markers included; 0 if none.
    pub fn high_water(&self) -> u64 {
        self.records.last().map_or(0, |r| r.seq)
    }

    /// Whether the file needs a clean rewrite: damage before valid data cannot be cut off.
    pub fn is_damaged(&self) -> bool {
        !self.damaged.is_empty()
    }

    /// Total damaged bytes in the middle of the file.
    pub fn damaged_bytes(&self) -> usize {
        self.damaged.iter().map(ExactSizeIterator::len).sum()
    }
}

/// Scans a whole log file. Never fails: whatever does not check out is reported in the result.
pub fn scan(file: &Bytes) -> Scan {
    let mut scan = Scan::default();
    let mut pos = match read_file_header(file) {
        Ok((name, end)) => {
            scan.name = Some(name);
            end
        }
        Err(_) => 0,
    };
    scan.valid_end = pos;
    let mut last_seq = 0;
    if pos == 0 && !file.is_empty() {
        // No usable header: everything up to the first valid record is damage (an empty range
        // if the file starts with a record, which still means the header is missing).
        match resync(file, 0, last_seq) {
            Some(next) => {
                scan.damaged.push(0..next);
                pos = next;
            }
            None => {
                // No record anywhere either: the file was torn while it was being created.
                scan.torn_tail = Some(0..file.len());
                return scan;
            }
        }
    }
    while pos < file.len() {
        match parse_at(file, pos) {
            Some((record, end)) if record.seq > last_seq => {
                last_seq = record.seq;
                scan.records.push(record);
                pos = end;
                scan.valid_end = end;
            }
            _ => match resync(file, pos + 1, last_seq) {
                Some(next) => {
                    scan.damaged.push(pos..next);
                    pos = next;
                }
                None => {
                    scan.torn_tail = Some(pos..file.len());
                    break;
                }
            },
        }
    }
    scan
}

/// The record at `pos` and where it ends, if one starts there and both checksums hold.
fn parse_at(file: &Bytes, pos: usize) -> Option<(Record, usize)> {
    let header = file.get(pos..pos.checked_add(RECORD_HEADER)?)?;
    if &header[..4] != RECORD_MAGIC {
        return None;
    }
    let stored_header_crc = u32::from_le_bytes(header[16..20].try_into().ok()?);
    if crc32fast::hash(&header[..16]) != stored_header_crc {
        return None;
    }
    let seq = u64::from_le_bytes(header[4..12].try_into().ok()?);
    let len = u32::from_le_bytes(header[12..16].try_into().ok()?) as usize;
    let payload_start = pos + RECORD_HEADER;
    let payload_end = payload_start.checked_add(len)?;
    let end = payload_end.checked_add(4)?;
    let stored_payload_crc = u32::from_le_bytes(file.get(payload_end..end)?.try_into().ok()?);
    let payload = file.slice(payload_start..payload_end);
    if payload_crc(stored_header_crc, &payload) != stored_payload_crc {
        return None;
    }
    Some((Record { seq, payload }, end))
}

/// The first offset at or after `from` where a valid record with a sequence number above
/// `last_seq` starts.
fn resync(file: &Bytes, from: usize, last_seq: u64) -> Option<usize> {
    let mut at = from;
    while let Some(offset) = file
        .get(at..)?
        .windows(RECORD_MAGIC.len())
        .position(|w| w == RECORD_MAGIC)
    {
        let candidate = at + offset;
        if matches!(parse_at(file, candidate), Some((record, _)) if record.seq > last_seq) {
            return Some(candidate);
        }
        at = candidate + 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file_with(records: &[(u64, &[u8])]) -> Bytes {
        let mut out = BytesMut::new();
        put_file_header(&mut out, "doc");
        for (seq, payload) in records {
            put_record(&mut out, *seq, payload);
        }
        out.freeze()
    }

    fn seqs(scan: &Scan) -> Vec<u64> {
        scan.records.iter().map(|r| r.seq).collect()
    }

    #[test]
    fn reads_back_what_was_written() {
        let file = file_with(&[(1, b"one"), (2, b""), (5, b"five")]);
        let scan = scan(&file);
        assert_eq!(scan.name.as_deref(), Some("doc"));
        assert_eq!(seqs(&scan), [1, 2, 5]);
        assert!(scan.records[1].is_marker());
        assert_eq!(scan.records[2].payload, Bytes::from_static(b"five"));
        assert_eq!(scan.valid_end, file.len());
        assert!(!scan.is_damaged() && scan.torn_tail.is_none());
        assert_eq!(scan.high_water(), 5);
    }

    #[test]
    fn every_truncation_of_the_last_record_is_a_torn_tail() {
        let whole = file_with(&[(1, b"one"), (2, b"two")]);
        let first_end = file_with(&[(1, b"one")]).len();
        for len in first_end..whole.len() {
            let scan = scan(&whole.slice(..len));
            assert_eq!(seqs(&scan), [1], "truncated to {len}");
            assert!(!scan.is_damaged(), "truncated to {len}");
            assert_eq!(scan.valid_end, first_end);
            assert_eq!(
                scan.torn_tail,
                (len > first_end).then_some(first_end..len),
                "truncated to {len}"
            );
        }
    }

    #[test]
    fn a_flipped_byte_in_a_middle_record_skips_only_that_record() {
        let whole = file_with(&[(1, b"one"), (2, b"two"), (3, b"three")]);
        let start = file_with(&[(1, b"one")]).len();
        let end = file_with(&[(1, b"one"), (2, b"two")]).len();
        for i in start..end {
            let mut damaged = whole.to_vec();
            damaged[i] ^= 0x40;
            let scan = scan(&Bytes::from(damaged));
            assert_eq!(seqs(&scan), [1, 3], "flipped byte {i}");
            assert_eq!(scan.damaged, vec![start..end], "flipped byte {i}");
            assert!(scan.torn_tail.is_none());
        }
    }

    #[test]
    fn a_damaged_header_still_yields_the_records() {
        let mut damaged = file_with(&[(1, b"one"), (2, b"two")]).to_vec();
        damaged[2] ^= 1;
        let scan = scan(&Bytes::from(damaged));
        assert_eq!(scan.name, None);
        assert_eq!(seqs(&scan), [1, 2]);
        assert_eq!(scan.damaged, vec![0..file_header_len(3)]);
    }

    #[test]
    fn a_torn_header_is_a_torn_tail() {
        let header = file_with(&[]);
        for len in 1..header.len() {
            let scan = scan(&header.slice(..len));
            assert!(scan.records.is_empty());
            assert_eq!(scan.torn_tail, Some(0..len));
            assert_eq!(scan.valid_end, 0);
        }
        assert!(scan(&Bytes::new()).torn_tail.is_none());
    }

    #[test]
    fn out_of_order_sequence_numbers_count_as_damage() {
        let file = file_with(&[(1, b"a"), (3, b"b"), (2, b"c"), (4, b"d")]);
        let scan = scan(&file);
        assert_eq!(seqs(&scan), [1, 3, 4]);
        assert_eq!(scan.damaged.len(), 1);
    }

    #[test]
    fn zeroes_after_a_crash_are_a_torn_tail() {
        let mut file = file_with(&[(1, b"one")]).to_vec();
        let end = file.len();
        file.extend_from_slice(&[0; 4096]);
        let scan = scan(&Bytes::from(file));
        assert_eq!(seqs(&scan), [1]);
        assert_eq!(scan.torn_tail, Some(end..end + 4096));
    }
}

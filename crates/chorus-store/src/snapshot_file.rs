//! The on-disk snapshot format of [`FsStore`](crate::FsStore):
//!
//! ```text
//! magic "CHORUSS1" • u32 LE name length • name (UTF-8) • u64 LE payload length • payload
//! • u32 LE CRC-32 of everything before it
//! ```
//!
//! The name is stored so that a directory can be listed even when file names are hashes, and the
//! checksum catches torn or bit-rotted files instead of handing garbage to yrs.

use bytes::{Bytes, BytesMut};
use chorus_protocol::DocName;

use crate::{FormatError, StoreError};

/// Identifies the format and its version.
pub const MAGIC: &[u8; 8] = b"CHORUSS1";

const HEADER_FIXED: usize = MAGIC.len() + 4;
const CRC_BYTES: usize = 4;

/// Encodes a snapshot of the document `name`.
pub fn encode(name: &str, payload: &[u8]) -> Bytes {
    let mut out =
        BytesMut::with_capacity(HEADER_FIXED + name.len() + 8 + payload.len() + CRC_BYTES);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&(name.len() as u32).to_le_bytes());
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(&(payload.len() as u64).to_le_bytes());
    out.extend_from_slice(payload);
    let crc = crc32fast::hash(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    out.freeze()
}

/// Reads only the document name from the start of a file.
///
/// # Errors
/// What is wrong when the header is not a Chorus snapshot header.
pub fn decode_name(header: &[u8]) -> Result<String, FormatError> {
    let rest = header
        .strip_prefix(MAGIC.as_slice())
        .ok_or(FormatError::BadMagic("snapshot"))?;
    let (len, rest) = split_u32(rest).ok_or(FormatError::Truncated("header"))?;
    let name = rest
        .get(..len as usize)
        .ok_or(FormatError::Truncated("name"))?;
    String::from_utf8(name.to_vec()).map_err(|_| FormatError::NameNotUtf8)
}

/// Length of the prefix [`decode_name`] needs for a name of `name_len` bytes.
pub fn header_len(name_len: usize) -> usize {
    HEADER_FIXED + name_len
}

/// Decodes a whole file into the document name and the payload (a zero-copy slice).
///
/// # Errors
/// What is wrong: bad magic, truncation, a length mismatch or a bad checksum.
pub fn decode(file: &Bytes) -> Result<(String, Bytes), FormatError> {
    let body_len = file
        .len()
        .checked_sub(CRC_BYTES)
        .ok_or(FormatError::Truncated("snapshot: shorter than a checksum"))?;
    let (body, crc) = file.split_at(body_len);
    let stored_crc = u32::from_le_bytes(
        crc.try_into()
            .map_err(|_| FormatError::Truncated("checksum"))?,
    );
    if crc32fast::hash(body) != stored_crc {
        return Err(FormatError::Checksum("snapshot"));
    }
    let name = decode_name(body)?;
    let rest = &body[header_len(name.len())..];
    let truncated_length = FormatError::Truncated("payload length");
    let (len_bytes, payload) = rest.split_at_checked(8).ok_or(truncated_length.clone())?;
    let len = u64::from_le_bytes(len_bytes.try_into().map_err(|_| truncated_length)?);
    if len != payload.len() as u64 {
        return Err(FormatError::Length {
            declared: len,
            present: payload.len(),
        });
    }
    Ok((name, file.slice_ref(payload)))
}

/// Decodes the stored snapshot of `doc` found at `location` (a path or key, for the error).
///
/// # Errors
/// [`StoreError::Corrupt`] naming `location` if the bytes are damaged or belong to another
/// document.
pub fn decode_for(doc: &DocName, location: &str, file: &Bytes) -> Result<Bytes, StoreError> {
    let corrupt = |reason: String| StoreError::Corrupt {
        location: location.to_owned(),
        reason,
    };
    let (name, payload) = decode(file).map_err(|e| corrupt(e.to_string()))?;
    if name != doc.as_str() {
        return Err(corrupt(format!(
            "it belongs to another document ({name:?})"
        )));
    }
    Ok(payload)
}

fn split_u32(bytes: &[u8]) -> Option<(u32, &[u8])> {
    let (head, rest) = bytes.split_at_checked(4)?;
    Some((u32::from_le_bytes(head.try_into().ok()?), rest))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        let file = encode("team/doc", b"\x00\x00");
        assert_eq!(
            decode(&file),
            Ok(("team/doc".to_owned(), Bytes::from_static(b"\x00\x00")))
        );
        assert_eq!(decode_name(&file), Ok("team/doc".to_owned()));
    }

    #[test]
    fn every_truncation_and_bit_flip_is_detected() {
        let file = encode("doc", b"some update bytes");
        for len in 0..file.len() {
            assert!(decode(&file.slice(..len)).is_err(), "truncated to {len}");
        }
        for i in 0..file.len() {
            let mut damaged = file.to_vec();
            damaged[i] ^= 0x10;
            assert!(decode(&Bytes::from(damaged)).is_err(), "flipped byte {i}");
        }
    }
}

//! The byte format of one stored version, the same in every backend:
//!
//! ```text
//! "CHVER1\n" • u32 LE meta length • meta (JSON) • u32 LE state-vector length • state vector
//!            • state • u32 LE CRC-32 of everything before it
//! ```
//!
//! The description comes first so a listing can stop reading after it; the checksum covers
//! everything, so a torn or damaged version is reported, never restored.

use bytes::Bytes;

use super::{Version, VersionMeta};
use crate::StoreError;

const MAGIC: &[u8] = b"CHVER1\n";

/// The bytes of `version`. Lengths are 32-bit: documents are far smaller than 4 GiB (the
/// server's message and document limits see to it).
pub fn encode_version(version: &Version) -> Vec<u8> {
    // Serialising plain strings and numbers cannot fail.
    let meta = serde_json::to_vec(&version.meta).unwrap_or_default();
    let mut out = Vec::with_capacity(
        MAGIC.len() + 12 + meta.len() + version.state.len() + version.state_vector.len(),
    );
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&len32(meta.len()).to_le_bytes());
    out.extend_from_slice(&meta);
    out.extend_from_slice(&len32(version.state_vector.len()).to_le_bytes());
    out.extend_from_slice(&version.state_vector);
    out.extend_from_slice(&version.state);
    let crc = crc32fast::hash(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

fn len32(len: usize) -> u32 {
    u32::try_from(len).unwrap_or(u32::MAX)
}

/// Reads a version written by [`encode_version`]; `location` names it in errors.
///
/// # Errors
/// [`StoreError::Corrupt`] when the bytes are not such a version or fail the checksum.
pub fn decode_version(bytes: &[u8], location: &str) -> Result<Version, StoreError> {
    let corrupt = |reason: &str| StoreError::Corrupt {
        location: location.to_owned(),
        reason: reason.to_owned(),
    };
    let (body, crc) = bytes
        .split_last_chunk::<4>()
        .ok_or_else(|| corrupt("truncated version"))?;
    if crc32fast::hash(body) != u32::from_le_bytes(*crc) {
        return Err(corrupt("version checksum mismatch"));
    }
    let (meta, rest) = read_meta(body).map_err(&corrupt)?;
    let (sv_len, rest) = take_u32(rest).ok_or_else(|| corrupt("truncated state vector"))?;
    if rest.len() < sv_len {
        return Err(corrupt("truncated state vector"));
    }
    let (sv, state) = rest.split_at(sv_len);
    Ok(Version {
        meta,
        state: Bytes::copy_from_slice(state),
        state_vector: Bytes::copy_from_slice(sv),
    })
}

/// The description at the start of a stored version, and what follows it. Does not check the
/// checksum (a listing reads only the start of each version).
///
/// # Errors
/// What is wrong with the start.
pub(crate) fn read_meta(bytes: &[u8]) -> Result<(VersionMeta, &[u8]), &'static str> {
    let rest = bytes
        .strip_prefix(MAGIC)
        .ok_or("not a Chorus version (bad magic)")?;
    let (len, rest) = take_u32(rest).ok_or("truncated description")?;
    if rest.len() < len {
        return Err("truncated description");
    }
    let (meta, rest) = rest.split_at(len);
    let meta = serde_json::from_slice(meta).map_err(|_| "unreadable description")?;
    Ok((meta, rest))
}

/// Bytes a listing reads from the start of a stored version to find its description length.
pub(crate) const HEADER_LEN: usize = MAGIC.len() + 4;

/// The description length declared in `header` (the first [`HEADER_LEN`] bytes).
pub(crate) fn meta_len(header: &[u8]) -> Option<usize> {
    take_u32(header.strip_prefix(MAGIC)?).map(|(len, _)| len)
}

fn take_u32(bytes: &[u8]) -> Option<(usize, &[u8])> {
    let (len, rest) = bytes.split_first_chunk::<4>()?;
    Some((usize::try_from(u32::from_le_bytes(*len)).ok()?, rest))
}

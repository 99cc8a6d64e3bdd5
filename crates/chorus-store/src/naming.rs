//! How a document name becomes a file name, object key or Redis key part, and the names given to
//! damaged data kept aside.
//!
//! Every backend uses the same *stem*: the name percent-encoded down to ASCII letters, digits,
//! `-` and `_`, so a stem can never be `..`, contain `/`, start with a dot or hold a glob or
//! Redis hash-tag character. A stem longer than [`MAX_ENCODED_NAME`] is replaced by `~` and the
//! SHA-256 of the name; backends then store the real name inside the data so listing still works.

use std::time::{SystemTime, UNIX_EPOCH};

use chorus_protocol::DocName;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};
use sha2::{Digest, Sha256};

/// Encoded names longer than this are replaced by a hash: most file systems cap a file name at
/// 255 bytes (the stem also gets a suffix), and a 512-byte document name can encode to three
/// times that.
pub const MAX_ENCODED_NAME: usize = 200;

/// First character of hashed stems; never produced by the encoding.
pub const HASHED_PREFIX: char = '~';

const STEM_SET: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'_');

/// The stem of `doc`, identical across backends.
pub fn stem(doc: &DocName) -> String {
    let name = doc.as_str();
    if name.len() <= MAX_ENCODED_NAME
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        // Nothing to encode (the common case, once per update-log append): skip the formatter.
        return name.to_owned();
    }
    let encoded = utf8_percent_encode(doc.as_str(), STEM_SET).to_string();
    if encoded.len() <= MAX_ENCODED_NAME {
        return encoded;
    }
    let digest = Sha256::digest(doc.as_str().as_bytes());
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("{HASHED_PREFIX}{hex}")
}

/// What a stem says about its document.
#[derive(Debug, PartialEq, Eq)]
pub enum Stem {
    /// The stem decodes to this name.
    Name(DocName),
    /// A hashed stem: the name must be read from the stored data.
    Hashed,
    /// Not a stem this crate writes (a stray file or key).
    Foreign,
}

/// Decodes a stem written by [`stem`].
pub fn parse_stem(stem: &str) -> Stem {
    if stem.starts_with(HASHED_PREFIX) {
        return Stem::Hashed;
    }
    if !stem
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'%')
    {
        return Stem::Foreign;
    }
    match percent_decode_str(stem).decode_utf8() {
        Ok(name) => DocName::parse(name.into_owned()).map_or(Stem::Foreign, Stem::Name),
        Err(_) => Stem::Foreign,
    }
}

/// Milliseconds since the Unix epoch, for names of data kept aside.
pub fn unix_millis() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis())
}

/// The name damaged data at `original` is kept under: `<original>.corrupt-<unix ms>`, with a
/// counter appended when that name is taken (two damaged copies in the same millisecond).
pub fn corrupt_name(original: &str, millis: u128, attempt: u32) -> String {
    if attempt == 0 {
        format!("{original}.corrupt-{millis}")
    } else {
        format!("{original}.corrupt-{millis}-{attempt}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(name: &str) -> DocName {
        DocName::parse(name).expect("valid test name")
    }

    #[test]
    fn stems_round_trip_and_stay_safe() {
        for name in ["a", "team/notes", "..", ".hidden", "x{y}*?[z]", "ü ü"] {
            let s = stem(&doc(name));
            assert!(
                s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'%'),
                "{s}"
            );
            assert_eq!(parse_stem(&s), Stem::Name(doc(name)));
        }
    }

    #[test]
    fn long_names_are_hashed() {
        let long = doc(&"ü/".repeat(150));
        let s = stem(&long);
        assert!(s.len() <= MAX_ENCODED_NAME);
        assert_eq!(parse_stem(&s), Stem::Hashed);
        assert_ne!(s, stem(&doc(&"ü/".repeat(149))));
    }

    #[test]
    fn strays_are_foreign() {
        assert_eq!(parse_stem("a.b"), Stem::Foreign);
        assert_eq!(parse_stem("%ff"), Stem::Foreign);
        assert_eq!(parse_stem(""), Stem::Foreign);
    }
}

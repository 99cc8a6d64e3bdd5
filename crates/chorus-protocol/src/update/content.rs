//! Item content: what follows an item's origins and parent, per content kind.
//!
//! Every reader consumes exactly what yrs' `ItemContent::decode` and Yjs' `read*Content`
//! consume. Kinds on which the two disagree are refused rather than guessed: JSON (2), which
//! yrs reads with one string more than its count, and the type refs only one side knows.
//! (XmlHook, type ref 5, is accepted: the vendored yrs reads its hook name as Yjs does, see
//! `vendor/yrs/CHORUS-PATCHES.md`.)

use crate::lib0::{Decoder, MAX_SAFE_INTEGER};

use super::error::UpdateError;
use super::{UpdateLimits, read_count, read_u32};

/// Info byte of a garbage-collected range.
pub(super) const GC: u8 = 0;
/// Info byte of a gap in a merged update.
pub(super) const SKIP: u8 = 10;
/// Info bit: a left origin follows.
pub(super) const HAS_ORIGIN: u8 = 0x80;
/// Info bit: a right origin follows.
pub(super) const HAS_RIGHT_ORIGIN: u8 = 0x40;
/// Info bit: a map key follows the parent (only read when there are no origins).
pub(super) const HAS_PARENT_SUB: u8 = 0x20;
/// Mask of the content kind in the info byte (Yjs `BITS5`).
const KIND_MASK: u8 = 0x1f;

/// Parent marker: the parent is the type created by the item with the following id.
pub(super) const PARENT_ID: u64 = 0;
/// Parent marker: the parent is the root type with the following name.
pub(super) const PARENT_ROOT: u64 = 1;

const DELETED: u8 = 1;
const JSON: u8 = 2;
const BINARY: u8 = 3;
const STRING: u8 = 4;
const EMBED: u8 = 5;
const FORMAT: u8 = 6;
const TYPE: u8 = 7;
const ANY: u8 = 8;
const DOC: u8 = 9;

const TYPE_ARRAY: u8 = 0;
const TYPE_MAP: u8 = 1;
const TYPE_TEXT: u8 = 2;
const TYPE_XML_ELEMENT: u8 = 3;
const TYPE_XML_FRAGMENT: u8 = 4;
const TYPE_XML_HOOK: u8 = 5;
const TYPE_XML_TEXT: u8 = 6;

/// Smallest encoded `Any`: a one-byte tag.
const MIN_ANY_BYTES: usize = 1;
/// Smallest `Any` map entry: an empty key and a one-byte value.
const MIN_ANY_ENTRY_BYTES: usize = 2;

/// Length and nature of one item's content.
pub(super) struct Content {
    /// Clock ticks the item occupies.
    pub(super) len: u32,
    /// The content is a shared type, so other items can have it as their parent.
    pub(super) is_type: bool,
}

/// The content kind of an item's info byte, if it is one we accept.
pub(super) fn item_kind(info: u8) -> Result<u8, UpdateError> {
    match info & KIND_MASK {
        JSON => Err(UpdateError::UnsupportedContent {
            kind: JSON,
            reason: "yrs 0.28.1 reads legacy JSON content with one more string than Yjs writes",
        }),
        kind @ (DELETED | BINARY..=DOC) => Ok(kind),
        // GC and Skip with flag bits set, or kinds no encoder writes.
        _ => Err(UpdateError::UnknownStructKind { info }),
    }
}

/// Reads the content of kind `kind` (from [`item_kind`]).
pub(super) fn read(
    decoder: &mut Decoder<'_>,
    kind: u8,
    limits: &UpdateLimits,
) -> Result<Content, UpdateError> {
    let one = || Content {
        len: 1,
        is_type: false,
    };
    match kind {
        DELETED => Ok(Content {
            len: read_u32(decoder, "deleted length")?,
            is_type: false,
        }),
        BINARY => {
            decoder.read_var_bytes()?;
            Ok(one())
        }
        STRING => {
            let text = decoder.read_var_string()?;
            // Yjs counts UTF-16 code units; the text came from the input, so it is far shorter
            // than 2^32 units, but say so rather than truncate.
            let len = u32::try_from(utf16_len(text)).map_err(|_| UpdateError::IntegerTooLarge {
                what: "string length",
            })?;
            Ok(Content {
                len,
                is_type: false,
            })
        }
        EMBED => {
            check_json_depth(decoder.read_var_string()?, limits.max_any_depth)?;
            Ok(one())
        }
        FORMAT => {
            decoder.read_var_string()?;
            check_json_depth(decoder.read_var_string()?, limits.max_any_depth)?;
            Ok(one())
        }
        TYPE => {
            read_type_ref(decoder)?;
            Ok(Content {
                len: 1,
                is_type: true,
            })
        }
        ANY => {
            let count = read_count(decoder, "Any values", MIN_ANY_BYTES)?;
            for _ in 0..count {
                skip_any(decoder, limits.max_any_depth)?;
            }
            Ok(Content {
                len: count,
                is_type: false,
            })
        }
        DOC => {
            decoder.read_var_string()?; // guid
            skip_any(decoder, limits.max_any_depth)?; // options
            Ok(one())
        }
        other => Err(UpdateError::UnknownStructKind { info: other }),
    }
}

fn read_type_ref(decoder: &mut Decoder<'_>) -> Result<(), UpdateError> {
    // yrs reads the ref as one byte, Yjs as a varUint: the same for the refs accepted here.
    match decoder.read_u8()? {
        TYPE_ARRAY | TYPE_MAP | TYPE_TEXT | TYPE_XML_FRAGMENT | TYPE_XML_TEXT => Ok(()),
        TYPE_XML_ELEMENT => {
            decoder.read_var_string()?; // node name
            Ok(())
        }
        // Yjs' `YXmlHook._write`: the ref, then the hook name (read by the vendored yrs only:
        // 0.28.1 as published reads the ref alone, see `vendor/yrs/CHORUS-PATCHES.md`).
        TYPE_XML_HOOK => {
            decoder.read_var_string()?; // hook name
            Ok(())
        }
        other => Err(UpdateError::UnsupportedTypeRef(other)),
    }
}

/// An open array or map while skipping an `Any` value.
struct Open {
    /// Values still to read.
    remaining: u64,
    /// Each value is preceded by a string key.
    is_map: bool,
}

/// Skips one lib0 `Any` value (`lib0/encoding.js` `writeAny`), iteratively: the explicit stack
/// holds at most `max_depth` entries, so hostile nesting costs neither call stack nor memory.
fn skip_any(decoder: &mut Decoder<'_>, max_depth: usize) -> Result<(), UpdateError> {
    let mut open: Vec<Open> = Vec::new();
    loop {
        match decoder.read_u8()? {
            // undefined, null, false, true
            127 | 126 | 121 | 120 => {}
            125 => skip_var_int(decoder)?,
            124 => {
                decoder.read_exact(4)?; // float32
            }
            // float64, bigint64
            123 | 122 => {
                decoder.read_exact(8)?;
            }
            119 => {
                decoder.read_var_string()?;
            }
            116 => {
                decoder.read_var_bytes()?;
            }
            tag @ (118 | 117) => {
                if open.len() >= max_depth {
                    return Err(UpdateError::AnyTooDeep { limit: max_depth });
                }
                let is_map = tag == 118;
                // yrs reads these counts as u64; the input bounds them long before that.
                let remaining = decoder.read_var_uint()?;
                let min_bytes = if is_map {
                    MIN_ANY_ENTRY_BYTES
                } else {
                    MIN_ANY_BYTES
                };
                crate::state_vector::check_count(remaining, decoder.remaining(), min_bytes)
                    .map_err(|_| UpdateError::CountTooLarge {
                        what: if is_map {
                            "Any map entries"
                        } else {
                            "Any array values"
                        },
                        count: remaining,
                        remaining: decoder.remaining(),
                    })?;
                if remaining > 0 {
                    open.push(Open { remaining, is_map });
                }
            }
            tag => return Err(UpdateError::UnknownAnyTag(tag)),
        }
        // Move to the next value: close finished containers, read the next map key.
        loop {
            let Some(top) = open.last_mut() else {
                return Ok(());
            };
            if top.remaining == 0 {
                open.pop();
                continue;
            }
            top.remaining -= 1;
            if top.is_map {
                decoder.read_var_string()?;
            }
            break;
        }
    }
}

/// Skips a lib0 `varInt` (sign in bit 6 of the first byte). lib0 refuses magnitudes above
/// 2^53 − 1; yrs would shift past 64 bits on an overlong one (a debug-build panic).
fn skip_var_int(decoder: &mut Decoder<'_>) -> Result<(), UpdateError> {
    let too_large = UpdateError::IntegerTooLarge {
        what: "Any integer",
    };
    let first = decoder.read_u8()?;
    let mut value = u64::from(first & 0x3f);
    let mut more = first & 0x80 != 0;
    // 6 bits, then 7 per byte: 8 bytes carry 55 bits, enough for 53.
    let mut shift = 6;
    while more {
        if shift > 48 {
            return Err(too_large);
        }
        let byte = decoder.read_u8()?;
        value |= u64::from(byte & 0x7f) << shift;
        more = byte & 0x80 != 0;
        shift += 7;
    }
    if value > MAX_SAFE_INTEGER {
        return Err(too_large);
    }
    Ok(())
}

/// Length of `text` in UTF-16 code units, the unit of Yjs clocks: one per character, two for
/// characters outside the Basic Multilingual Plane (4-byte UTF-8 sequences).
fn utf16_len(text: &str) -> usize {
    text.bytes()
        .map(|b| usize::from(b & 0xc0 != 0x80) + usize::from(b >= 0xf0))
        .sum()
}

/// Refuses JSON whose arrays/objects nest deeper than `limit`. Only nesting is checked: yrs
/// parses the JSON itself (serde_json, which refuses invalid JSON cleanly).
fn check_json_depth(json: &str, limit: usize) -> Result<(), UpdateError> {
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    for byte in json.bytes() {
        if in_string {
            match byte {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match byte {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > limit {
                    return Err(UpdateError::JsonTooDeep { limit });
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn skip(bytes: &[u8], max_depth: usize) -> Result<usize, UpdateError> {
        let mut decoder = Decoder::new(bytes);
        skip_any(&mut decoder, max_depth)?;
        Ok(decoder.position())
    }

    #[test]
    fn skips_every_any_kind() {
        // {"a": [1, -1, 1.5f32, 1.5f64, bigint, true, false, null, undefined, "x", bytes[2]]}
        let value = [
            118, 1, 1, b'a', 117, 11, 125, 1, 125, 0x41, 124, 0x3f, 0xc0, 0, 0, 123, 0x3f, 0xf8, 0,
            0, 0, 0, 0, 0, 122, 0, 0, 0, 0, 0, 0, 0, 7, 120, 121, 126, 127, 119, 1, b'x', 116, 2,
            9, 9,
        ];
        assert_eq!(skip(&value, 2), Ok(value.len()));
        assert_eq!(skip(&value, 1), Err(UpdateError::AnyTooDeep { limit: 1 }));
    }

    #[test]
    fn empty_containers_count_as_nesting() {
        assert_eq!(skip(&[117, 1, 117, 0], 2), Ok(4));
        assert_eq!(
            skip(&[117, 1, 117, 0], 1),
            Err(UpdateError::AnyTooDeep { limit: 1 })
        );
    }

    #[test]
    fn var_int_bounds() {
        // 2^53 − 1 in 8 bytes: 6 bits, 6 × 7 bits, then the last 5.
        let max = [0xbf, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x1f];
        assert_eq!(skip_var_int(&mut Decoder::new(&max)), Ok(()));
        let over = [0xbf, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x3f];
        assert!(skip_var_int(&mut Decoder::new(&over)).is_err());
        // The 11-byte overlong integer from the hostile corpus.
        let overlong = [0xff; 11];
        assert!(skip_var_int(&mut Decoder::new(&overlong)).is_err());
    }

    #[test]
    fn counts_utf16_units() {
        assert_eq!(utf16_len("ab"), 2);
        assert_eq!(utf16_len("é✓"), 2);
        assert_eq!(utf16_len("😀𝄞"), 4);
    }

    /// What Yjs 13.6.33 writes for `frag.insert(0, [new Y.XmlHook('my-hook'), <p>after</p>])`
    /// (`vendor/yrs/chorus-repro/xml-hook.yjs.json`, update 1): type ref 5 and then the hook
    /// name, which must be consumed for the next struct to be read where Yjs reads it.
    #[test]
    fn xml_hook_type_ref_reads_its_name() {
        let update = [
            0x01, 0x04, 0x01, 0x00, // 1 client, 4 structs, client 1, clock 0
            0x07, 0x01, 0x03, b'x', b'm', b'l', // content type, parent: root "xml"
            0x05, 0x07, b'm', b'y', b'-', b'h', b'o', b'o', b'k', // XmlHook "my-hook"
            0x87, 0x01, 0x00, 0x03, 0x01, b'p', // next struct: <p>, origin 1:0
        ];
        let mut decoder = Decoder::new(&update[10..]);
        assert_eq!(read_type_ref(&mut decoder), Ok(()));
        assert_eq!(decoder.position(), 9, "type ref and hook name consumed");
        assert_eq!(
            update[10 + decoder.position()],
            0x87,
            "next: the <p> item's info"
        );
        // The name is not optional.
        assert!(read_type_ref(&mut Decoder::new(&[TYPE_XML_HOOK])).is_err());
        // The refs only one side knows are still refused.
        for other in [7, 8, 9, 15, 16] {
            assert_eq!(
                read_type_ref(&mut Decoder::new(&[other, 0])),
                Err(UpdateError::UnsupportedTypeRef(other))
            );
        }
    }

    /// The whole updates and state Yjs writes for that hook scenario
    /// (`vendor/yrs/chorus-repro/xml-hook.yjs.json`: the hook and `<p>after</p>`; keys set on
    /// the hook; another client's key and nested `Y.XmlHook('inner-hook')`; the encoded state)
    /// are accepted with Yjs' struct counts, and the vendored yrs applies them.
    #[test]
    fn yjs_xml_hook_updates_are_accepted() {
        use yrs::updates::decoder::Decode as _;
        use yrs::{ReadTxn as _, Transact as _};
        let unhex = |s: &str| -> Vec<u8> {
            (0..s.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
                .collect()
        };
        // (hex, structs, delete ranges)
        let cases = [
            (
                "01040100070103786d6c05076d792d686f6f6b87010003017007000101060400010205616674657200",
                4,
                0,
            ),
            (
                "0102010828000100057469746c6501770548656c6c6f2800010005636f756e74017d2a00",
                2,
                0,
            ),
            (
                "01030200a80108017707426f6e6a6f75722700010005696e6e6572050a696e6e65722d686f6f6b28000201016b017701760101010801",
                3,
                1,
            ),
            (
                "02030200a80108017707426f6e6a6f75722700010005696e6e6572050a696e6e65722d686f6f6b28000201016b01770176060100070103786d6c05076d792d686f6f6b87010003017007000101060400010205616674657221000100057469746c65012800010005636f756e74017d2a0101010801",
                9,
                1,
            ),
        ];
        let doc = yrs::Doc::new();
        for (hex, structs, delete_ranges) in cases {
            let bytes = unhex(hex);
            let summary = super::super::validate_update_v1(&bytes, &UpdateLimits::default())
                .unwrap_or_else(|e| panic!("refused: {e}: {hex}"));
            assert_eq!(
                (summary.structs, summary.delete_ranges),
                (structs, delete_ranges)
            );
            let update = yrs::Update::decode_v1(&bytes).expect("yrs decodes it");
            doc.transact_mut()
                .apply_update(update)
                .expect("yrs applies it");
        }
        assert!(doc.transact().store().pending_update().is_none());
    }

    #[test]
    fn json_depth_ignores_brackets_in_strings() {
        assert_eq!(check_json_depth(r#"{"a":"[[[[\"{{"}"#, 1), Ok(()));
        assert_eq!(
            check_json_depth("[[1]]", 1),
            Err(UpdateError::JsonTooDeep { limit: 1 })
        );
    }
}

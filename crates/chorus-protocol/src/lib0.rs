//! lib0 binary primitives: variable-length unsigned integers, length-prefixed byte arrays and
//! strings, exactly as `lib0/encoding.js` and `lib0/decoding.js` write and read them.
//!
//! The decoder works on untrusted bytes: every read checks the remaining length first, so a
//! length prefix can never make it allocate or slice past the input.

use crate::ProtocolError;

/// Largest integer a JavaScript peer can represent exactly (2^53 − 1). lib0's `readVarUint`
/// throws above it, so we refuse it too: anything larger cannot have come from a real client.
pub const MAX_SAFE_INTEGER: u64 = (1 << 53) - 1;

/// A varint of a 53-bit value needs at most 8 bytes of 7 bits each.
const MAX_VARINT_BYTES: usize = 8;

/// Appends `value` as a lib0 `varUint`.
pub fn write_var_uint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8 & 0x7f) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

/// Appends `bytes` as a lib0 `varUint8Array` (length prefix, then the bytes).
pub fn write_var_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    write_var_uint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

/// Appends `s` as a lib0 `varString` (UTF-8, length-prefixed).
pub fn write_var_string(out: &mut Vec<u8>, s: &str) {
    write_var_bytes(out, s.as_bytes());
}

/// Number of bytes `write_var_uint(value)` produces; lets encoders size buffers exactly.
pub fn var_uint_len(value: u64) -> usize {
    let bits = 64 - value.leading_zeros() as usize;
    bits.div_ceil(7).max(1)
}

/// A cursor over untrusted input.
#[derive(Debug, Clone)]
pub struct Decoder<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Decoder<'a> {
    /// Starts reading at the first byte of `buf`.
    pub fn new(buf: &'a [u8]) -> Self {
        Self { buf, pos: 0 }
    }

    /// Bytes not read yet.
    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// Offset of the next byte to read, from the start of the input.
    pub fn position(&self) -> usize {
        self.pos
    }

    /// True when every byte has been read.
    pub fn is_empty(&self) -> bool {
        self.remaining() == 0
    }

    /// Reads one byte.
    ///
    /// # Errors
    /// [`ProtocolError::UnexpectedEnd`] when the input is exhausted.
    pub fn read_u8(&mut self) -> Result<u8, ProtocolError> {
        let byte = *self.buf.get(self.pos).ok_or(ProtocolError::UnexpectedEnd {
            needed: 1,
            remaining: 0,
        })?;
        self.pos += 1;
        Ok(byte)
    }

    /// Reads a lib0 `varUint` of at most 53 bits.
    ///
    /// # Errors
    /// [`ProtocolError::UnexpectedEnd`] on truncation, [`ProtocolError::VarIntTooLarge`] when the
    /// value does not fit in 53 bits (lib0 refuses those too).
    pub fn read_var_uint(&mut self) -> Result<u64, ProtocolError> {
        let mut value: u64 = 0;
        for i in 0..MAX_VARINT_BYTES {
            let byte = self.read_u8()?;
            value |= u64::from(byte & 0x7f) << (7 * i);
            if byte & 0x80 == 0 {
                if value > MAX_SAFE_INTEGER {
                    return Err(ProtocolError::VarIntTooLarge);
                }
                return Ok(value);
            }
        }
        Err(ProtocolError::VarIntTooLarge)
    }

    /// Reads a `varUint` that must fit in a `u32` (Yjs clocks and lengths).
    ///
    /// # Errors
    /// As [`Decoder::read_var_uint`], plus [`ProtocolError::VarIntTooLarge`] above `u32::MAX`.
    pub fn read_var_u32(&mut self) -> Result<u32, ProtocolError> {
        let value = self.read_var_uint()?;
        u32::try_from(value).map_err(|_| ProtocolError::VarIntTooLarge)
    }

    /// Reads exactly `len` bytes.
    ///
    /// # Errors
    /// [`ProtocolError::UnexpectedEnd`] when fewer than `len` bytes remain; nothing is allocated.
    pub fn read_exact(&mut self, len: u64) -> Result<&'a [u8], ProtocolError> {
        let remaining = self.remaining();
        let len = usize::try_from(len)
            .ok()
            .filter(|&len| len <= remaining)
            .ok_or(ProtocolError::UnexpectedEnd {
                needed: len,
                remaining,
            })?;
        let bytes = &self.buf[self.pos..self.pos + len];
        self.pos += len;
        Ok(bytes)
    }

    /// Reads a lib0 `varUint8Array`.
    ///
    /// # Errors
    /// As [`Decoder::read_exact`].
    pub fn read_var_bytes(&mut self) -> Result<&'a [u8], ProtocolError> {
        let len = self.read_var_uint()?;
        self.read_exact(len)
    }

    /// Reads a lib0 `varString`.
    ///
    /// # Errors
    /// As [`Decoder::read_exact`], plus [`ProtocolError::InvalidUtf8`].
    pub fn read_var_string(&mut self) -> Result<&'a str, ProtocolError> {
        let bytes = self.read_var_bytes()?;
        std::str::from_utf8(bytes).map_err(|_| ProtocolError::InvalidUtf8)
    }

    /// Reads everything that is left.
    pub fn read_rest(&mut self) -> &'a [u8] {
        let rest = &self.buf[self.pos..];
        self.pos = self.buf.len();
        rest
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encoded(value: u64) -> Vec<u8> {
        let mut out = Vec::new();
        write_var_uint(&mut out, value);
        out
    }

    #[test]
    fn var_uint_matches_lib0_test_vectors() {
        let vectors: [(u64, &[u8]); 8] = [
            (0, &[0x00]),
            (127, &[0x7f]),
            (128, &[0x80, 0x01]),
            (255, &[0xff, 0x01]),
            (300, &[0xac, 0x02]),
            (16384, &[0x80, 0x80, 0x01]),
            (u32::MAX as u64, &[0xff, 0xff, 0xff, 0xff, 0x0f]),
            (
                MAX_SAFE_INTEGER,
                &[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x0f],
            ),
        ];
        for (value, bytes) in vectors {
            assert_eq!(encoded(value), bytes, "encoding {value}");
            assert_eq!(var_uint_len(value), bytes.len(), "length of {value}");
            let mut decoder = Decoder::new(bytes);
            assert_eq!(decoder.read_var_uint(), Ok(value), "decoding {value}");
            assert!(decoder.is_empty());
        }
    }

    #[test]
    fn var_string_matches_lib0() {
        let mut out = Vec::new();
        write_var_string(&mut out, "ü{}");
        assert_eq!(out, [0x04, 0xc3, 0xbc, 0x7b, 0x7d]);
    }

    #[test]
    fn refuses_values_beyond_53_bits() {
        let mut decoder = Decoder::new(&[0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x10]);
        assert_eq!(decoder.read_var_uint(), Err(ProtocolError::VarIntTooLarge));
        let mut endless = Decoder::new(&[0xff; 12]);
        assert_eq!(endless.read_var_uint(), Err(ProtocolError::VarIntTooLarge));
    }

    #[test]
    fn length_prefix_beyond_input_is_an_error() {
        // A 2^32 − 1 byte array announced in a 6-byte input.
        let mut decoder = Decoder::new(&[0xff, 0xff, 0xff, 0xff, 0x0f, 0x00]);
        assert!(matches!(
            decoder.read_var_bytes(),
            Err(ProtocolError::UnexpectedEnd { .. })
        ));
    }
}

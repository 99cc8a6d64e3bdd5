//! Yjs v1 state vectors: `varUint(n) • n × (varUint(client) • varUint(clock))`.

use crate::ProtocolError;
use crate::lib0::{Decoder, write_var_uint};

/// Smallest encoding of one entry (a one-byte client id and a one-byte clock). Used to refuse
/// entry counts the input cannot hold before reserving memory for them.
const MIN_ENTRY_BYTES: usize = 2;

/// What a peer has seen of each client: the next clock it expects from that client.
///
/// Client ids are below 2^53 and clocks fit in a `u32`, the limits of Yjs and yrs; decoding
/// refuses anything else, so the values can be handed to yrs without tripping its assertions.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StateVector {
    /// `(client id, clock)` pairs in wire order.
    pub entries: Vec<(u64, u32)>,
}

impl StateVector {
    /// Decodes a whole v1 state vector.
    ///
    /// # Errors
    /// Truncation, an entry count larger than the input can hold, a client id of 2^53 or more,
    /// a clock above `u32::MAX`, or trailing bytes.
    pub fn decode(bytes: &[u8]) -> Result<Self, ProtocolError> {
        let entries = decode_client_entries(bytes, MIN_ENTRY_BYTES, |_, client, clock| {
            Ok((client, clock))
        })?;
        Ok(Self { entries })
    }

    /// Encodes in the v1 format.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(1 + self.entries.len() * 6);
        write_var_uint(&mut out, self.entries.len() as u64);
        for &(client, clock) in &self.entries {
            write_var_uint(&mut out, client);
            write_var_uint(&mut out, u64::from(clock));
        }
        out
    }

    /// True when the peer has nothing (it needs the whole document).
    pub fn is_empty(&self) -> bool {
        self.entries.iter().all(|&(_, clock)| clock == 0)
    }
}

impl FromIterator<(u64, u32)> for StateVector {
    fn from_iter<I: IntoIterator<Item = (u64, u32)>>(iter: I) -> Self {
        Self {
            entries: iter.into_iter().collect(),
        }
    }
}

/// Decodes a whole count-prefixed list of entries that each start with `varUint(client) •
/// varUint(clock)`, as state vectors and awareness updates write them; `rest` reads the rest of
/// an entry. Refuses counts the input cannot hold at `min_entry_bytes` each, and trailing bytes.
pub(crate) fn decode_client_entries<T>(
    bytes: &[u8],
    min_entry_bytes: usize,
    mut rest: impl FnMut(&mut Decoder<'_>, u64, u32) -> Result<T, ProtocolError>,
) -> Result<Vec<T>, ProtocolError> {
    let mut decoder = Decoder::new(bytes);
    let count = decoder.read_var_uint()?;
    check_count(count, decoder.remaining(), min_entry_bytes)?;
    let mut entries = Vec::with_capacity(count as usize);
    for _ in 0..count {
        let client = decoder.read_var_uint()?;
        let clock = decoder.read_var_u32()?;
        entries.push(rest(&mut decoder, client, clock)?);
    }
    if !decoder.is_empty() {
        return Err(ProtocolError::TrailingBytes(decoder.remaining()));
    }
    Ok(entries)
}

/// Refuses a declared element count that `remaining` bytes cannot hold at `min_bytes` each.
pub(crate) fn check_count(
    count: u64,
    remaining: usize,
    min_bytes: usize,
) -> Result<(), ProtocolError> {
    if count > (remaining / min_bytes) as u64 {
        return Err(ProtocolError::CountTooLarge { count, remaining });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_state_vector_is_one_zero_byte() {
        assert_eq!(StateVector::default().encode(), [0x00]);
        assert_eq!(StateVector::decode(&[0x00]), Ok(StateVector::default()));
    }

    #[test]
    fn refuses_client_ids_of_2_pow_53() {
        // The 13-byte step 1 that trips yrs' debug assertion, without its 3-byte frame header.
        let sv = [0x01, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x10, 0x00];
        assert_eq!(StateVector::decode(&sv), Err(ProtocolError::VarIntTooLarge));
    }

    #[test]
    fn refuses_counts_the_input_cannot_hold() {
        // yrs PR #639's regression input: ~256M entries announced in four bytes.
        assert!(matches!(
            StateVector::decode(&[0xff, 0xff, 0xff, 0x7a]),
            Err(ProtocolError::CountTooLarge { .. })
        ));
    }
}

//! Awareness (presence) updates:
//! `varUint(n) • n × (varUint(clientID) • varUint(clock) • varString(JSON state))`.
//!
//! The state is kept as raw JSON text; the JSON text `null` means "this client is gone".

use bytes::Bytes;

use crate::ProtocolError;
use crate::lib0::{var_uint_len, write_var_bytes, write_var_uint};
use crate::state_vector::decode_client_entries;

/// Smallest encoding of one entry: client, clock and an empty string, one byte each.
const MIN_ENTRY_BYTES: usize = 3;

/// The JSON text y-protocols sends for a removed client.
pub const NULL_STATE: &[u8] = b"null";

/// One client's presence at one clock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AwarenessEntry {
    /// The Yjs client id (below 2^53).
    pub client: u64,
    /// Increases with every change the client makes to its own state.
    pub clock: u32,
    /// The state as JSON text (valid UTF-8; not parsed here).
    pub state: Bytes,
}

impl AwarenessEntry {
    /// True when this entry removes the client (`state` is the JSON `null`).
    pub fn is_removal(&self) -> bool {
        self.state.as_ref() == NULL_STATE
    }
}

/// A batch of awareness entries, as carried by one awareness message.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AwarenessUpdate {
    /// The entries in wire order.
    pub entries: Vec<AwarenessEntry>,
}

impl AwarenessUpdate {
    /// Decodes a whole awareness update; the states are zero-copy slices of `bytes`.
    ///
    /// # Errors
    /// Truncation, an entry count larger than the input can hold, a client id of 2^53 or more, a
    /// clock above `u32::MAX`, a state that is not UTF-8, or trailing bytes.
    pub fn decode(bytes: &Bytes) -> Result<Self, ProtocolError> {
        let entries = decode_client_entries(bytes, MIN_ENTRY_BYTES, |decoder, client, clock| {
            let state = decoder.read_var_string()?;
            Ok(AwarenessEntry {
                client,
                clock,
                state: bytes.slice_ref(state.as_bytes()),
            })
        })?;
        Ok(Self { entries })
    }

    /// Encodes the entries in wire format.
    pub fn encode(&self) -> Vec<u8> {
        encode_entries(self.entries.iter())
    }
}

/// Encodes entries borrowed from elsewhere (a room's presence table) without cloning them
/// into an [`AwarenessUpdate`] first.
pub fn encode_entries<'a>(entries: impl ExactSizeIterator<Item = &'a AwarenessEntry>) -> Vec<u8> {
    let mut out = Vec::new();
    write_var_uint(&mut out, entries.len() as u64);
    for entry in entries {
        out.reserve(
            var_uint_len(entry.client)
                + 5
                + var_uint_len(entry.state.len() as u64)
                + entry.state.len(),
        );
        write_var_uint(&mut out, entry.client);
        write_var_uint(&mut out, u64::from(entry.clock));
        write_var_bytes(&mut out, &entry.state);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn removal_matches_the_golden_bytes() {
        // y-websocket's destroy(): client 5, clock 0, "null".
        let bytes = Bytes::from_static(&[0x01, 0x05, 0x00, 0x04, b'n', b'u', b'l', b'l']);
        let update = AwarenessUpdate::decode(&bytes).expect("valid update");
        assert!(update.entries[0].is_removal());
        assert_eq!(update.encode(), bytes.as_ref());
    }

    #[test]
    fn refuses_invalid_utf8_states() {
        let bytes = Bytes::from_static(&[0x01, 0x05, 0x00, 0x01, 0xff]);
        assert_eq!(
            AwarenessUpdate::decode(&bytes),
            Err(ProtocolError::InvalidUtf8)
        );
    }

    #[test]
    fn refuses_huge_counts_without_allocating() {
        let bytes = Bytes::from_static(&[0xff, 0xff, 0xff, 0xff, 0x0f, 0x00]);
        assert!(matches!(
            AwarenessUpdate::decode(&bytes),
            Err(ProtocolError::CountTooLarge { .. })
        ));
    }
}

//! The identity of a Yjs update: the `(client, clock)` of its first struct.
//!
//! A v1 update starts `varUint(numClients) • varUint(numStructs) • varUint(client) •
//! varUint(firstClock) • …`. Every update a simulated typist sends comes from one transaction
//! on its own document, so its first struct is the typist's own `(client, clock)`: that is the
//! key the typist logs it under. Receivers do not rely on it alone, since a server may merge
//! several updates into one: they look up every clock the received update covers
//! (`chorus_protocol::update::clock_runs_v1`).

use chorus_protocol::ProtocolError;
use chorus_protocol::lib0::Decoder;

/// Who wrote an update, and where in that writer's history it starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct UpdateId {
    /// The Yjs client id of the writer.
    pub client: u64,
    /// The clock of the update's first struct.
    pub clock: u32,
}

/// Reads the first struct header of a v1 update.
///
/// Returns `Ok(None)` for an update without structs (the empty update `00 00`, or one that only
/// deletes).
///
/// # Errors
/// The header is truncated or holds an out-of-range integer.
pub fn first_struct_id(update: &[u8]) -> Result<Option<UpdateId>, ProtocolError> {
    let mut decoder = Decoder::new(update);
    if decoder.read_var_uint()? == 0 {
        return Ok(None);
    }
    if decoder.read_var_uint()? == 0 {
        return Ok(None);
    }
    let client = decoder.read_var_uint()?;
    let clock = decoder.read_var_u32()?;
    Ok(Some(UpdateId { client, clock }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use yrs::{Doc, GetString, Text, Transact};

    #[test]
    fn reads_the_golden_transcript_update() {
        // Client 5 inserts "ab" into text "t" (y-protocol.md §1.8).
        let update = [
            0x01, 0x01, 0x05, 0x00, 0x04, 0x01, 0x01, 0x74, 0x02, 0x61, 0x62, 0x00,
        ];
        assert_eq!(
            first_struct_id(&update),
            Ok(Some(UpdateId {
                client: 5,
                clock: 0
            }))
        );
    }

    #[test]
    fn follows_the_clock_of_successive_yrs_updates() {
        let doc = Doc::with_client_id(4_000_000_123);
        let text = doc.get_or_insert_text("t");
        let mut clocks = Vec::new();
        for chunk in ["abc", "d", "efgh"] {
            let mut txn = doc.transact_mut();
            let len = text.len(&txn);
            text.insert(&mut txn, len, chunk);
            let id = first_struct_id(&txn.encode_update_v1())
                .expect("valid header")
                .expect("has structs");
            assert_eq!(id.client, 4_000_000_123);
            clocks.push(id.clock);
        }
        assert_eq!(clocks, [0, 3, 4]);
        assert_eq!(text.get_string(&doc.transact()), "abcdefgh");
    }

    #[test]
    fn empty_and_truncated_updates() {
        assert_eq!(first_struct_id(&[0x00, 0x00]), Ok(None));
        assert!(first_struct_id(&[]).is_err());
        assert!(first_struct_id(&[0x01, 0x01, 0x85]).is_err());
    }
}

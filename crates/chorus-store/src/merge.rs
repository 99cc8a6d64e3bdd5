//! Merging Yjs states, the heart of "no node overwrites another node's snapshot".
//!
//! Yjs v1 updates form a CRDT: merging two document states gives a state that contains both,
//! whatever order they come in and however much they overlap. Saving a snapshot therefore never
//! needs to pick a winner: a backend reads what is stored, merges the new snapshot into it and
//! writes the result under a compare-and-swap, so a concurrent save by another node is merged
//! too instead of being lost.
//!
//! The bytes merged here come from Chorus itself: the room's own encoded state, or data a
//! Chorus node stored behind a checksum. Checksums catch accidents, not attackers; whoever can
//! write to the store can already write any document they like.

use bytes::Bytes;
use yrs::Update;
use yrs::updates::decoder::Decode;
use yrs::updates::encoder::Encode;

/// Which input of a merge could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MergeError {
    /// One of the stored updates (a snapshot or a log record) is not a Yjs v1 update.
    #[error("stored update #{index} is not a Yjs v1 update: {reason}")]
    Stored {
        /// Its position among the stored inputs.
        index: usize,
        /// The decoder's complaint.
        reason: String,
    },
    /// The snapshot being saved is not a Yjs v1 update.
    #[error("the new snapshot is not a Yjs v1 update: {0}")]
    New(String),
}

/// Merges a new snapshot into the one stored.
///
/// # Errors
/// [`MergeError`] naming the input that does not decode.
pub fn merge_snapshot(stored: &[u8], new: &[u8]) -> Result<Bytes, MergeError> {
    let new_update = Update::decode_v1(new).map_err(|e| MergeError::New(e.to_string()))?;
    if stored == new {
        return Ok(Bytes::copy_from_slice(new));
    }
    let stored_update = Update::decode_v1(stored).map_err(|e| MergeError::Stored {
        index: 0,
        reason: e.to_string(),
    })?;
    Ok(Bytes::from(
        Update::merge_updates([stored_update, new_update]).encode_v1(),
    ))
}

/// Merges stored updates (a snapshot followed by log records, say) into one.
///
/// # Errors
/// [`MergeError::Stored`] naming the first input that does not decode.
pub fn merge_stored<'a>(updates: impl IntoIterator<Item = &'a [u8]>) -> Result<Bytes, MergeError> {
    let decoded = updates
        .into_iter()
        .enumerate()
        .map(|(index, bytes)| {
            Update::decode_v1(bytes).map_err(|e| MergeError::Stored {
                index,
                reason: e.to_string(),
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Bytes::from(Update::merge_updates(decoded).encode_v1()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use yrs::{Doc, GetString, Map, ReadTxn, StateVector, Text, Transact};

    fn state(doc: &Doc) -> Vec<u8> {
        doc.transact()
            .encode_state_as_update_v1(&StateVector::default())
    }

    fn apply(doc: &Doc, update: &[u8]) {
        let update = Update::decode_v1(update).expect("decodes");
        doc.transact_mut().apply_update(update).expect("applies");
    }

    fn text_of(update: &[u8]) -> String {
        let doc = Doc::new();
        apply(&doc, update);
        let text = doc.get_or_insert_text("t");
        text.get_string(&doc.transact())
    }

    #[test]
    fn diverged_states_merge_to_both() {
        let base = Doc::with_client_id(1);
        let text = base.get_or_insert_text("t");
        text.insert(&mut base.transact_mut(), 0, "hello world");
        let a = Doc::with_client_id(2);
        let b = Doc::with_client_id(3);
        apply(&a, &state(&base));
        apply(&b, &state(&base));
        let ta = a.get_or_insert_text("t");
        ta.insert(&mut a.transact_mut(), 0, "A ");
        let tb = b.get_or_insert_text("t");
        tb.remove_range(&mut b.transact_mut(), 5, 6);
        tb.push(&mut b.transact_mut(), " B");
        let map = b.get_or_insert_map("m");
        map.insert(&mut b.transact_mut(), "k", "v");

        let ab = merge_snapshot(&state(&a), &state(&b)).expect("merge");
        let ba = merge_snapshot(&state(&b), &state(&a)).expect("merge");
        assert_eq!(text_of(&ab), "A hello B");
        assert_eq!(text_of(&ba), "A hello B");
        // Merging again changes nothing: saves are idempotent.
        assert_eq!(
            text_of(&merge_snapshot(&ab, &state(&a)).expect("merge")),
            "A hello B"
        );
    }

    #[test]
    fn blames_the_input_that_does_not_decode() {
        let doc = Doc::new();
        doc.get_or_insert_text("t")
            .push(&mut doc.transact_mut(), "x");
        let good = state(&doc);
        let bad = [0xff, 0xff, 0xff];
        assert!(matches!(
            merge_snapshot(&good, &bad),
            Err(MergeError::New(_))
        ));
        assert!(matches!(
            merge_snapshot(&bad, &good),
            Err(MergeError::Stored { index: 0, .. })
        ));
        assert!(matches!(
            merge_stored([good.as_slice(), bad.as_slice()]),
            Err(MergeError::Stored { index: 1, .. })
        ));
    }
}

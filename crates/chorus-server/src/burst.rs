//! A burst of updates from one connection, merged into one before the room sees it.
//!
//! A script that inserts in a loop without a transaction sends one update per insert: 10,240
//! messages for a 10,240-insert import. Handed over one by one, each costs the room a
//! transaction, a log record and a frame in every other connection's outbox, and the readers'
//! outboxes overflow long before the writer is done. The updates a connection has already
//! received when it reads the first of them are merged into one (Yjs updates merge like the
//! documents they describe), so a burst costs about as much as one update. Nothing waits for a
//! burst to form: only frames already read off the socket are merged. Both endpoints merge
//! through here: `ws::connection` and, per document of a socket, `hocuspocus::socket` (which
//! still answers every update of a burst with its own sync status).

use bytes::Bytes;
use chorus_protocol::{UpdateLimits, validate_update_v1};
use std::panic::{AssertUnwindSafe, catch_unwind};

/// Most updates merged into one: bounds the work of one merge and the size of its result.
pub const MAX_UPDATES: usize = 256;

/// Most bytes of updates merged into one.
pub const MAX_BYTES: usize = 1024 * 1024;

/// One update with what all of `updates` (each already validated) change, or `None` when they
/// cannot be merged safely; the caller then hands them over one by one, which is always
/// correct, only slower.
pub fn merge(updates: &[Bytes]) -> Option<Bytes> {
    let parts: Vec<&[u8]> = updates.iter().map(Bytes::as_ref).collect();
    // Each part passed the validator, but yrs' merge is still yrs: contain a panic.
    let merged = catch_unwind(AssertUnwindSafe(|| yrs::merge_updates_v1(parts))).ok()?;
    let merged = merged.ok()?;
    // What the room gets must pass the same check as what the client sent; a merge that does
    // not (none is known) falls back to the parts.
    validate_update_v1(&merged, &UpdateLimits::default()).ok()?;
    Some(Bytes::from(merged))
}

#[cfg(test)]
mod tests {
    use super::*;
    use yrs::updates::decoder::Decode;
    use yrs::{Doc, GetString, ReadTxn, Text, Transact, Update};

    #[test]
    fn a_merged_burst_changes_a_document_as_its_parts_do() {
        let writer = Doc::with_client_id(7);
        let text = writer.get_or_insert_text("t");
        let mut parts = Vec::new();
        for i in 0..50u32 {
            let before = writer.transact().state_vector();
            text.insert(&mut writer.transact_mut(), i % 3, "x😀");
            parts.push(Bytes::from(
                writer.transact().encode_state_as_update_v1(&before),
            ));
        }
        let merged = merge(&parts).expect("merges");
        assert!(merged.len() < parts.iter().map(Bytes::len).sum::<usize>());
        let reader = Doc::new();
        reader
            .transact_mut()
            .apply_update(Update::decode_v1(&merged).expect("decodes"))
            .expect("applies");
        let read = |doc: &Doc| doc.get_or_insert_text("t").get_string(&doc.transact());
        assert_eq!(read(&reader), read(&writer));
        assert_eq!(
            reader.transact().state_vector(),
            writer.transact().state_vector()
        );
    }

    #[test]
    fn parts_that_do_not_merge_are_left_alone() {
        assert_eq!(merge(&[Bytes::from_static(&[0xff, 0xff])]), None);
    }
}

//! Building documents and checking restores.

use chorus_history::{content_json, restore_update};
use serde_json::Value;
use yrs::updates::decoder::Decode;
use yrs::{Doc, OffsetKind, Options, ReadTxn, StateVector, Transact, Update};

/// The client id restores write under in these tests.
pub const RESTORE_ID: u64 = 9_000_001;

/// A document with gc on (the default, as on a live server) and Yjs' UTF-16 positions.
pub fn doc(client_id: u64) -> Doc {
    Doc::with_options(Options {
        client_id: yrs::ClientID::new(client_id),
        offset_kind: OffsetKind::Utf16,
        skip_gc: false,
        ..Options::default()
    })
}

/// A document's whole state as one v1 update.
pub fn state(doc: &Doc) -> Vec<u8> {
    doc.transact()
        .encode_state_as_update_v1(&StateVector::default())
}

/// Applies a v1 update.
pub fn apply(doc: &Doc, update: &[u8]) {
    let update = Update::decode_v1(update).expect("decodes");
    doc.transact_mut().apply_update(update).expect("applies");
}

/// A document holding `state`.
pub fn load(client_id: u64, state: &[u8]) -> Doc {
    let d = doc(client_id);
    apply(&d, state);
    d
}

/// The content JSON of a state.
pub fn content(state: &[u8]) -> Value {
    content_json(state).expect("content_json")
}

/// Restores `target` onto a document holding `current` and returns the new state, after checking
/// that the content is now `target`'s, that the restore only added to history (every other
/// client's clock is unchanged, nothing of `current` is lost from the state vector), and that a
/// second restore finds nothing left to change.
pub fn assert_restores(current: &[u8], target: &[u8]) -> Vec<u8> {
    let live = load(1_000, current);
    let before = live.transact().state_vector();
    let update = restore_update(current, target, RESTORE_ID).expect("restore_update");
    // The server's own validator, with the limits it applies to what clients send, accepts it.
    chorus_protocol::validate_update_v1(&update, &chorus_protocol::UpdateLimits::default())
        .expect("the restore update passes the client-update validator");
    apply(&live, &update);
    let after_state = state(&live);
    assert_eq!(
        content(&after_state),
        content(target),
        "restored content differs from the target's"
    );
    let after = live.transact().state_vector();
    for (client, clock) in before.iter() {
        if client.get() != RESTORE_ID {
            assert_eq!(after.get(client), *clock, "client {client} changed");
        }
    }
    for (client, _) in after.iter() {
        assert!(
            client.get() == RESTORE_ID || before.contains_client(client),
            "a client other than the restore's appeared: {client}"
        );
    }
    // Nothing left to do: the second restore's update adds no items.
    let again = restore_update(&after_state, target, RESTORE_ID + 1).expect("second restore");
    let live2 = load(1_001, &after_state);
    let sv = live2.transact().state_vector();
    apply(&live2, &again);
    assert_eq!(
        live2.transact().state_vector(),
        sv,
        "a second restore still changed something"
    );
    assert_eq!(content(&state(&live2)), content(target));
    after_state
}

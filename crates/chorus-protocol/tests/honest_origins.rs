//! Origins that honest Yjs clients write and the origin rules must accept.
//!
//! The fixtures in `tests/honest/` come from `tests/honest/redo-origins.mjs`: real `yjs` 13.6
//! (the interop suite's copy), one document, public API only (`Y.UndoManager` undo of a
//! deleted paragraph whose text an earlier undo had restored). The redo gives an item two
//! origins of one client that are *not* its list neighbours: left = right (case 1) and a right
//! origin left of the left one inside one struct (case 2). Seen in the honest-traffic generator
//! (seed 112, one node: close 1007 "item ... has inconsistent origins", 88 times for one
//! client, which then never converged). See `tests/honest/README.md`.
//!
//! Every update is checked as `RoomDoc::apply_client` checks it (`validate_update_v1_in` with
//! the document's `DocIndex` and yrs' state vector as `clock_of`, then `DocIndex::absorb`), and
//! applied to a yrs document; what yrs reads must then be what Yjs reads, in the room and in a
//! replica built from its encoded state.

use std::path::PathBuf;

use chorus_protocol::update::{DocIndex, UpdateLimits, validate_update_v1, validate_update_v1_in};
use yrs::updates::decoder::Decode;
use yrs::{ClientID, Doc, GetString, ReadTxn, StateVector, Transact, Update};

fn fixture(name: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/honest")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// `<name>.updates.bin`: u32 little-endian length + update, repeated.
fn framed(name: &str) -> Vec<Vec<u8>> {
    let bytes = fixture(name);
    let mut out = Vec::new();
    let mut rest = &bytes[..];
    while !rest.is_empty() {
        let (len, tail) = rest.split_at(4);
        let len = u32::from_le_bytes(len.try_into().expect("four bytes")) as usize;
        out.push(tail[..len].to_vec());
        rest = &tail[len..];
    }
    out
}

/// The limits `RoomDoc::apply_client` checks client updates with.
fn client_limits() -> UpdateLimits {
    UpdateLimits {
        max_clients: usize::MAX,
        ..UpdateLimits::default()
    }
}

fn apply(doc: &Doc, update: &[u8]) {
    let update = Update::decode_v1(update).expect("yrs decodes it");
    doc.transact_mut()
        .apply_update(update)
        .expect("yrs applies it");
}

fn xml(doc: &Doc) -> String {
    let fragment = doc.get_or_insert_xml_fragment("prosemirror");
    let txn = doc.transact();
    fragment.get_string(&txn)
}

/// Feeds `updates` to a room the way `apply_client` does: each one validated against the
/// document so far, then applied and absorbed. Returns the room's document.
fn room(updates: &[Vec<u8>]) -> Doc {
    let doc = Doc::new();
    let mut index = DocIndex::default();
    for (i, update) in updates.iter().enumerate() {
        let sv = doc.transact().state_vector();
        let clock_of = |client: u64| sv.get(&ClientID::new(client));
        let checked = validate_update_v1_in(update, &client_limits(), &index, Some(&clock_of));
        let (_, added) = checked.unwrap_or_else(|e| {
            panic!(
                "update {i} of an honest Yjs client refused: {e:?}\n  {}",
                hex(update)
            )
        });
        apply(&doc, update);
        index.absorb(added);
    }
    doc
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn replica_of(doc: &Doc) -> Doc {
    let state = doc
        .transact()
        .encode_state_as_update_v1(&StateVector::default());
    let replica = Doc::new();
    apply(&replica, &state);
    replica
}

/// Both delivery paths of one case: every transaction while connected, and the whole state as
/// sync step 2 after having been offline throughout. `yjs_reads` is what Yjs reads (the
/// script prints it).
fn accepted_and_read_like_yjs(name: &str, yjs_reads: &str) {
    let updates = framed(&format!("{name}.updates.bin"));
    for update in &updates {
        validate_update_v1(update, &client_limits())
            .unwrap_or_else(|e| panic!("{name}: refused without a document: {e:?}"));
    }
    let online = room(&updates);
    assert_eq!(xml(&online), yjs_reads, "{name}: room fed update by update");
    assert_eq!(
        xml(&replica_of(&online)),
        yjs_reads,
        "{name}: replica of it"
    );

    let offline = room(&[fixture(&format!("{name}.state.bin"))]);
    assert_eq!(xml(&offline), yjs_reads, "{name}: room fed the whole state");
    assert_eq!(
        xml(&replica_of(&offline)),
        yjs_reads,
        "{name}: replica of it"
    );
}

/// Case 1: the redo of "b" has the redo of "a" (client 1, clock 9) as both its left and its
/// right origin (sub-rule a).
#[test]
fn undo_redo_left_origin_equal_to_right_origin_is_accepted() {
    accepted_and_read_like_yjs("redo-left-equals-right", "<paragraph>acb</paragraph>");
}

/// Case 2: the redo of "c" has left origin 1#12, right origin 1#11, both inside the redo of
/// "ab" (one struct, 1#11..13): a right origin left of the left one in one run (sub-rule c).
#[test]
fn undo_redo_right_origin_left_of_left_origin_in_one_run_is_accepted() {
    accepted_and_read_like_yjs("redo-right-left-of-left", "<paragraph>abcc</paragraph>");
}

//! A room's document path over a sequence of messages, the way `chorus-server`'s room actor
//! drives its `RoomDoc` (which lives in the server crate, out of this crate's reach, so the
//! path is mirrored here with yrs directly): every frame is decoded like the connection does;
//! sync step 2 and updates go through `validate_update_v1` (the connection's check), then the
//! room's own checks (`RoomDoc::apply_client`: `validate_update_v1_in` against the document's
//! `DocIndex` and its state vector; what follows a hole in the update's clocks, or has origins
//! the document lacks, is held until those clocks arrive) and, if accepted, are applied to
//! the one long-lived document; a sync step 1 is answered with the diff the client lacks. (The
//! size, client-id and pending caps only refuse more; they are not mirrored.) State
//! carries over between messages, so this reaches what a single update cannot: origins into
//! content of earlier updates, pending structs waiting for later ones, deletes of both.
//!
//! Checks: no panic anywhere; every answer the server would send validates and decodes; and at
//! the end what a joiner gets (the document's state without the structs still waiting for
//! dependencies, as `RoomDoc::step2` sends it), applied to a fresh replica, gives the same state
//! vector and the same text as the room.
#![no_main]

use bytes::Bytes;
use chorus_protocol::update::{DocIndex, UpdateLimits, validate_update_v1};
use chorus_protocol::{Message, SyncMessage};
use libfuzzer_sys::fuzz_target;

#[path = "shared/room_mirror.rs"]
mod room_mirror;
use room_mirror::{Held, admit, clocks, release, room_doc};
use yrs::updates::decoder::Decode;
use yrs::{GetString, ReadTxn, StateVector, Transact, Update};

/// A room holds at most this many messages' worth of state per run, to keep runs fast.
const MAX_MESSAGES: usize = 64;

/// Limits for what the server itself encodes: a whole document names more clients, and nests
/// types deeper through references, than one client update may.
fn state_limits() -> UpdateLimits {
    UpdateLimits {
        max_clients: usize::MAX,
        max_type_depth: usize::MAX,
        // The state may show content yrs collected itself next to live items (finding 12);
        // the room's consistency is what the texts and state vectors compared below show.
        check_origins: false,
        ..UpdateLimits::default()
    }
}

fn check_outgoing(update: &[u8]) {
    validate_update_v1(update, &state_limits()).expect("what the server sends must validate");
    Update::decode_v1(update).expect("what the server sends must decode");
}

fuzz_target!(|data: &[u8]| {
    let room = room_doc(1000);
    let text = room.get_or_insert_text("t");
    let mut index = DocIndex::default();
    // Updates the room holds until the clocks they follow arrive (`room/held.rs`).
    let mut held: Vec<Held> = Vec::new();
    // Whether an item with origins out of their run's order went in (RULES.md): Yjs' own redo
    // writes them, and where it lands depends on what the document held, so the room's
    // in-memory order may then differ from its encoding's, which is all it ever serves.
    let mut reordered = false;
    // Frames are length-prefixed by one byte, so the fuzzer can cut the input into messages.
    let mut rest = data;
    let mut messages = 0;
    while let Some((&len, tail)) = rest.split_first() {
        let len = usize::from(len).min(tail.len());
        let (frame, tail) = tail.split_at(len);
        rest = tail;
        messages += 1;
        if messages > MAX_MESSAGES {
            break;
        }
        let Ok(message) = Message::decode(&Bytes::copy_from_slice(frame)) else {
            continue; // the connection would close with 1007
        };
        match message {
            Message::Sync(SyncMessage::Step1(sv)) => {
                let Ok(sv) = StateVector::decode_v1(&sv.encode()) else {
                    continue;
                };
                // As `RoomDoc::step2`: without the pending set.
                check_outgoing(&room.transact().encode_diff_v1(&sv));
            }
            Message::Sync(SyncMessage::Step2(update) | SyncMessage::Update(update)) => {
                if validate_update_v1(&update, &UpdateLimits::default()).is_err() {
                    continue; // closed with 1007/1008 before yrs sees it
                }
                if Update::decode_v1(&update).is_err() {
                    continue; // invalid JSON, which the validator leaves to yrs
                }
                // A refusal closes the connection; the fuzzer goes on with the next message.
                let _ = admit(&room, &mut index, &mut held, &update, &mut reordered);
                let _ = release(&room, &mut index, &mut held, &mut reordered);
            }
            Message::Awareness(_) | Message::QueryAwareness | Message::Auth(_) => {}
        }
    }
    // What a joiner gets (`RoomDoc::step2`): the integrated content, not the pending set.
    let state = room.transact().encode_diff_v1(&StateVector::default());
    check_outgoing(&state);
    let replica = room_doc(1001);
    let replica_text = replica.get_or_insert_text("t");
    replica
        .transact_mut()
        .apply_update(Update::decode_v1(&state).expect("checked above"))
        .expect("the room's own state applies to a fresh replica");
    assert_eq!(
        clocks(&replica),
        clocks(&room),
        "a joiner must end up with the room's state"
    );
    if !reordered {
        assert_eq!(
            replica_text.get_string(&replica.transact()),
            text.get_string(&room.transact()),
            "a joiner must read the room's text"
        );
    }
    // Whatever went in, two joiners read the same: the room serves one encoding.
    let second = room_doc(1002);
    second
        .transact_mut()
        .apply_update(Update::decode_v1(&state).expect("checked above"))
        .expect("applies");
    assert_eq!(
        second
            .get_or_insert_text("t")
            .get_string(&second.transact()),
        replica_text.get_string(&replica.transact()),
        "joiners read alike"
    );
});

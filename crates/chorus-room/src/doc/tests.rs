use super::*;
use chorus_protocol::update::validate_update_v1;
use yrs::types::ToJson;
use yrs::{GetString, Text};

fn edit(doc: &Doc, at: u32, text: &str) -> Vec<u8> {
    let before = doc.transact().state_vector();
    let name = doc.get_or_insert_text("t");
    name.insert(&mut doc.transact_mut(), at, text);
    doc.transact().encode_state_as_update_v1(&before)
}

#[test]
fn applies_updates_and_returns_each_delta_once() {
    let mut room = RoomDoc::new().expect("new doc");
    let client = Doc::with_client_id(7);
    let update = edit(&client, 0, "hello");
    let delta = room.apply(&update).expect("valid").expect("a change");
    assert_eq!(delta.frame()[..2], [0, 2]);
    assert_eq!(
        room.apply(&update).expect("valid"),
        None,
        "a duplicate changes nothing"
    );
}

#[test]
fn step2_answers_with_what_the_client_lacks_and_caches_the_full_state() {
    let mut room = RoomDoc::new().expect("new doc");
    let writer = Doc::with_client_id(7);
    room.apply(&edit(&writer, 0, "hello")).expect("apply");
    let full = room.step2(&StateVector::default()).expect("step2");
    let again = room
        .step2(&StateVector::from_iter([(99, 3)]))
        .expect("step2");
    assert_eq!(
        full.frame().as_ptr(),
        again.frame().as_ptr(),
        "encoded once, shared"
    );

    let reader = Doc::with_client_id(8);
    let payload = full.payload();
    reader
        .transact_mut()
        .apply_update(Update::decode_v1(&payload).expect("decodes"))
        .expect("applies");
    assert_eq!(
        reader
            .get_or_insert_text("t")
            .get_string(&reader.transact()),
        "hello"
    );

    room.apply(&edit(&writer, 5, " world")).expect("apply");
    let diff = room
        .step2(&StateVector::from_iter([(7, 5)]))
        .expect("step2");
    assert!(
        diff.frame().len()
            < room
                .step2(&StateVector::default())
                .expect("full")
                .frame()
                .len()
    );
}

/// An update by `client` writing `text` into root text `root`, as a new replica would.
fn write_as(client: u64, root: &str, text: &str) -> Vec<u8> {
    let doc = Doc::with_client_id(client);
    let shared = doc.get_or_insert_text(root);
    shared.insert(&mut doc.transact_mut(), 0, text);
    doc.transact()
        .encode_state_as_update_v1(&yrs::StateVector::default())
}

/// "o" by `client` at clock 0, right of clock 3 of `origin`: it must wait for `origin`.
fn after_missing_origin(client: u8, origin: u8) -> Vec<u8> {
    vec![1, 1, client, 0, 0x84, origin, 3, 1, b'o', 0]
}

impl RoomDoc {
    /// [`RoomDoc::apply_client`] for a connection that sends just this update.
    fn apply_client_alone(
        &mut self,
        update: &[u8],
    ) -> Result<Option<SyncFrame>, ClientUpdateError> {
        self.apply_client(update, &mut 0).map(|applied| {
            assert!(applied.held.is_empty(), "nothing held: {:?}", applied.held);
            applied.delta
        })
    }
}

fn limited(limits: DocLimits) -> RoomDoc {
    RoomDoc::with_limits(limits).expect("new doc")
}

fn over_limit(result: Result<Option<SyncFrame>, ClientUpdateError>) -> &'static str {
    match result {
        Err(ClientUpdateError::OverLimit { reason, .. }) => reason,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[test]
fn one_connection_may_bring_only_so_many_new_clients_over_several_updates() {
    let mut room = limited(DocLimits {
        max_clients_per_connection: 2,
        ..DocLimits::UNLIMITED
    });
    let mut introduced = 0;
    room.apply_client(&write_as(1, "t", "a"), &mut introduced)
        .expect("first client");
    room.apply_client(&write_as(2, "t", "b"), &mut introduced)
        .expect("second client");
    let before = room.state_vector().expect("sv");
    let refused = room
        .apply_client(&write_as(3, "t", "c"), &mut introduced)
        .map(|applied| applied.delta);
    assert_eq!(
        over_limit(refused),
        "too many client ids from one connection"
    );
    assert_eq!(room.state_vector().expect("sv"), before, "nothing applied");
    assert_eq!(introduced, 2);
    // Another connection has its own allowance.
    room.apply_client(&write_as(3, "t", "c"), &mut 0)
        .expect("another connection");
    // Ids the document already has cost nothing.
    let again = write_as(1, "u", "d");
    let mut more = 0;
    room.apply_client(&write_as(4, "t", "e"), &mut more)
        .expect("new");
    room.apply_client(&write_as(5, "t", "f"), &mut more)
        .expect("new");
    assert_eq!(more, 2);
    let _ = room.apply_client(&again, &mut more);
    assert_eq!(more, 2, "a known client id is not new");
}

#[test]
fn an_update_naming_too_many_new_clients_is_refused_and_changes_nothing() {
    let mut room = limited(DocLimits {
        max_clients: 2,
        ..DocLimits::UNLIMITED
    });
    room.apply_client_alone(&write_as(1, "t", "a"))
        .expect("first client");
    room.apply_client_alone(&write_as(2, "t", "b"))
        .expect("second client");
    let before = room.snapshot().expect("snapshot");
    let reason = over_limit(room.apply_client_alone(&write_as(3, "t", "c")));
    assert!(reason.contains("client ids"), "{reason}");
    assert_eq!(room.snapshot().expect("snapshot"), before);
    // Known clients may go on writing.
    let more = Doc::with_client_id(1);
    let shared = more.get_or_insert_text("t");
    more.transact_mut()
        .apply_update(Update::decode_v1(&before).expect("decodes"))
        .expect("applies");
    let sv = more.transact().state_vector();
    shared.insert(&mut more.transact_mut(), 0, "x");
    let next = more.transact().encode_state_as_update_v1(&sv);
    assert!(
        room.apply_client_alone(&next)
            .expect("known client")
            .is_some()
    );
}

#[test]
fn an_update_growing_the_document_past_its_size_is_refused_and_changes_nothing() {
    let mut room = limited(DocLimits {
        max_bytes: 1000,
        ..DocLimits::UNLIMITED
    });
    room.apply_client_alone(&write_as(1, "t", &"a".repeat(400)))
        .expect("fits");
    let before = room.snapshot().expect("snapshot");
    let reason = over_limit(room.apply_client_alone(&write_as(2, "t", &"b".repeat(700))));
    assert!(reason.contains("too large"), "{reason}");
    assert_eq!(room.snapshot().expect("snapshot"), before);
    room.apply_client_alone(&write_as(3, "t", &"c".repeat(300)))
        .expect("still fits");
    // The server's own writes (snapshots, log, other nodes) are not limited.
    room.apply(&write_as(4, "t", &"d".repeat(2000)))
        .expect("trusted");
}

#[test]
fn structs_waiting_for_missing_dependencies_are_capped_and_dropped_again() {
    let mut room = limited(DocLimits {
        max_pending: 3,
        ..DocLimits::UNLIMITED
    });
    room.apply_client_alone(&write_as(1, "t", "hello"))
        .expect("base");
    for client in 10..13 {
        assert_eq!(
            room.apply_client_alone(&after_missing_origin(client, client + 10))
                .expect("under the cap"),
            None,
            "nothing integrates yet"
        );
    }
    assert_eq!(room.pending, 3);
    let before = room.snapshot().expect("snapshot");
    let reason = over_limit(room.apply_client_alone(&after_missing_origin(13, 23)));
    assert!(reason.contains("missing dependencies"), "{reason}");
    assert_eq!(room.pending, 3, "the refused update's structs were dropped");
    assert_eq!(room.snapshot().expect("snapshot"), before);
    // What was pending before still integrates once its dependency arrives.
    room.apply_client_alone(&write_as(20, "t", "abcd"))
        .expect("dependency");
    assert_eq!(room.pending, 2);
}

/// Applies `update` for a connection and returns what was held.
fn held_of(room: &mut RoomDoc, update: &[u8]) -> Vec<HeldUpdate> {
    room.apply_client(update, &mut 0).expect("not refused").held
}

#[test]
fn an_update_past_the_documents_clock_is_held_until_the_clocks_before_it_arrive() {
    let mut room = limited(DocLimits::UNLIMITED);
    room.apply_client_alone(&write_as(1, "t", "hello"))
        .expect("base");
    let before = room.snapshot().expect("snapshot");
    // "gap" at clock 10 of client 1, which the document has up to clock 5.
    let gap = [1, 1, 1, 10, 0x84, 1, 9, 3, b'g', b'a', b'p', 0];
    let held = held_of(&mut room, &gap);
    assert_eq!(
        held,
        vec![HeldUpdate {
            update: gap.to_vec(),
            needs: vec![(1, 10)]
        }]
    );
    assert_eq!(
        room.snapshot().expect("snapshot"),
        before,
        "nothing applied"
    );
    // Clocks 5..10 arrive ("world"), then the held update goes in like any other.
    let world = [1, 1, 1, 5, 0x84, 1, 4, 5, b'w', b'o', b'r', b'l', b'd', 0];
    room.apply_client_alone(&world).expect("the missing clocks");
    room.apply_client_alone(&held[0].update)
        .expect("in step now")
        .expect("a change");
    assert_eq!(
        room.doc
            .get_or_insert_text("t")
            .get_string(&room.doc.transact()),
        "helloworldgap"
    );
}

#[test]
fn a_trusted_update_past_the_documents_clock_waits_inside_the_document() {
    // Another node's update that overtook the one before it: yrs would integrate it behind
    // a hole and panic when the hole's content came (BlockStore::push).
    let mut room = RoomDoc::new().expect("new doc");
    room.apply(&write_as(1, "t", "hello")).expect("base");
    let gap = [1, 1, 1, 10, 0x84, 1, 9, 3, b'g', b'a', b'p', 0];
    assert_eq!(room.apply(&gap).expect("not refused"), None, "nothing yet");
    assert_eq!(room.waiting(), 1);
    let world = [1, 1, 1, 5, 0x84, 1, 4, 5, b'w', b'o', b'r', b'l', b'd', 0];
    let delta = room.apply(&world).expect("the hole").expect("a change");
    assert_eq!(room.waiting(), 0);
    let text = |doc: &Doc| doc.get_or_insert_text("t").get_string(&doc.transact());
    assert_eq!(text(&room.doc), "helloworldgap");
    // One delta carries both, so peers get the waiting part too.
    let peer = Doc::new();
    peer.transact_mut()
        .apply_update(Update::decode_v1(&write_as(1, "t", "hello")).expect("decodes"))
        .expect("applies");
    peer.transact_mut()
        .apply_update(Update::decode_v1(&delta.payload()).expect("decodes"))
        .expect("applies");
    assert_eq!(text(&peer), "helloworldgap");
}

#[test]
fn a_skip_inside_an_update_applies_what_comes_before_it_and_holds_the_rest() {
    let mut room = limited(DocLimits::UNLIMITED);
    room.apply_client_alone(&write_as(1, "t", "hello"))
        .expect("base");
    // "!" right after the document's clock, a hole of 3, "?" after it.
    let skip = [
        1, 3, 1, 5, 0x84, 1, 4, 1, b'!', 0x0a, 3, 0x84, 1, 8, 1, b'?', 0,
    ];
    let held = held_of(&mut room, &skip);
    assert_eq!(held.len(), 1);
    assert_eq!(held[0].needs, vec![(1, 9)]);
    let text = |room: &RoomDoc| {
        room.doc
            .get_or_insert_text("t")
            .get_string(&room.doc.transact())
    };
    assert_eq!(text(&room), "hello!");
    // The hole: clocks 6..9 ("abc").
    room.apply_client_alone(&[1, 1, 1, 6, 0x84, 1, 5, 3, b'a', b'b', b'c', 0])
        .expect("the hole");
    room.apply_client_alone(&held[0].update)
        .expect("in step now");
    assert_eq!(text(&room), "hello!abc?");
}

#[test]
fn an_update_straddling_the_documents_clock_applies_its_new_tail() {
    let mut room = limited(DocLimits::UNLIMITED);
    let hello = write_as(1, "t", "hello");
    room.apply_client_alone(&hello).expect("base");
    // Clocks 3..8 of client 1: "lo" the document holds, "abc" it does not. The tail
    // integrates right of clock 4, as Yjs does with a struct it partly knows.
    let straddling = [1, 1, 1, 3, 0x84, 1, 2, 5, b'l', b'o', b'a', b'b', b'c', 0];
    room.apply_client_alone(&straddling)
        .expect("not refused")
        .expect("a change");
    assert_eq!(
        room.doc
            .get_or_insert_text("t")
            .get_string(&room.doc.transact()),
        "helloabc"
    );
    // All of it again (a client's step 2 racing its own update) changes nothing.
    assert_eq!(room.apply_client_alone(&hello).expect("a resend"), None);
}

#[test]
fn an_item_whose_origins_the_document_lacks_is_held_until_they_arrive() {
    let mut room = limited(DocLimits::UNLIMITED);
    room.apply_client_alone(&write_as(1, "t", "abcdefgh"))
        .expect("base");
    // "x" by client 2 between clocks 9 and 2 of client 1, which the document has up to 8.
    let ahead = [1, 1, 2, 0, 0xc4, 1, 9, 1, 2, 1, b'x', 0];
    let held = held_of(&mut room, &ahead);
    assert_eq!(held.len(), 1);
    assert_eq!(held[0].needs, vec![(1, 10)]);
}

#[test]
fn a_cut_inside_an_emoji_reads_as_in_yjs_and_deleting_the_halves_keeps_lengths_sound() {
    // "k😀z" by client 1, then "x" by client 2 with its origins inside the emoji (the exact
    // bytes Yjs 13.6 writes for `text.insert(2, 'x')`), then client 1 deletes all it wrote. Yjs writes
    // U+FFFD into both halves; counted in UTF-8 bytes, deleting them underflowed yrs' text
    // length (a panic in this build, which checks overflow).
    let mut room = limited(DocLimits::UNLIMITED);
    room.apply_client_alone(&[
        1, 1, 1, 0, 4, 1, 1, b't', 6, b'k', 0xf0, 0x9f, 0x98, 0x80, b'z', 0,
    ])
    .expect("the emoji");
    room.apply_client_alone(&[1, 1, 2, 0, 0xc4, 1, 1, 1, 2, 1, b'x', 0])
        .expect("a cut inside it is not refused")
        .expect("a change");
    let text = |doc: &Doc| doc.get_or_insert_text("t").get_string(&doc.transact());
    assert_eq!(text(&room.doc), "k\u{fffd}x\u{fffd}z", "as Yjs reads it");
    let replica = Doc::new();
    let state = room.snapshot().expect("state");
    replica
        .transact_mut()
        .apply_update(Update::decode_v1(&state).expect("decodes"))
        .expect("applies");
    assert_eq!(text(&replica), text(&room.doc));
    room.apply_client_alone(&[0, 1, 1, 1, 0, 4])
        .expect("the delete")
        .expect("a change");
    assert_eq!(text(&room.doc), "x");
    assert_eq!(
        room.doc.get_or_insert_text("t").len(&room.doc.transact()),
        1
    );
    // The fuzz finding that first showed the underflow, through the trusted path.
    let mut trusted = RoomDoc::new().expect("new doc");
    let _ = trusted.apply(include_bytes!(
        "../../../chorus-protocol/fuzz/regressions/yrs-delete-block-len-underflow.bin"
    ));
    trusted.snapshot().expect("still usable");
}

/// Replays a file of one-byte-length-prefixed y-websocket frames (the room fuzz target's
/// format) through the room as one connection, held updates included, and checks that a
/// joiner built from the room's state reads exactly what the room reads.
fn replay_as_one_connection(frames: &[u8]) -> RoomDoc {
    let mut room = RoomDoc::new().expect("new doc");
    let mut held: Vec<HeldUpdate> = Vec::new();
    let mut rest = frames;
    while let Some((&len, tail)) = rest.split_first() {
        let (frame, tail) = tail.split_at(usize::from(len).min(tail.len()));
        rest = tail;
        let Ok(chorus_protocol::Message::Sync(
            chorus_protocol::SyncMessage::Update(update)
            | chorus_protocol::SyncMessage::Step2(update),
        )) = chorus_protocol::Message::decode(&Bytes::copy_from_slice(frame))
        else {
            continue;
        };
        if validate_update_v1(&update, &UpdateLimits::default()).is_err() {
            continue;
        }
        if let Ok(applied) = room.apply_client(&update, &mut 0) {
            held.extend(applied.held);
        }
        while let Some(ready) = held.iter().position(|h| {
            let sv = room.state_vector().expect("sv");
            h.needs.iter().all(|&(client, clock)| {
                sv.entries
                    .iter()
                    .any(|&(c, have)| c == client && have >= clock)
            })
        }) {
            let update = held.remove(ready).update;
            if let Ok(applied) = room.apply_client(&update, &mut 0) {
                held.extend(applied.held);
            }
        }
    }
    let joiner = Doc::new();
    let state = room.snapshot().expect("state");
    joiner
        .transact_mut()
        .apply_update(Update::decode_v1(&state).expect("decodes"))
        .expect("applies");
    // Root types made by updates are untyped until read as something: read "t" as text.
    let text = |doc: &Doc| doc.get_or_insert_text("t").get_string(&doc.transact());
    assert_eq!(
        text(&joiner),
        text(&room.doc),
        "a joiner reads the room's text"
    );
    assert_eq!(
        contents(&joiner),
        contents(&room.doc),
        "a joiner reads the room"
    );
    room
}

#[test]
fn items_next_to_collected_content_are_taken_and_read_alike_everywhere() {
    // Both were refused ('update refers to collected content') or forked the room before
    // yrs was patched to collect such items as Yjs does (vendor/yrs/CHORUS-PATCHES.md).
    for frames in [
        &include_bytes!(
            "../../../chorus-protocol/fuzz/regressions/room-origin-in-collected-content.bin"
        )[..],
        &include_bytes!(
            "../../../chorus-protocol/fuzz/regressions/room-pending-item-then-gc-origin.bin"
        )[..],
    ] {
        replay_as_one_connection(frames);
    }
}

/// Every root type of `doc` as JSON, by name.
fn contents(doc: &Doc) -> Vec<(String, String)> {
    let txn = doc.transact();
    let mut roots: Vec<(String, String)> = txn
        .root_refs()
        .map(|(name, value)| (name.to_owned(), format!("{:?}", value.to_json(&txn))))
        .collect();
    roots.sort();
    roots
}

#[test]
fn content_yrs_collects_while_applying_reads_the_same_in_a_replica() {
    // Items whose parents lie inside deleted string content, which yrs collects while
    // applying, and a later item with one of them as its origin (`fuzz/FUZZING.md`, finding
    // 12): whatever the room keeps, a joiner must read the same.
    let update = include_bytes!(
        "../../../chorus-protocol/fuzz/regressions/vta-origin-in-content-yrs-collects.bin"
    );
    for with_seed in [false, true] {
        let mut room = RoomDoc::new().expect("new doc");
        if with_seed {
            room.apply(&write_as(1, "t", "hello")).expect("seed");
        }
        let applied = room.apply_client_alone(update);
        assert!(
            matches!(applied, Ok(Some(_))),
            "the room takes it (seed: {with_seed}): {applied:?}"
        );
        let joined = Doc::new();
        let state = room.snapshot().expect("state");
        joined
            .transact_mut()
            .apply_update(Update::decode_v1(&state).expect("decodes"))
            .expect("applies");
        assert_eq!(contents(&joined), contents(&room.doc), "seed: {with_seed}");
        assert_eq!(
            joined.transact().state_vector(),
            room.doc.transact().state_vector()
        );
    }
}

#[test]
fn what_yrs_applied_before_refusing_a_struct_is_kept_consistent_and_sent() {
    // Two updates from the room fuzz target: the first waits for client 31337; the second
    // brings it but has a struct whose parent is not a type, which yrs refuses midway.
    let input: &[u8] = include_bytes!(
        "../../../chorus-protocol/fuzz/regressions/room-partial-apply-then-pending.bin"
    );
    let mut room = RoomDoc::new().expect("new doc");
    let mut sent = Vec::new();
    let mut rest = input;
    while let Some((&len, tail)) = rest.split_first() {
        let (frame, tail) = tail.split_at(usize::from(len).min(tail.len()));
        rest = tail;
        if let Ok(chorus_protocol::Message::Sync(
            chorus_protocol::SyncMessage::Update(update)
            | chorus_protocol::SyncMessage::Step2(update),
        )) = chorus_protocol::Message::decode(&Bytes::copy_from_slice(frame))
            && let Ok(Some(delta)) = room.apply(&update)
        {
            sent.push(delta.payload());
        }
    }
    assert!(!sent.is_empty(), "the partly applied update went out");
    let state_vector = |doc: &Doc| {
        let mut sv: Vec<(u64, u32)> = doc
            .transact()
            .state_vector()
            .iter()
            .filter(|&(_, &clock)| clock > 0)
            .map(|(client, &clock)| (client.get(), clock))
            .collect();
        sv.sort_unstable();
        sv
    };
    let room_sv = state_vector(&room.doc);
    // A joiner built from the room's state, and a peer built from what the room sent.
    let joiner = Doc::with_client_id(1);
    let state = room.snapshot().expect("snapshot");
    joiner
        .transact_mut()
        .apply_update(Update::decode_v1(&state).expect("decodes"))
        .expect("applies");
    assert_eq!(state_vector(&joiner), room_sv);
    let peer = Doc::with_client_id(2);
    for delta in sent {
        let _ = peer
            .transact_mut()
            .apply_update(Update::decode_v1(&delta).expect("decodes"));
    }
    assert_eq!(state_vector(&peer), room_sv);
}

#[test]
fn malformed_updates_are_refused() {
    let mut room = RoomDoc::new().expect("new doc");
    assert!(matches!(
        room.apply(&[0xff, 0xff]),
        Err(DocError::Invalid(_))
    ));
    assert_eq!(room.snapshot().expect("snapshot").as_ref(), [0, 0]);
}

#[test]
fn contains_says_whether_an_update_would_change_nothing() {
    let mut room = RoomDoc::new().expect("new doc");
    let writer = Doc::with_client_id(7);
    room.apply(&edit(&writer, 0, "hello")).expect("apply");
    let before = writer.transact().state_vector();
    writer
        .get_or_insert_text("t")
        .remove_range(&mut writer.transact_mut(), 0, 2);
    let deletion = writer.transact().encode_state_as_update_v1(&before);
    assert!(
        !room.contains(&deletion).expect("checks"),
        "a deletion not made yet"
    );
    room.apply(&deletion).expect("apply");
    // What a read-only provider's step 2 holds once it has everything: no structs, but the
    // whole delete set (Yjs always sends it).
    let repeat = writer
        .transact()
        .encode_state_as_update_v1(&writer.transact().state_vector());
    assert_ne!(repeat, EMPTY_UPDATE, "the delete set comes along");
    assert!(room.contains(&repeat).expect("checks"));
    assert!(room.contains(EMPTY_UPDATE).expect("checks"));
    assert!(
        !room.contains(&edit(&writer, 0, "x")).expect("checks"),
        "a new edit"
    );
    let other = Doc::with_client_id(9);
    assert!(
        !room.contains(&edit(&other, 0, "y")).expect("checks"),
        "another client's edit"
    );
    assert!(!room.contains(&[0xff, 0xff]).expect("checks"), "malformed");
}

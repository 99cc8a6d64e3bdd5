//! Every decision a room makes, driven through [`RoomCore`] as the server's task drives it.

use std::time::Duration;

use chorus_protocol::awareness::encode_entries;
use chorus_protocol::message::{SYNC_UPDATE, sync_frame};
use chorus_protocol::{AwarenessUpdate, SyncMessage};
use yrs::updates::decoder::Decode;
use yrs::{Doc, GetString, ReadTxn, Text, Transact, Update};

use super::*;
use crate::effect::{Publish, Snapshot};
use crate::held::HeldLimits;
use crate::ids::NodeId;
use crate::room::relay::Remote;
use crate::{DocLimits, Wake};

fn settings() -> RoomSettings {
    RoomSettings {
        snapshot_interval: Duration::from_secs(2),
        idle_timeout: Duration::from_secs(30),
        awareness_timeout: Duration::from_secs(30),
        relay_resync_interval: Duration::from_secs(60),
        max_peers: 3,
        change_debounce: Duration::from_secs(1),
        doc_limits: DocLimits {
            max_bytes: 1 << 20,
            max_clients: 100,
            max_clients_per_connection: 10,
            max_pending: 1000,
        },
        held_limits: HeldLimits {
            max_updates: 2,
            max_bytes: 1 << 16,
        },
    }
}

/// A room and its clock.
struct Harness {
    room: RoomCore<u8>,
    now: Instant,
}

impl Harness {
    fn new(around: Surroundings) -> Self {
        let now = Instant::now();
        Self {
            room: RoomCore::new(settings(), around, now).expect("a room"),
            now,
        }
    }

    fn effects(&mut self) -> Vec<Effect<u8>> {
        std::iter::from_fn(|| self.room.poll_effect()).collect()
    }

    /// Effects, with every append completed at once (as a fast log would).
    fn settled(&mut self) -> Vec<Effect<u8>> {
        let mut all = Vec::new();
        loop {
            let batch = self.effects();
            if batch.is_empty() {
                return all;
            }
            for effect in batch {
                if matches!(effect, Effect::Append(_)) {
                    self.room.appended(Some(1));
                }
                all.push(effect);
            }
        }
    }

    fn join(&mut self, can_write: bool) -> ConnId {
        let conn = ConnId::next();
        assert!(self.room.join(conn, can_write).expect("join"));
        conn
    }

    fn send(&mut self, conn: ConnId, msg: Message) {
        self.room.receive(conn, msg, self.now).expect("no panic");
    }

    fn advance(&mut self, by: Duration) -> Wake {
        self.now += by;
        self.room.wake(self.now).expect("no panic")
    }
}

fn update_msg(update: Vec<u8>) -> Message {
    Message::Sync(SyncMessage::Update(update.into()))
}

/// A client's edit: `text` inserted at the end of its text "t".
fn typed(doc: &Doc, text: &str) -> Vec<u8> {
    let before = doc.transact().state_vector();
    let shared = doc.get_or_insert_text("t");
    let len = shared.len(&doc.transact());
    shared.insert(&mut doc.transact_mut(), len, text);
    doc.transact().encode_state_as_update_v1(&before)
}

fn room_text(room: &mut RoomCore<u8>) -> String {
    let doc = Doc::new();
    let state = room.read(None).expect("read");
    doc.transact_mut()
        .apply_update(Update::decode_v1(&state).expect("decodes"))
        .expect("applies");
    doc.get_or_insert_text("t").get_string(&doc.transact())
}

fn closes(effects: &[Effect<u8>]) -> Vec<(ConnId, u16, String)> {
    effects
        .iter()
        .filter_map(|effect| match effect {
            Effect::Close { conn, code, reason } => Some((*conn, *code, reason.to_string())),
            _ => None,
        })
        .collect()
}

#[test]
fn a_joiner_gets_step1_then_presence_and_a_full_room_refuses() {
    let mut h = Harness::new(Surroundings::default());
    let first = h.join(true);
    let effects = h.effects();
    assert!(
        matches!(&effects[..], [Effect::Send { conn, frame }] if *conn == first && frame[..2] == [0, 0])
    );
    let entries = vec![AwarenessEntry {
        client: 5,
        clock: 1,
        state: Bytes::from_static(b"{\"name\":\"a\"}"),
    }];
    h.send(first, Message::Awareness(AwarenessUpdate { entries }));
    let second = h.join(true);
    let sent: Vec<Bytes> = h
        .effects()
        .into_iter()
        .filter_map(|e| match e {
            Effect::Send { conn, frame } if conn == second => Some(frame),
            _ => None,
        })
        .collect();
    assert_eq!(sent.len(), 2, "step 1, then the awareness, as two frames");
    assert_eq!(sent[1][0], 1, "an awareness message");
    h.join(true);
    assert!(
        !h.room.join(ConnId::next(), true).expect("join"),
        "max_peers is 3"
    );
    assert_eq!(h.room.peer_count(), 3);
}

#[test]
fn an_update_is_logged_before_it_is_fanned_out_and_published() {
    let mut h = Harness::new(Surroundings {
        shared: true,
        listened: false,
    });
    let (writer, reader) = (h.join(true), h.join(true));
    h.effects();
    let client = Doc::with_client_id(1);
    h.send(writer, update_msg(typed(&client, "hi")));
    let effects = h.effects();
    let [Effect::Append(batch)] = &effects[..] else {
        panic!("only the append comes first: {effects:?}");
    };
    let payload = batch[0].clone();
    h.room.appended(Some(7));
    let effects = h.effects();
    let Effect::Broadcast { frame, except } = &effects[0] else {
        panic!("the broadcast: {effects:?}");
    };
    assert_eq!(*except, Some(writer), "everyone but the sender");
    assert!(frame.ends_with(&payload), "the same bytes, framed once");
    assert_eq!(effects[1], Effect::Publish(Publish::Update(payload)));
    assert_eq!(room_text(&mut h.room), "hi");
    let _ = reader;
}

#[test]
fn updates_during_an_append_go_out_together_in_the_next() {
    let mut h = Harness::new(Surroundings::default());
    let writer = h.join(true);
    h.effects();
    let client = Doc::with_client_id(1);
    h.send(writer, update_msg(typed(&client, "a")));
    assert!(matches!(h.effects()[..], [Effect::Append(_)]));
    h.send(writer, update_msg(typed(&client, "b")));
    h.send(writer, update_msg(typed(&client, "c")));
    assert!(h.effects().is_empty(), "one append at a time");
    h.room.appended(Some(1));
    let effects = h.effects();
    let appends: Vec<usize> = effects
        .iter()
        .filter_map(|e| match e {
            Effect::Append(batch) => Some(batch.len()),
            _ => None,
        })
        .collect();
    assert_eq!(appends, [2], "group commit");
}

#[test]
fn a_sync_step1_answer_waits_for_updates_not_yet_logged() {
    let mut h = Harness::new(Surroundings::default());
    let (writer, joiner) = (h.join(true), h.join(true));
    h.effects();
    h.send(writer, update_msg(typed(&Doc::with_client_id(1), "x")));
    h.effects();
    h.send(
        joiner,
        Message::Sync(SyncMessage::Step1(StateVector::default())),
    );
    assert!(
        h.effects().is_empty(),
        "the answer holds an unlogged update"
    );
    h.room.appended(Some(1));
    let effects = h.effects();
    assert!(
        effects
            .iter()
            .any(|e| matches!(e, Effect::Send { conn, .. } if *conn == joiner))
    );
}

#[test]
fn a_read_only_peer_is_told_and_nothing_is_applied() {
    let mut h = Harness::new(Surroundings::default());
    let reader = h.join(false);
    h.effects();
    h.send(reader, update_msg(typed(&Doc::with_client_id(1), "no")));
    let effects = h.effects();
    assert!(
        matches!(&effects[..], [Effect::Send { conn, frame }] if *conn == reader && frame[0] == 2),
        "permission denied: {effects:?}"
    );
    assert_eq!(room_text(&mut h.room), "");
}

#[test]
fn an_update_before_its_clocks_is_held_then_applied() {
    let mut h = Harness::new(Surroundings::default());
    let writer = h.join(true);
    h.effects();
    let client = Doc::with_client_id(1);
    let first = typed(&client, "a");
    let second = typed(&client, "b");
    h.send(writer, update_msg(second));
    let effects = h.settled();
    assert!(effects.contains(&Effect::Count(Counted::Held)));
    assert_eq!(h.room.held_count(writer), 1);
    assert_eq!(room_text(&mut h.room), "");
    h.send(writer, update_msg(first));
    h.settled();
    assert_eq!(h.room.held_count(writer), 0);
    assert_eq!(room_text(&mut h.room), "ab");
}

#[test]
fn too_many_held_updates_close_only_their_connection() {
    let mut h = Harness::new(Surroundings::default());
    let (writer, other) = (h.join(true), h.join(true));
    h.effects();
    let client = Doc::with_client_id(1);
    let _gap = typed(&client, "a");
    for text in ["b", "c", "d"] {
        h.send(writer, update_msg(typed(&client, text)));
    }
    let closed = closes(&h.settled());
    assert_eq!(closed.len(), 1, "{closed:?}");
    assert_eq!(closed[0].0, writer);
    assert_eq!(closed[0].1, close_code::POLICY);
    assert!(closed[0].2.starts_with("[too_many_held]"));
    assert_eq!(h.room.peer_count(), 1);
    assert_eq!(h.room.held_count(writer), 0, "its held updates go with it");
    let _ = other;
}

#[test]
fn a_refused_update_closes_its_sender_with_the_rule() {
    let mut h = Harness::new(Surroundings::default());
    let writer = h.join(true);
    h.effects();
    // An update naming more new client ids than one connection may bring.
    let mut updates = Vec::new();
    for client in 1..=11 {
        updates.push(typed(&Doc::with_client_id(client), "x"));
    }
    let merged = yrs::merge_updates_v1(&updates).expect("merges");
    h.send(writer, update_msg(merged));
    let effects = h.settled();
    let closed = closes(&effects);
    assert_eq!(closed.len(), 1);
    assert_eq!(closed[0].1, close_code::POLICY);
    assert!(closed[0].2.starts_with("[too_many_clients_per_connection]"));
    assert!(effects.contains(&Effect::Count(Counted::Refused(
        "too_many_clients_per_connection"
    ))));
}

#[test]
fn a_full_outbox_closes_the_slow_peer_with_1013() {
    let mut h = Harness::new(Surroundings::default());
    let slow = h.join(true);
    h.effects();
    h.room.unreachable(slow, true, h.now);
    let effects = h.effects();
    assert_eq!(
        closes(&effects),
        [(slow, 1013, "too slow; reconnect to resync".into())]
    );
    assert!(effects.contains(&Effect::Count(Counted::SlowPeer)));
    assert_eq!(h.room.peer_count(), 0);
}

#[test]
fn presence_is_batched_and_goes_with_its_connection() {
    let mut h = Harness::new(Surroundings {
        shared: true,
        listened: false,
    });
    let (a, b) = (h.join(true), h.join(true));
    h.effects();
    let entry = |clock| AwarenessEntry {
        client: 9,
        clock,
        state: Bytes::from_static(b"{}"),
    };
    h.send(
        a,
        Message::Awareness(AwarenessUpdate {
            entries: vec![entry(1)],
        }),
    );
    h.send(
        a,
        Message::Awareness(AwarenessUpdate {
            entries: vec![entry(2)],
        }),
    );
    assert!(h.effects().is_empty(), "batched");
    h.advance(crate::settings::PRESENCE_BATCH);
    let effects = h.effects();
    let broadcasts = effects
        .iter()
        .filter(|e| matches!(e, Effect::Broadcast { except: None, .. }))
        .count();
    assert_eq!(broadcasts, 1, "one batch, the sender included");
    let published = encode_entries([entry(2)].iter());
    assert!(effects.contains(&Effect::Publish(Publish::Awareness(published.into()))));
    // Another connection cannot take over client 9 while its owner is connected.
    h.send(
        b,
        Message::Awareness(AwarenessUpdate {
            entries: vec![entry(3)],
        }),
    );
    h.advance(crate::settings::PRESENCE_BATCH);
    assert!(h.effects().is_empty());
    h.room.leave(a, h.now);
    h.advance(crate::settings::PRESENCE_BATCH);
    let effects = h.effects();
    assert!(
        matches!(&effects[0], Effect::Broadcast { frame, .. } if frame.ends_with(b"null")),
        "the removal: {effects:?}"
    );
}

#[test]
fn remote_presence_goes_when_its_node_does() {
    let mut h = Harness::new(Surroundings {
        shared: true,
        listened: false,
    });
    h.join(true);
    h.effects();
    let node = NodeId(4);
    let update = encode_entries(
        [AwarenessEntry {
            client: 3,
            clock: 0,
            state: Bytes::from_static(b"{}"),
        }]
        .iter(),
    );
    h.room
        .remote(node, Remote::Awareness(update.into()), h.now)
        .expect("no panic");
    h.advance(crate::settings::PRESENCE_BATCH);
    let effects = h.effects();
    assert!(
        !effects.iter().any(|e| matches!(e, Effect::Publish(_))),
        "another node's presence is not published back"
    );
    h.room.node_gone(node, h.now);
    h.advance(crate::settings::PRESENCE_BATCH);
    assert!(
        matches!(&h.effects()[..], [Effect::Broadcast { frame, .. }] if frame.ends_with(b"null"))
    );
}

#[test]
fn a_remote_update_is_logged_and_sent_but_not_published_or_announced() {
    let mut h = Harness::new(Surroundings {
        shared: true,
        listened: true,
    });
    h.join(true);
    h.effects();
    let update = typed(&Doc::with_client_id(1), "remote");
    h.room
        .remote(NodeId(2), Remote::Update(update.into()), h.now)
        .expect("no panic");
    let effects = h.settled();
    assert!(effects.iter().any(|e| matches!(e, Effect::Append(_))));
    assert!(
        effects
            .iter()
            .any(|e| matches!(e, Effect::Broadcast { except: None, .. }))
    );
    assert!(!effects.iter().any(|e| matches!(e, Effect::Publish(_))));
    h.advance(Duration::from_secs(10));
    assert!(!h.effects().iter().any(|e| matches!(e, Effect::Announce(_))));
}

#[test]
fn a_remote_update_after_a_gap_asks_for_a_resync() {
    let mut h = Harness::new(Surroundings {
        shared: true,
        listened: false,
    });
    let client = Doc::with_client_id(1);
    let _missed = typed(&client, "a");
    let later = typed(&client, "b");
    h.room
        .remote(NodeId(2), Remote::Update(later.into()), h.now)
        .expect("no panic");
    let effects = h.settled();
    assert!(
        effects
            .iter()
            .any(|e| matches!(e, Effect::Publish(Publish::SyncRequest(_)))),
        "{effects:?}"
    );
}

#[test]
fn a_sync_request_is_answered_with_the_diff_and_a_request_back() {
    let mut h = Harness::new(Surroundings {
        shared: true,
        listened: false,
    });
    let writer = h.join(true);
    h.send(writer, update_msg(typed(&Doc::with_client_id(1), "here")));
    h.settled();
    // The other node has client 2's edit, which this one lacks.
    let theirs = StateVector::from_iter([(2, 5)]).encode();
    h.room
        .remote(NodeId(2), Remote::SyncRequest(theirs.into()), h.now)
        .expect("no panic");
    let effects = h.effects();
    assert!(matches!(&effects[0], Effect::Publish(Publish::Update(_))));
    assert!(matches!(
        &effects[1],
        Effect::Publish(Publish::SyncRequest(_))
    ));
}

#[test]
fn a_shared_room_resyncs_periodically_and_a_local_one_never() {
    let mut shared = Harness::new(Surroundings {
        shared: true,
        listened: false,
    });
    shared.join(true);
    shared.effects();
    shared.advance(Duration::from_secs(60));
    assert!(
        shared
            .effects()
            .iter()
            .any(|e| matches!(e, Effect::Publish(Publish::SyncRequest(_))))
    );
    let mut local = Harness::new(Surroundings::default());
    local.join(true);
    local.effects();
    local.advance(Duration::from_secs(60));
    local.room.resync().expect("no panic");
    assert!(local.effects().is_empty());
}

#[test]
fn changes_are_announced_after_the_debounce_and_at_most_five_periods_late() {
    let mut h = Harness::new(Surroundings {
        shared: false,
        listened: true,
    });
    let writer = h.join(true);
    let client = Doc::with_client_id(1);
    let mut announced = 0;
    // Edits every 0.5 s never leave a quiet second; the 5 s cap still announces.
    for _ in 0..11 {
        h.send(writer, update_msg(typed(&client, "x")));
        h.settled();
        h.advance(Duration::from_millis(500));
        announced += h
            .settled()
            .iter()
            .filter(|e| matches!(e, Effect::Announce(_)))
            .count();
    }
    assert_eq!(announced, 1, "once, at the cap");
    h.advance(Duration::from_secs(1));
    let after_quiet = h.settled();
    assert!(after_quiet.iter().any(|e| matches!(e, Effect::Announce(_))));
}

#[test]
fn a_snapshot_follows_the_first_change_and_a_failed_one_is_retried() {
    let mut h = Harness::new(Surroundings::default());
    let writer = h.join(true);
    h.send(writer, update_msg(typed(&Doc::with_client_id(1), "s")));
    h.settled();
    assert!(h.room.is_dirty());
    assert_eq!(h.room.deadline(), Some(h.now + Duration::from_secs(2)));
    h.advance(Duration::from_secs(2));
    let effects = h.effects();
    let [Effect::Save(Snapshot { covered, .. })] = &effects[..] else {
        panic!("a snapshot: {effects:?}");
    };
    assert_eq!(*covered, 1, "it covers what was logged");
    assert!(!h.room.is_dirty());
    h.room.snapshot_saved(false, h.now);
    assert!(h.room.is_dirty());
    h.advance(Duration::from_secs(2));
    assert!(matches!(h.effects()[..], [Effect::Save(_)]));
}

#[test]
fn an_empty_room_unloads_after_the_idle_timeout_and_saves_first() {
    let mut h = Harness::new(Surroundings::default());
    let writer = h.join(true);
    h.send(writer, update_msg(typed(&Doc::with_client_id(1), "keep")));
    h.settled();
    assert_eq!(
        h.advance(Duration::from_secs(31)),
        Wake::Continue,
        "someone is here"
    );
    h.room.leave(writer, h.now);
    h.settled();
    assert_eq!(h.advance(Duration::from_secs(29)), Wake::Continue);
    assert_eq!(h.advance(Duration::from_secs(1)), Wake::Unload);
    let snapshot = h.room.final_snapshot().expect("no panic");
    let unsaved = snapshot.is_some() || h.effects().iter().any(|e| matches!(e, Effect::Save(_)));
    assert!(unsaved || !h.room.is_dirty());
    h.room.postpone_unload(h.now);
    assert_eq!(
        h.advance(Duration::from_secs(1)),
        Wake::Continue,
        "postponed"
    );
}

#[test]
fn a_server_write_is_answered_once_durable_and_a_bad_one_at_once() {
    let mut h = Harness::new(Surroundings::default());
    let peer = h.join(true);
    h.effects();
    let update = typed(&Doc::with_client_id(1), "api");
    h.room.write(&update, 1, h.now).expect("no panic");
    let effects = h.effects();
    assert!(matches!(&effects[..], [Effect::Append(_)]), "{effects:?}");
    h.room.appended(Some(1));
    let effects = h.effects();
    assert!(matches!(
        &effects[0],
        Effect::Broadcast { except: None, .. }
    ));
    assert_eq!(effects[1], Effect::Answer(1, Ok(())));
    h.room.write(&[0xff, 0xff], 2, h.now).expect("no panic");
    assert!(matches!(&h.effects()[..], [Effect::Answer(2, Err(_))]));
    let _ = peer;
}

#[test]
fn deletion_closes_everyone_with_4404_and_forgets_unlogged_work() {
    let mut h = Harness::new(Surroundings {
        shared: true,
        listened: false,
    });
    let writer = h.join(true);
    h.effects();
    h.send(writer, update_msg(typed(&Doc::with_client_id(1), "gone")));
    h.effects();
    h.room.delete();
    let effects = h.effects();
    assert_eq!(effects[0], Effect::Publish(Publish::Deleted));
    assert_eq!(
        closes(&effects),
        [(writer, 4404, "document deleted".into())]
    );
    h.room.appended(Some(1));
    assert!(h.effects().is_empty(), "nothing that waited is sent");
    assert!(!h.room.is_dirty());
}

#[test]
fn a_failed_room_closes_everyone_with_1011() {
    let mut h = Harness::new(Surroundings::default());
    let (a, b) = (h.join(true), h.join(false));
    h.effects();
    h.room.fail();
    let mut closed = closes(&h.effects());
    closed.sort();
    assert_eq!(closed.len(), 2);
    assert!(closed.iter().all(|(_, code, _)| *code == 1011));
    assert!(
        closed.iter().any(|(conn, ..)| *conn == a) && closed.iter().any(|(conn, ..)| *conn == b)
    );
}

#[test]
fn loading_replays_the_log_after_the_snapshot_and_skips_bad_records() {
    let mut h = Harness::new(Surroundings::default());
    let client = Doc::with_client_id(1);
    let snapshot = typed(&client, "a");
    let record = typed(&client, "b");
    h.room.load_snapshot(&snapshot).expect("loads");
    let replayed = h
        .room
        .replay(
            vec![(4, Bytes::from_static(&[0xff])), (5, record.into())],
            h.now,
        )
        .expect("replays");
    assert_eq!(replayed, 2);
    assert_eq!(room_text(&mut h.room), "ab");
    assert!(h.room.is_dirty(), "the log goes into the next snapshot");
    h.advance(Duration::from_secs(2));
    assert!(matches!(
        &h.effects()[..],
        [Effect::Save(Snapshot { covered: 5, .. })]
    ));
}

#[test]
fn initial_content_is_checked_like_a_client_update() {
    let mut h = Harness::new(Surroundings::default());
    assert!(matches!(
        h.room.load_initial(&sync_frame(SYNC_UPDATE, &[0, 0])),
        Err(LoadError::InitialRefused(_))
    ));
    let content = typed(&Doc::with_client_id(1), "template");
    let snapshot = h.room.load_initial(&content).expect("loads");
    assert!(!snapshot.is_empty());
    assert_eq!(room_text(&mut h.room), "template");
}

#[test]
fn what_a_client_update_releases_from_other_nodes_reaches_that_client_too() {
    let mut h = Harness::new(Surroundings {
        shared: true,
        listened: false,
    });
    let (reconnected, other) = (h.join(true), h.join(true));
    h.effects();
    // Client 7 typed twice on another node; this node missed the first update, so the second
    // waits for its clocks.
    let remote_writer = Doc::with_client_id(7);
    let first = typed(&remote_writer, "a");
    let second = typed(&remote_writer, "b");
    h.room
        .remote(NodeId(2), Remote::Update(second.into()), h.now)
        .expect("no panic");
    h.settled();
    // A client that has the first update (its sync step 2 after a reconnect, say) sends it: the
    // second is released, and the sender lacks it.
    h.send(reconnected, update_msg(first.clone()));
    let effects = h.settled();
    let to_sender: Vec<&Bytes> = effects
        .iter()
        .filter_map(|e| match e {
            Effect::Broadcast { frame, except } if *except != Some(reconnected) => Some(frame),
            _ => None,
        })
        .collect();
    // The sender's copy: it had the first update, and gets what the room sends it.
    let doc = Doc::new();
    doc.transact_mut()
        .apply_update(Update::decode_v1(&first).expect("decodes"))
        .expect("applies");
    for frame in &to_sender {
        let Ok(Message::Sync(SyncMessage::Update(update))) = Message::decode(frame) else {
            continue;
        };
        doc.transact_mut()
            .apply_update(Update::decode_v1(&update).expect("decodes"))
            .expect("applies");
    }
    assert!(
        doc.get_or_insert_text("t")
            .get_string(&doc.transact())
            .contains('b'),
        "the sender gets the released part: {effects:?}"
    );
    assert_eq!(room_text(&mut h.room), "ab");
    let _ = other;
}

#[test]
fn a_durable_acknowledgement_leaves_when_the_append_lands() {
    let mut h = Harness::new(Surroundings::default());
    let (writer, other) = (h.join(true), h.join(true));
    h.effects();
    let ack = Bytes::from_static(b"ack");
    let client = Doc::with_client_id(1);
    h.send(writer, update_msg(typed(&client, "x")));
    h.room.when_durable(writer, ack.clone());
    let effects = h.effects();
    assert!(
        matches!(&effects[..], [Effect::Append(_)]),
        "only the append, the acknowledgement waits: {effects:?}"
    );
    // An update that arrives while the first append runs goes into the next one; its
    // acknowledgement waits for that one, not the first.
    h.send(writer, update_msg(typed(&client, "y")));
    h.room.when_durable(writer, Bytes::from_static(b"second"));
    assert!(h.effects().is_empty());
    h.room.appended(Some(1));
    let sent: Vec<Bytes> = h
        .effects()
        .into_iter()
        .filter_map(|e| match e {
            Effect::Send { conn, frame } if conn == writer => Some(frame),
            _ => None,
        })
        .collect();
    assert_eq!(
        sent,
        std::slice::from_ref(&ack),
        "the first, and only the first"
    );
    h.room.appended(Some(2));
    let sent: Vec<Bytes> = h
        .effects()
        .into_iter()
        .filter_map(|e| match e {
            Effect::Send { conn, frame } if conn == writer => Some(frame),
            _ => None,
        })
        .collect();
    assert_eq!(sent, [Bytes::from_static(b"second")]);
    // Nothing unlogged: at once.
    h.room.when_durable(other, ack.clone());
    assert_eq!(
        h.effects(),
        [Effect::Send {
            conn: other,
            frame: ack
        }]
    );
}

#[test]
fn a_refused_update_gets_no_durable_acknowledgement() {
    let mut h = Harness::new(Surroundings::default());
    let writer = h.join(true);
    h.effects();
    // Not a Yjs update at all: yrs refuses it and the sender is closed.
    h.send(writer, update_msg(vec![0xff, 0xff, 0xff]));
    h.room.when_durable(writer, Bytes::from_static(b"ack"));
    let effects = h.effects();
    assert_eq!(closes(&effects).len(), 1, "{effects:?}");
    assert!(
        !effects.iter().any(|e| matches!(e, Effect::Send { .. })),
        "no acknowledgement for a closed connection: {effects:?}"
    );
}

#[test]
fn a_held_update_is_acknowledged_only_once_it_is_applied_and_logged() {
    let mut h = Harness::new(Surroundings::default());
    let writer = h.join(true);
    h.effects();
    let client = Doc::with_client_id(1);
    let first = typed(&client, "a");
    let second = typed(&client, "b");
    let acks = |effects: Vec<Effect<u8>>| -> usize {
        effects
            .iter()
            .filter(|e| matches!(e, Effect::Send { frame, .. } if frame.as_ref() == b"ack"))
            .count()
    };
    h.send(writer, update_msg(second));
    h.room.when_durable(writer, Bytes::from_static(b"ack"));
    assert_eq!(h.room.held_count(writer), 1);
    assert_eq!(acks(h.settled()), 0, "the held update is not stored");
    h.send(writer, update_msg(first));
    let effects = h.effects();
    assert!(matches!(&effects[..], [Effect::Append(_)]), "{effects:?}");
    h.room.appended(Some(1));
    assert_eq!(acks(h.effects()), 1, "both are in the log now");
    assert_eq!(room_text(&mut h.room), "ab");
}

#[test]
fn an_abandoned_append_is_never_acknowledged() {
    let mut h = Harness::new(Surroundings::default());
    let writer = h.join(true);
    h.effects();
    let client = Doc::with_client_id(1);
    h.send(writer, update_msg(typed(&client, "a")));
    h.room.when_durable(writer, Bytes::from_static(b"ack"));
    h.effects();
    // Shutdown with a failing store: the append is given up.
    h.room.appended(None);
    h.send(writer, update_msg(typed(&client, "b")));
    h.room.when_durable(writer, Bytes::from_static(b"ack"));
    let acked = h
        .settled()
        .into_iter()
        .chain(h.effects())
        .any(|e| matches!(e, Effect::Send { frame, .. } if frame.as_ref() == b"ack"));
    assert!(!acked, "\"a\" is not in the log, and \"b\" follows it");
}

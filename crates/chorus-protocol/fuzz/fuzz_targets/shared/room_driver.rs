//! The room the fuzz targets drive: `chorus_room::RoomCore`, the same core the server's room
//! task drives, behind the connection's first check (`validate_update_v1`, as `ws.rs` does).
//! Log appends complete at once. The bodies of the `room` and `validate_then_apply` targets
//! live here too, so that `chorus-room`'s regression test replays `regressions/` through
//! exactly what the fuzzer runs.

#![allow(dead_code)]

use std::time::{Duration, Instant};

use bytes::Bytes;
use chorus_protocol::update::{UpdateLimits, validate_update_v1};
use chorus_protocol::{Message, StateVector, SyncMessage};
use chorus_room::doc::whole_document_limits;
use chorus_room::{
    ConnId, DocLimits, Effect, HeldLimits, RoomCore, RoomDoc, RoomSettings, Surroundings,
};
use yrs::encoding::read::Error;
use yrs::updates::decoder::Decode;
use yrs::{ClientID, Doc, GetString, OffsetKind, Options, ReadTxn, Transact, Update};

/// Most updates the room holds for one connection (`--max-pending-structs`, kept small so runs
/// stay fast).
pub const MAX_HELD: usize = 64;

/// What the server sends must pass its own validator and decode.
pub fn check_outgoing(update: &[u8]) {
    validate_update_v1(update, &whole_document_limits())
        .expect("what the server sends must validate");
    Update::decode_v1(update).expect("what the server sends must decode");
}

/// A document as the room makes one: text counted in UTF-16 units, as Yjs counts it.
pub fn room_doc(client: u64) -> Doc {
    Doc::with_options(Options {
        client_id: ClientID::new(client),
        offset_kind: OffsetKind::Utf16,
        ..Options::default()
    })
}

/// A document's state vector, sorted, without clients at clock 0: yrs may keep one there (an
/// update whose structs all went pending, say), which means the same as no entry.
pub fn clocks(doc: &Doc) -> Vec<(u64, u32)> {
    let sv = doc.transact().state_vector();
    nonzero_sorted(sv.iter().map(|(client, &clock)| (client.get(), clock)))
}

fn nonzero_sorted(entries: impl Iterator<Item = (u64, u32)>) -> Vec<(u64, u32)> {
    let mut sv: Vec<(u64, u32)> = entries.filter(|&(_, clock)| clock > 0).collect();
    sv.sort_unstable();
    sv
}

/// One room with connections that write.
pub struct RoomDriver {
    core: RoomCore<()>,
    now: Instant,
    /// Whether an item with origins out of their run's order went in (RULES.md): Yjs' own redo
    /// writes them, and where it lands depends on what the document held, so the room's
    /// in-memory order may then differ from its encoding's, which is all it ever serves.
    pub reordered: bool,
}

impl RoomDriver {
    pub fn new() -> Self {
        let settings = RoomSettings {
            snapshot_interval: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(30),
            awareness_timeout: Duration::from_secs(30),
            relay_resync_interval: Duration::from_secs(60),
            max_peers: usize::MAX,
            change_debounce: Duration::from_secs(2),
            doc_limits: DocLimits::UNLIMITED,
            held_limits: HeldLimits {
                max_updates: MAX_HELD,
                max_bytes: usize::MAX,
            },
        };
        let now = Instant::now();
        let core = RoomCore::new(settings, Surroundings::default(), now).expect("a new room");
        Self {
            core,
            now,
            reordered: false,
        }
    }

    /// A writing connection.
    pub fn join(&mut self) -> ConnId {
        let conn = ConnId::next();
        assert!(self.core.join(conn, true).expect("no panic on join"));
        self.settle(conn).expect("a join closes nothing");
        conn
    }

    /// One decoded message from `conn`, past the connection's check; returns the frames sent
    /// to it, or why the room closed it.
    pub fn receive(&mut self, conn: ConnId, message: Message) -> Result<Vec<Bytes>, String> {
        if let Message::Sync(SyncMessage::Step2(update) | SyncMessage::Update(update)) = &message {
            let summary = validate_update_v1(update, &UpdateLimits::default())
                .map_err(|error| format!("the connection's check: {error}"))?;
            self.reordered |= summary.origins_out_of_order > 0;
        }
        self.core
            .receive(conn, message, self.now)
            .unwrap_or_else(|_| panic!("the document engine panicked"));
        self.settle(conn)
    }

    /// A Yjs v1 update from `conn`, as an update message.
    pub fn update(&mut self, conn: ConnId, update: &[u8]) -> Result<(), String> {
        let message = Message::Sync(SyncMessage::Update(Bytes::copy_from_slice(update)));
        self.receive(conn, message).map(drop)
    }

    /// Carries out the effects: appends complete at once, and every frame sent anywhere must
    /// be one the server may send.
    fn settle(&mut self, conn: ConnId) -> Result<Vec<Bytes>, String> {
        let (mut sent, mut closed) = (Vec::new(), None);
        while let Some(effect) = self.core.poll_effect() {
            match effect {
                Effect::Append(batch) => {
                    for update in &batch {
                        check_outgoing(update);
                    }
                    self.core.appended(Some(1));
                }
                Effect::Send { conn: to, frame } => {
                    check_frame(&frame);
                    if to == conn {
                        sent.push(frame);
                    }
                }
                Effect::Broadcast { frame, .. } => check_frame(&frame),
                Effect::Close {
                    conn: to, reason, ..
                } if to == conn => {
                    closed = Some(reason.into_owned());
                }
                _ => {}
            }
        }
        closed.map_or(Ok(sent), Err)
    }

    /// Sync step 2 for a peer at `sv`: the integrated content it lacks.
    pub fn step2(&mut self, sv: &StateVector) -> Vec<u8> {
        let update = self.core.read(Some(sv)).expect("no panic on read").to_vec();
        check_outgoing(&update);
        update
    }

    /// Updates `conn` keeps waiting.
    pub fn held(&self, conn: ConnId) -> usize {
        self.core.held_count(conn)
    }

    /// The room's state vector, as [`clocks`] gives it.
    pub fn clocks(&self) -> Vec<(u64, u32)> {
        let sv = self.core.doc().state_vector().expect("no panic");
        nonzero_sorted(sv.entries.into_iter())
    }

    /// The room's own text "t", in memory.
    pub fn text(&self) -> String {
        self.core.doc().text("t").expect("no panic")
    }
}

/// A frame the server sends must decode, and a document update in it must validate.
fn check_frame(frame: &Bytes) {
    if let Message::Sync(SyncMessage::Step2(update) | SyncMessage::Update(update)) =
        Message::decode(frame).expect("what the server sends must decode")
    {
        check_outgoing(&update);
    }
}

/// A room's path over a sequence of length-prefixed messages from one connection (which
/// reconnects whenever the room closes it), then a joiner's check: what it gets gives the
/// room's state vector and, unless origins out of order went in, the room's text; two joiners
/// read alike.
pub fn run_room(data: &[u8]) {
    /// A run holds at most this many messages, to keep runs fast.
    const MAX_MESSAGES: usize = 64;
    let mut room = RoomDriver::new();
    let mut conn = room.join();
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
        if room.receive(conn, message).is_err() {
            // The room closed it; the client reconnects.
            conn = room.join();
        }
    }
    let state = room.step2(&StateVector::default());
    let replica = room_doc(1001);
    let replica_text = replica.get_or_insert_text("t");
    replica
        .transact_mut()
        .apply_update(Update::decode_v1(&state).expect("checked"))
        .expect("the room's own state applies to a fresh replica");
    assert_eq!(
        clocks(&replica),
        room.clocks(),
        "a joiner must end up with the room's state"
    );
    if !room.reordered {
        assert_eq!(
            replica_text.get_string(&replica.transact()),
            room.text(),
            "a joiner must read the room's text"
        );
    }
    let second = room_doc(1002);
    second
        .transact_mut()
        .apply_update(Update::decode_v1(&state).expect("checked"))
        .expect("applies");
    assert_eq!(
        second
            .get_or_insert_text("t")
            .get_string(&second.transact()),
        replica_text.get_string(&replica.transact()),
        "joiners read alike"
    );
}

/// Client 1 typed "hello" into text "t" and client 2 set map "m".k = 1 (v1 updates).
const SEED_UPDATES: [&[u8]; 2] = [
    &[
        0x01, 0x01, 0x01, 0x00, 0x04, 0x01, 0x01, 0x74, 0x05, 0x68, 0x65, 0x6c, 0x6c, 0x6f, 0x00,
    ],
    &[
        0x01, 0x01, 0x02, 0x00, 0x28, 0x01, 0x01, 0x6d, 0x01, 0x6b, 0x01, 0x7d, 0x01, 0x00,
    ],
];

/// What the server does with one client update: the connection's check, then the room's
/// document (`RoomDoc::apply_client`), fresh and already holding seed content. Whatever the
/// check accepts must decode in yrs (or fail only on invalid JSON, which it leaves to yrs),
/// apply without panicking, and leave a state that validates and decodes again.
pub fn run_validate_then_apply(data: &[u8]) {
    if validate_update_v1(data, &UpdateLimits::default()).is_err() {
        return;
    }
    match Update::decode_v1(data) {
        Ok(_) => {}
        Err(Error::InvalidJSON(_)) => return,
        Err(e) => panic!("validator accepted what yrs cannot decode: {e}"),
    }
    let fresh = RoomDoc::new().expect("a new document");
    let mut known = RoomDoc::new().expect("a new document");
    for seed in SEED_UPDATES {
        known.apply(seed).expect("the seed applies");
    }
    for mut doc in [fresh, known] {
        // Refused, held or applied: only a panic is a finding.
        if let Err(chorus_room::doc::ClientUpdateError::Doc(chorus_room::DocError::Panicked)) =
            doc.apply_client(data, &mut 0)
        {
            panic!("the document engine panicked");
        }
        let state = doc.snapshot().expect("no panic");
        check_outgoing(&state);
    }
}

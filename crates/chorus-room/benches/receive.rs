//! What the room core costs per client update, without sockets: one typist's small update
//! (one character typed at the end of a text, as `chorus-loadtest run` sends) handed to
//! [`RoomCore::receive`] in a room of N connections, its append completed at once (as a fast
//! log would) and every effect taken, the broadcast included. This is steps 3-7 of the
//! crate's path; the connection's first validation pass is measured beside it.
//!
//! ```sh
//! cargo bench -p chorus-room --bench receive
//! # instructions per update (exact, not timed): the count of `receive_one`, divided by its calls
//! valgrind --tool=callgrind --collect-atstart=no --toggle-collect='*receive_one*' \
//!     target/release/deps/receive-* --bench --profile-time 2 'receive/10'
//! ```

use std::hint::black_box;
use std::time::{Duration, Instant};

use bytes::Bytes;
use chorus_protocol::{Message, UpdateLimits, validate_update_v1};
use chorus_room::{ConnId, DocLimits, Effect, HeldLimits, RoomCore, RoomSettings, Surroundings};
use criterion::{Criterion, criterion_group, criterion_main};
use yrs::{Doc, ReadTxn, Text, Transact};

/// Connections per room measured: scenario A's ten, and a larger room.
const ROOM_SIZES: [usize; 2] = [10, 100];

/// Updates one document takes before the bench starts a fresh one: the size of a room's
/// document in scenario A (10 updates/s for about a minute).
const DOC_UPDATES: u64 = 500;

fn settings(max_peers: usize) -> RoomSettings {
    RoomSettings {
        snapshot_interval: Duration::from_secs(3600),
        idle_timeout: Duration::from_secs(3600),
        awareness_timeout: Duration::from_secs(30),
        relay_resync_interval: Duration::from_secs(3600),
        max_peers,
        change_debounce: Duration::from_secs(1),
        doc_limits: DocLimits {
            max_bytes: 64 << 20,
            max_clients: 10_000,
            max_clients_per_connection: 100,
            max_pending: 10_000,
        },
        held_limits: HeldLimits {
            max_updates: 100,
            max_bytes: 1 << 20,
        },
    }
}

/// A room with `peers` connections, and the one that types.
fn room(peers: usize) -> (RoomCore<()>, ConnId) {
    let now = Instant::now();
    let mut room = RoomCore::new(settings(peers), Surroundings::default(), now).expect("a room");
    let conns: Vec<ConnId> = (0..peers).map(|_| ConnId::next()).collect();
    for &conn in &conns {
        assert!(room.join(conn, true).expect("joins"));
    }
    while room.poll_effect().is_some() {}
    (room, conns[0])
}

/// A typist: each call types one character at the end and returns the update frame, as a
/// y-websocket client sends it.
struct Typist {
    doc: Doc,
}

impl Typist {
    fn new() -> Self {
        Self {
            doc: Doc::with_client_id(7),
        }
    }

    fn next_frame(&mut self) -> Bytes {
        let text = self.doc.get_or_insert_text("t");
        let before = self.doc.transact().state_vector();
        let len = text.len(&self.doc.transact());
        text.insert(&mut self.doc.transact_mut(), len, "x");
        let update = self.doc.transact().encode_state_as_update_v1(&before);
        chorus_protocol::message::sync_frame(chorus_protocol::message::SYNC_UPDATE, &update)
    }
}

/// One update through the room: received, appended, fanned out. Returns how many frames went
/// out, so nothing is optimised away. Not inlined, so that callgrind can count it alone.
#[inline(never)]
fn receive_one(room: &mut RoomCore<()>, from: ConnId, frame: &Bytes, seq: &mut u64) -> usize {
    let msg = Message::decode(frame).expect("an update");
    room.receive(from, msg, Instant::now()).expect("no panic");
    let mut sent = 0;
    loop {
        let mut appended = false;
        while let Some(effect) = room.poll_effect() {
            match effect {
                Effect::Append(batch) => {
                    *seq += batch.len() as u64;
                    appended = true;
                }
                Effect::Broadcast { frame, .. } => sent += black_box(frame).len(),
                other => drop(black_box(other)),
            }
        }
        if !appended {
            return sent;
        }
        room.appended(Some(*seq));
    }
}

fn receive(c: &mut Criterion) {
    let mut group = c.benchmark_group("receive");
    for peers in ROOM_SIZES {
        group.bench_function(peers.to_string(), |b| {
            b.iter_custom(|iters| {
                let mut measured = Duration::ZERO;
                let mut left = iters;
                while left > 0 {
                    // A fresh room and typist every DOC_UPDATES updates, so that the figure
                    // is that of a document of scenario A's size, whatever the iteration count.
                    let n = left.min(DOC_UPDATES);
                    let (mut room, from) = room(peers);
                    let mut typist = Typist::new();
                    let frames: Vec<Bytes> = (0..n).map(|_| typist.next_frame()).collect();
                    let mut seq = 0;
                    let started = Instant::now();
                    for frame in &frames {
                        black_box(receive_one(&mut room, from, frame, &mut seq));
                    }
                    measured += started.elapsed();
                    left -= n;
                }
                measured
            });
        });
    }
    group.finish();
}

/// The first validation pass, which the connection's task runs before the room sees the
/// update (`chorus-server/src/ws/connection.rs`).
fn first_pass(c: &mut Criterion) {
    let mut typist = Typist::new();
    for _ in 0..1000 {
        typist.next_frame();
    }
    let frame = typist.next_frame();
    c.bench_function("first_pass", |b| {
        b.iter(|| {
            let Ok(Message::Sync(chorus_protocol::SyncMessage::Update(update))) =
                Message::decode(black_box(&frame))
            else {
                unreachable!("an update frame")
            };
            validate_update_v1(&update, &UpdateLimits::default()).expect("valid")
        });
    });
}

criterion_group!(benches, receive, first_pass);
criterion_main!(benches);

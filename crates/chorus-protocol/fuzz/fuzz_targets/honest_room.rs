//! Random honest editing sessions through the room: three yrs clients (text counted in UTF-16
//! units, as Yjs counts it; one with garbage collection off, as version-history setups run)
//! insert text with emoji at character boundaries, delete, format, embed, nest texts in a map,
//! undo and redo, go offline and come back, sometimes typing before their sync step 2, as Yjs
//! clients do. Every update a client sends goes through the connection's check and the room's
//! own core, one connection per client (`shared/room_driver.rs`).
//!
//! Checks: no refusal at all, and at the end, with everyone synced, every client and a replica
//! of the room's state hold the same state vector (and the same text, unless an item with
//! origins out of their run's order went in: Yjs' own redo writes those, see RULES.md).
#![no_main]

use std::sync::{Arc, Mutex, PoisonError};

use chorus_room::ConnId;
use libfuzzer_sys::fuzz_target;
use yrs::types::text::YChange;
use yrs::undo::Options as UndoOptions;
use yrs::updates::decoder::Decode;
use yrs::{
    Any, Doc, Map, MapRef, OffsetKind, Options, ReadTxn, StateVector, Text, TextPrelim, TextRef,
    Transact, UndoManager, Update,
};

#[path = "shared/room_driver.rs"]
mod room_driver;
use room_driver::{RoomDriver, clocks, room_doc};

/// Pieces clients type: ASCII, an emoji (a surrogate pair) and a flag (two pairs).
const PIECES: [&str; 5] = ["a", "😀", "bc", "🇯🇵", " "];

/// Origin of transactions applying what the room sent: not sent back, not undoable.
const REMOTE: &str = "remote";

struct Client {
    doc: Doc,
    text: TextRef,
    map: MapRef,
    undo: UndoManager,
    /// Updates of local transactions since last looked at.
    local: Arc<Mutex<Vec<Vec<u8>>>>,
    online: bool,
}

impl Client {
    fn new(id: u64, gc: bool) -> Self {
        let doc = Doc::with_options(Options {
            client_id: yrs::ClientID::new(id),
            offset_kind: OffsetKind::Utf16,
            skip_gc: !gc,
            ..Options::default()
        });
        let text = doc.get_or_insert_text("t");
        let map = doc.get_or_insert_map("m");
        let local = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&local);
        doc.observe_update_v1("honest", move |txn, event| {
            if !txn
                .origin()
                .is_some_and(|o| o.as_ref() == REMOTE.as_bytes())
            {
                sink.lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .push(event.update.clone());
            }
        })
        .expect("observe");
        let mut undo = UndoManager::with_options(UndoOptions {
            capture_timeout_millis: 0,
            ..UndoOptions::default()
        });
        undo.expand_scope(&doc, &text);
        undo.expand_scope(&doc, &map);
        Self {
            doc,
            text,
            map,
            undo,
            local,
            online: true,
        }
    }

    fn take_local(&self) -> Vec<Vec<u8>> {
        std::mem::take(&mut *self.local.lock().unwrap_or_else(PoisonError::into_inner))
    }

    /// UTF-16 offsets between characters of the text, an embed counting one: where a person
    /// can put the cursor.
    fn boundaries(&self) -> Vec<u32> {
        let mut at = vec![0];
        let mut unit = 0;
        for chunk in self.text.diff(&self.doc.transact(), YChange::identity) {
            match chunk.insert {
                yrs::Out::Any(Any::String(text)) => {
                    for c in text.chars() {
                        unit += c.len_utf16() as u32;
                        at.push(unit);
                    }
                }
                _ => {
                    unit += 1;
                    at.push(unit);
                }
            }
        }
        at
    }

    fn apply_remote(&self, update: &[u8]) {
        if update.len() > 2 {
            let update = Update::decode_v1(update).expect("what the room sends decodes");
            let _ = self.doc.transact_mut_with(REMOTE).apply_update(update);
        }
    }
}

/// The room, and each client's connection to it.
struct Room {
    driver: RoomDriver,
    conns: Vec<ConnId>,
}

impl Room {
    fn new(clients: usize) -> Self {
        let mut driver = RoomDriver::new();
        let conns = (0..clients).map(|_| driver.join()).collect();
        Self { driver, conns }
    }

    /// Client `who`'s update, as the connection and the room take it: any refusal is a
    /// finding.
    fn receive(&mut self, who: usize, update: &[u8]) {
        if let Err(error) = self.driver.update(self.conns[who], update) {
            panic!("the room refused an honest update ({error}): {update:02x?}");
        }
    }

    /// Sync step 2 for a client with state vector `sv`: the integrated content it lacks.
    fn step2(&mut self, sv: &StateVector) -> Vec<u8> {
        let sv = chorus_protocol::StateVector::decode(&yrs::updates::encoder::Encode::encode_v1(sv))
            .expect("a state vector");
        self.driver.step2(&sv)
    }

    fn held(&self) -> usize {
        self.conns.iter().map(|&conn| self.driver.held(conn)).sum()
    }
}

/// Sends a client's local updates to the room (if online) and brings every online client up
/// to date with the room, as the room's broadcasts would.
fn exchange(room: &mut Room, clients: &[Client], who: usize) {
    let updates = clients[who].take_local();
    if clients[who].online {
        for update in updates {
            room.receive(who, &update);
        }
    }
    for client in clients.iter().filter(|c| c.online) {
        let sv = client.doc.transact().state_vector();
        client.apply_remote(&room.step2(&sv));
    }
}

fuzz_target!(|data: &[u8]| {
    let mut room = Room::new(3);
    let mut clients = [
        Client::new(1, true),
        Client::new(2, true),
        Client::new(3, false),
    ];
    let mut bytes = data.iter().copied();
    let mut next = move || bytes.next();
    let mut steps = 0;
    while let (Some(op), Some(who), Some(arg)) = (next(), next(), next()) {
        steps += 1;
        if steps > 200 {
            break;
        }
        let who = usize::from(who) % clients.len();
        let client = &mut clients[who];
        let cuts = client.boundaries();
        let pick = |n: u8| cuts[usize::from(n) % cuts.len()];
        match op % 9 {
            0 | 1 => {
                let piece = PIECES[usize::from(arg) % PIECES.len()];
                client
                    .text
                    .insert(&mut client.doc.transact_mut(), pick(arg), piece);
            }
            2 => {
                let (a, b) = (pick(arg), pick(arg.wrapping_mul(7).wrapping_add(3)));
                let (from, to) = (a.min(b), a.max(b));
                if to > from {
                    client
                        .text
                        .remove_range(&mut client.doc.transact_mut(), from, to - from);
                }
            }
            3 => {
                let (a, b) = (pick(arg), pick(arg.wrapping_add(1)));
                let (from, to) = (a.min(b), a.max(b));
                if to > from {
                    let bold = [("bold".into(), Any::Bool(true))].into_iter().collect();
                    client
                        .text
                        .format(&mut client.doc.transact_mut(), from, to - from, bold);
                }
            }
            4 => {
                // A number, so that the text's chunks tell it from a string (an image's id).
                let embed = Any::from(f64::from(arg));
                client
                    .text
                    .insert_embed(&mut client.doc.transact_mut(), pick(arg), embed);
            }
            5 => {
                let key = format!("k{}", arg % 3);
                client.map.insert(
                    &mut client.doc.transact_mut(),
                    key,
                    TextPrelim::new(PIECES[usize::from(arg) % PIECES.len()]),
                );
            }
            6 => {
                client.undo.undo_blocking();
            }
            7 => {
                client.undo.redo_blocking();
            }
            _ => {
                if client.online {
                    client.online = false;
                } else {
                    // Back online: a y-websocket client may send an edit the moment its socket
                    // opens, before the sync step 2 that carries what it did offline.
                    let offline = client.take_local();
                    if arg % 2 == 0 {
                        let piece = PIECES[usize::from(arg) % PIECES.len()];
                        client
                            .text
                            .insert(&mut client.doc.transact_mut(), pick(arg), piece);
                        for update in client.take_local() {
                            room.receive(who, &update);
                        }
                    }
                    drop(offline);
                    let room_sv = room_state_vector(&room);
                    let step2 = client.doc.transact().encode_state_as_update_v1(&room_sv);
                    room.receive(who, &step2);
                    let sv = client.doc.transact().state_vector();
                    client.apply_remote(&room.step2(&sv));
                    client.online = true;
                }
            }
        }
        exchange(&mut room, &clients, who);
    }
    // Everyone comes back and syncs both ways, twice (what one learns, the others then get).
    for _ in 0..2 {
        for (who, client) in clients.iter_mut().enumerate() {
            client.take_local();
            let room_sv = room_state_vector(&room);
            room.receive(who, &client.doc.transact().encode_state_as_update_v1(&room_sv));
            client.online = true;
        }
        for client in &clients {
            let sv = client.doc.transact().state_vector();
            client.apply_remote(&room.step2(&sv));
        }
    }
    assert_eq!(room.held(), 0, "nothing waits once everyone synced");
    let replica = room_doc(1001);
    let state = room.step2(&StateVector::default());
    replica
        .transact_mut()
        .apply_update(Update::decode_v1(&state).expect("decodes"))
        .expect("applies");
    let diff = |doc: &Doc| {
        doc.get_or_insert_text("t")
            .diff(&doc.transact(), YChange::identity)
    };
    for client in &clients {
        assert_eq!(
            clocks(&client.doc),
            clocks(&replica),
            "a client and the room's state"
        );
        if !room.driver.reordered {
            assert_eq!(
                diff(&client.doc),
                diff(&replica),
                "a client reads the room's text"
            );
        }
    }
});

/// The room's state vector, as yrs takes it.
fn room_state_vector(room: &Room) -> StateVector {
    room.driver
        .clocks()
        .into_iter()
        .map(|(client, clock)| (yrs::ClientID::new(client), clock))
        .collect()
}

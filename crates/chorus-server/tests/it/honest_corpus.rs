//! The recorded honest-traffic corpus (`tests/corpus/honest/`, see its README): every frame real
//! npm yjs / y-websocket clients sent, replayed in the recorded global order through the path
//! the server takes (the connection's decoder and validator, then the room's document with its
//! held updates), must be accepted, and must leave the document equal to the union of what the
//! clients held at the end.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use crate::helpers::length_prefixed;
use bytes::Bytes;
use chorus_protocol::update::{UpdateLimits, validate_update_v1};
use chorus_protocol::{Message, StateVector, SyncMessage};
use chorus_server::Config;
use std::time::Instant;

use chorus_room::{ConnId, Counted, DocError, Effect, RoomCore, RoomSettings, Surroundings};
use yrs::types::ToJson;
use yrs::types::text::{Diff, YChange};
use yrs::updates::decoder::Decode;
use yrs::{
    Any, Array, Doc, GetString, Map, Out, ReadTxn, Text, Transact, Update, Xml, XmlFragment, XmlOut,
};

/// A yrs document counting text as Yjs does (UTF-16 code units), like the room's.
pub(crate) fn utf16_doc(client_id: Option<u64>, skip_gc: bool) -> Doc {
    let mut options = yrs::Options {
        offset_kind: yrs::OffsetKind::Utf16,
        skip_gc,
        ..yrs::Options::default()
    };
    if let Some(id) = client_id {
        options.client_id = yrs::block::ClientID::new(id);
    }
    Doc::with_options(options)
}

/// Why the server would close the connection that sent a frame.
#[derive(Debug)]
pub(crate) struct Refusal {
    /// The close code the server would send.
    pub code: u16,
    /// What refused it.
    pub detail: String,
}

/// What the room does with one client frame.
#[derive(Debug, Default)]
pub(crate) struct Outcome {
    /// The room's answer to the sender (sync step 2 for a step 1), as a Yjs v1 update.
    pub reply: Option<Vec<u8>>,
    /// What changed the document, in order, as Yjs v1 updates, each with the connection that
    /// already has it (the room sends it to every other connection; `None`: to all).
    pub deltas: Vec<(Option<usize>, Vec<u8>)>,
}

/// The server's path for one room, minus the sockets: the connection's decoder and validator
/// (`ws.rs`, `check`), then the room's own core (`chorus_room::RoomCore`, the same one the
/// server's room task drives) with the server's default limits. Log appends complete at once.
pub(crate) struct ServerRoom {
    core: RoomCore<()>,
    /// The room's connection id of each test connection, while it is in the room.
    conns: HashMap<usize, ConnId>,
    /// Updates (and parts of updates) the room held, over its life.
    pub held_total: usize,
    /// Updates the connections sent.
    pub updates: usize,
}

impl ServerRoom {
    pub fn new() -> Self {
        let config = Config::local("/nonexistent");
        // The server's own settings for its rooms, any number of connections.
        let settings = RoomSettings {
            max_peers: usize::MAX,
            ..config.room_settings()
        };
        let core =
            RoomCore::new(settings, Surroundings::default(), Instant::now()).expect("a new room");
        Self {
            core,
            conns: HashMap::new(),
            held_total: 0,
            updates: 0,
        }
    }

    /// The room's id of test connection `conn`, joining it on first use.
    fn conn(&mut self, conn: usize) -> ConnId {
        if let Some(&id) = self.conns.get(&conn) {
            return id;
        }
        let id = ConnId::next();
        assert!(self.core.join(id, true).expect("join"), "the room is full");
        self.conns.insert(conn, id);
        id
    }

    /// One binary WebSocket message from connection `conn`.
    pub fn receive(&mut self, conn: usize, frame: &[u8]) -> Result<Outcome, Refusal> {
        let message = Message::decode(&Bytes::copy_from_slice(frame)).map_err(|error| Refusal {
            code: 1007,
            detail: format!("malformed message: {error}"),
        })?;
        self.deliver(conn, message)
    }

    /// A decoded message from `conn`: the connection's check, then the room.
    fn deliver(&mut self, conn: usize, message: Message) -> Result<Outcome, Refusal> {
        if let Message::Sync(SyncMessage::Step2(update) | SyncMessage::Update(update)) = &message {
            first_pass(update)?;
            self.updates += 1;
        }
        let id = self.conn(conn);
        self.core
            .receive(id, message, Instant::now())
            .map_err(doc_refusal)?;
        self.outcome(conn)
    }

    /// A document update from `conn`, as if sent in an update message.
    pub fn update(
        &mut self,
        conn: usize,
        update: &[u8],
        outcome: &mut Outcome,
    ) -> Result<(), Refusal> {
        let message = Message::Sync(SyncMessage::Update(Bytes::copy_from_slice(update)));
        let more = self.deliver(conn, message)?;
        outcome.reply = outcome.reply.take().or(more.reply);
        outcome.deltas.extend(more.deltas);
        Ok(())
    }

    /// Carries out the room's effects: appends complete at once; what it sends is the outcome.
    fn outcome(&mut self, conn: usize) -> Result<Outcome, Refusal> {
        let sender = self.conns.get(&conn).copied();
        let mut outcome = Outcome::default();
        let mut refusal = None;
        while let Some(effect) = self.core.poll_effect() {
            match effect {
                Effect::Append(_) => self.core.appended(Some(0)),
                Effect::Send { conn: to, frame } if Some(to) == sender => {
                    if let Ok(Message::Sync(SyncMessage::Step2(update))) = Message::decode(&frame) {
                        outcome.reply = Some(update.to_vec());
                    }
                }
                Effect::Broadcast { frame, except } => {
                    if let Ok(Message::Sync(SyncMessage::Update(update))) = Message::decode(&frame)
                    {
                        let from = except.and_then(|except| {
                            self.conns
                                .iter()
                                .find(|&(_, &id)| id == except)
                                .map(|(&c, _)| c)
                        });
                        outcome.deltas.push((from, update.to_vec()));
                    }
                }
                Effect::Close {
                    conn: closed,
                    code,
                    reason,
                } => {
                    self.conns.retain(|_, id| *id != closed);
                    if Some(closed) == sender {
                        refusal = Some(Refusal {
                            code,
                            detail: reason.into_owned(),
                        });
                    }
                }
                Effect::Count(Counted::Held) => self.held_total += 1,
                _ => {}
            }
        }
        refusal.map_or(Ok(outcome), Err)
    }

    /// The connection leaves: what it kept waiting goes with it.
    pub fn leave(&mut self, conn: usize) {
        if let Some(id) = self.conns.remove(&conn) {
            self.core.leave(id, Instant::now());
            let _ = self.outcome(conn);
        }
    }

    /// Updates `conn` keeps waiting.
    pub fn held_count(&self, conn: usize) -> usize {
        self.conns
            .get(&conn)
            .map_or(0, |&id| self.core.held_count(id))
    }

    pub fn state_vector(&self) -> StateVector {
        self.core
            .doc()
            .state_vector()
            .expect("the room's state vector")
    }

    /// The room's state vector without clients at clock 0, sorted.
    pub fn clocks(&self) -> Vec<(u64, u32)> {
        nonzero_sorted(self.state_vector().entries)
    }

    /// What a joiner with nothing gets (sync step 2 to an empty state vector).
    pub fn joiner_state(&mut self) -> Vec<u8> {
        self.core
            .read(None)
            .expect("the room's full state")
            .to_vec()
    }

    /// What the room would store as a snapshot.
    pub fn snapshot(&mut self) -> Vec<u8> {
        self.core
            .encode_snapshot()
            .expect("the room's snapshot")
            .to_vec()
    }
}

/// The connection's validator (`ws.rs`), with the server's default limits.
fn first_pass(update: &[u8]) -> Result<(), Refusal> {
    validate_update_v1(update, &UpdateLimits::default())
        .map(|_| ())
        .map_err(|error| Refusal {
            code: if error.is_policy() { 1008 } else { 1007 },
            detail: format!("the connection's validator: {error}"),
        })
}

fn doc_refusal(error: DocError) -> Refusal {
    match error {
        DocError::Invalid(reason) => Refusal {
            code: 1007,
            detail: format!("apply_client: {reason}"),
        },
        DocError::Panicked => Refusal {
            code: 1011,
            detail: "yrs panicked".to_owned(),
        },
    }
}

pub(crate) fn nonzero_sorted(entries: impl IntoIterator<Item = (u64, u32)>) -> Vec<(u64, u32)> {
    let mut sv: Vec<(u64, u32)> = entries.into_iter().filter(|&(_, c)| c > 0).collect();
    sv.sort_unstable();
    sv
}

/// A yrs document's state vector without clients at clock 0, sorted.
pub(crate) fn doc_clocks(doc: &Doc) -> Vec<(u64, u32)> {
    nonzero_sorted(
        doc.transact()
            .state_vector()
            .iter()
            .map(|(client, &clock)| (client.get(), clock)),
    )
}

/// What kind of shared type a root is; roots that came in updates are untyped until read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RootKind {
    Text,
    XmlFragment,
    Map,
    Array,
}

/// Every named root of `doc`, read as its kind, rendered for comparison: text as its delta
/// (formatting and embeds included), XML as its string, maps and arrays entry by entry, with
/// nested shared types rendered the same way.
pub(crate) fn render_roots(doc: &Doc, roots: &[(&str, RootKind)]) -> BTreeMap<String, String> {
    // Reading a root as a kind needs a write transaction the first time: define them all first.
    for &(name, kind) in roots {
        match kind {
            RootKind::Text => drop(doc.get_or_insert_text(name)),
            RootKind::XmlFragment => drop(doc.get_or_insert_xml_fragment(name)),
            RootKind::Map => drop(doc.get_or_insert_map(name)),
            RootKind::Array => drop(doc.get_or_insert_array(name)),
        }
    }
    let txn = doc.transact();
    roots
        .iter()
        .map(|&(name, kind)| {
            let rendered = match kind {
                RootKind::Text => render(
                    &Out::YText(txn.get_text(name).expect("defined above")),
                    &txn,
                ),
                RootKind::XmlFragment => render(
                    &Out::YXmlFragment(txn.get_xml_fragment(name).expect("defined above")),
                    &txn,
                ),
                RootKind::Map => {
                    render(&Out::YMap(txn.get_map(name).expect("defined above")), &txn)
                }
                RootKind::Array => render(
                    &Out::YArray(txn.get_array(name).expect("defined above")),
                    &txn,
                ),
            };
            (name.to_owned(), rendered)
        })
        .collect()
}

/// A text's chunks, each its content and its attributes in key order.
fn render_chunks<T: ReadTxn>(diff: Vec<Diff<YChange>>, txn: &T) -> Vec<String> {
    diff.into_iter()
        .map(|chunk| {
            let attrs = chunk.attributes.map(|attrs| {
                let sorted: BTreeMap<String, String> = attrs
                    .iter()
                    .map(|(k, v)| (k.to_string(), render_any(v)))
                    .collect();
                format!("{sorted:?}")
            });
            format!(
                "{}{}",
                render(&chunk.insert, txn),
                attrs.unwrap_or_default()
            )
        })
        .collect()
}

fn render<T: ReadTxn>(value: &Out, txn: &T) -> String {
    match value {
        Out::Any(any) => render_any(any),
        Out::YText(text) => {
            let chunks = render_chunks(text.diff(txn, YChange::identity), txn);
            format!("text{chunks:?}")
        }
        Out::YMap(map) => {
            let entries: BTreeMap<String, String> = map
                .iter(txn)
                .map(|(k, v)| (k.to_owned(), render(&v, txn)))
                .collect();
            format!("map{entries:?}")
        }
        Out::YArray(array) => {
            let items: Vec<String> = array.iter(txn).map(|v| render(&v, txn)).collect();
            format!("array{items:?}")
        }
        Out::YXmlFragment(xml) => {
            let children: Vec<String> = xml
                .children(txn)
                .map(|child| render(&xml_out(child), txn))
                .collect();
            format!("fragment{children:?}")
        }
        Out::YXmlElement(xml) => {
            let attrs: BTreeMap<String, String> = xml
                .attributes(txn)
                .map(|(k, v)| (k.to_owned(), render(&v, txn)))
                .collect();
            let children: Vec<String> = xml
                .children(txn)
                .map(|child| render(&xml_out(child), txn))
                .collect();
            format!("<{}{attrs:?}>{children:?}", xml.tag())
        }
        Out::YXmlText(xml) => {
            let chunks = render_chunks(xml.diff(txn, YChange::identity), txn);
            format!("xmltext{chunks:?} = {:?}", xml.get_string(txn))
        }
        Out::YDoc(doc) => format!("subdoc {}", doc.guid()),
        other => format!("{:?}", other.to_json(txn)),
    }
}

fn xml_out(node: XmlOut) -> Out {
    match node {
        XmlOut::Element(e) => Out::YXmlElement(e),
        XmlOut::Fragment(f) => Out::YXmlFragment(f),
        XmlOut::Text(t) => Out::YXmlText(t),
    }
}

/// An `Any` with map keys sorted, so that equal values render alike.
fn render_any(any: &Any) -> String {
    match any {
        Any::Map(map) => {
            let sorted: BTreeMap<&String, String> =
                map.iter().map(|(k, v)| (k, render_any(v))).collect();
            format!("{sorted:?}")
        }
        Any::Array(items) => {
            let items: Vec<String> = items.iter().map(render_any).collect();
            format!("{items:?}")
        }
        other => format!("{other:?}"),
    }
}

/// Applies a Yjs v1 update to `doc` (as a remote change).
pub(crate) fn apply_to(doc: &Doc, update: &[u8]) {
    let update = Update::decode_v1(update).expect("a yrs-encoded update decodes");
    doc.transact_mut_with("remote")
        .apply_update(update)
        .expect("a yrs-encoded update applies");
}

// ---------------------------------------------------------------------------------------------
// The corpus.

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus/honest")
}

fn hex(text: &str) -> Vec<u8> {
    assert!(text.len().is_multiple_of(2), "hex of odd length");
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).expect("hex digits"))
        .collect()
}

fn rooms() -> Vec<PathBuf> {
    let mut rooms = Vec::new();
    for run in std::fs::read_dir(corpus_dir()).expect("the corpus directory") {
        let run = run.expect("a corpus entry").path();
        if !run.is_dir() {
            continue;
        }
        for room in std::fs::read_dir(&run).expect("a run directory") {
            let room = room.expect("a run entry").path();
            if room.join("manifest.json").is_file() {
                rooms.push(room);
            }
        }
    }
    rooms.sort();
    rooms
}

/// The roots the manifest's `final.content` names, with their kinds.
fn manifest_roots(content: &serde_json::Value) -> Vec<(String, RootKind)> {
    content
        .as_object()
        .expect("final.content is an object")
        .iter()
        .map(|(name, value)| {
            let kind = value
                .as_object()
                .and_then(|v| v.keys().next())
                .map(String::as_str);
            let kind = match kind {
                Some("delta") => RootKind::Text,
                Some("xml") => RootKind::XmlFragment,
                Some("map") => RootKind::Map,
                Some("array") => RootKind::Array,
                other => panic!("root {name}: unknown kind {other:?}"),
            };
            (name.clone(), kind)
        })
        .collect()
}

/// What replaying one room found; empty when all is well.
fn replay_room(room_dir: &Path) -> Vec<String> {
    let name = room_dir
        .strip_prefix(corpus_dir())
        .unwrap_or(room_dir)
        .display()
        .to_string();
    let manifest: serde_json::Value = serde_json::from_slice(
        &std::fs::read(room_dir.join("manifest.json")).expect("manifest.json"),
    )
    .expect("manifest.json is JSON");
    let connections = manifest["connections"]
        .as_array()
        .expect("manifest: connections");
    let files: Vec<Vec<Vec<u8>>> = connections
        .iter()
        .map(|conn| {
            let file = room_dir.join(conn["file"].as_str().expect("connection file"));
            length_prefixed(
                &std::fs::read(&file).expect("connection file"),
                &file.display().to_string(),
            )
        })
        .collect();
    let order: Vec<usize> = manifest["order"]
        .as_array()
        .expect("manifest: order")
        .iter()
        .map(|i| usize::try_from(i.as_u64().expect("order entries are indices")).expect("fits"))
        .collect();
    let order_ms: Vec<f64> = manifest["order_ms"]
        .as_array()
        .expect("manifest: order_ms")
        .iter()
        .map(|ms| ms.as_f64().expect("order_ms entries are numbers"))
        .collect();
    assert_eq!(order.len(), order_ms.len(), "{name}: order and order_ms");
    for (i, frames) in files.iter().enumerate() {
        let sent = order.iter().filter(|&&c| c == i).count();
        assert_eq!(
            sent,
            frames.len(),
            "{name}: conn {i}: frames in order vs file"
        );
    }
    // When each connection ended, as its client saw it (`close.at_ms`; `null`: still open at
    // the end). The room forgets a connection's held updates when it leaves; it leaves no
    // earlier than after its last frame.
    let closes: Vec<Option<f64>> = connections
        .iter()
        .map(|conn| conn["close"]["at_ms"].as_f64())
        .collect();

    let mut problems = Vec::new();
    let mut room = ServerRoom::new();
    let mut next_frame = vec![0usize; files.len()];
    let mut open = vec![false; files.len()];
    let mut left = vec![false; files.len()];
    for (index, (&conn, &at)) in order.iter().zip(&order_ms).enumerate() {
        // Connections that closed before this frame was sent have left the room.
        for other in 0..files.len() {
            if open[other]
                && !left[other]
                && next_frame[other] == files[other].len()
                && closes[other].is_some_and(|closed| closed < at)
            {
                left[other] = true;
                room.leave(other);
            }
        }
        open[conn] = true;
        let k = next_frame[conn];
        next_frame[conn] += 1;
        let frame = &files[conn][k];
        if let Err(refusal) = room.receive(conn, frame) {
            let client = connections[conn]["client"].as_str().unwrap_or("?");
            problems.push(format!(
                "{name}: connection {conn} ({client}, {}) frame {k} (global frame {index}, {} bytes: {}) refused with {}: {}",
                connections[conn]["file"].as_str().unwrap_or("?"),
                frame.len(),
                hex_of(&frame[..frame.len().min(64)]),
                refusal.code,
                refusal.detail
            ));
            // The server closes the connection; its client's next connection brings the rest.
            left[conn] = true;
            room.leave(conn);
        }
    }
    // What the still-open connections hold waiting is not in the document.
    let waiting: Vec<(usize, usize)> = (0..files.len())
        .filter(|&c| !left[c])
        .map(|c| (c, room.held_count(c)))
        .filter(|&(_, n)| n > 0)
        .collect();
    if !waiting.is_empty() {
        problems.push(format!(
            "{name}: updates still held at the end (connection, count): {waiting:?}"
        ));
    }

    // The expectation: `final.update_v1_hex`, the union of every client's document at the end.
    // Every client sent everything it created in some frame, so it is exactly what a server
    // that accepted every frame holds. Where the recording did not converge
    // (`final.converged: false`: the server refused a client's frames, so that client never
    // caught up and the others never got its edits), the union is still the right expectation
    // for this replay: it is what the room would have held had it refused nothing, which is
    // the point of the test, and it is made only of what the clients sent (the refused frames
    // are in the files, since a refusal only stopped what came after it on that connection,
    // and the client's next connection sent the rest again in its step 2).
    let expected_sv = StateVector::decode(&hex(manifest["final"]["state_vector_hex"]
        .as_str()
        .expect("final.state_vector_hex")))
    .expect("final.state_vector_hex decodes");
    let expected_update = hex(manifest["final"]["update_v1_hex"]
        .as_str()
        .expect("final.update_v1_hex"));
    let expected = utf16_doc(None, false);
    apply_to(&expected, &expected_update);
    let roots = manifest_roots(&manifest["final"]["content"]);
    let roots: Vec<(&str, RootKind)> = roots.iter().map(|(n, k)| (n.as_str(), *k)).collect();
    assert_eq!(
        doc_clocks(&expected),
        nonzero_sorted(expected_sv.entries.clone()),
        "{name}: the manifest's update and state vector agree"
    );

    let room_sv = room.clocks();
    let expected_clocks = nonzero_sorted(expected_sv.entries);
    if room_sv != expected_clocks {
        problems.push(format!(
            "{name}: state vector\n  room:     {room_sv:?}\n  expected: {expected_clocks:?}"
        ));
    }
    let want = render_roots(&expected, &roots);
    eprintln!(
        "{name}: {} frames, {} updates, {} held, {} clients, {} bytes of final state",
        order.len(),
        room.updates,
        room.held_total,
        room_sv.len(),
        expected_update.len()
    );
    assert!(
        room.updates > 0 && !room_sv.is_empty(),
        "{name}: the replay applied something"
    );
    for (what, state) in [
        ("a joiner's copy (step 2)", room.joiner_state()),
        ("the room's snapshot", room.snapshot()),
    ] {
        let replica = utf16_doc(None, false);
        apply_to(&replica, &state);
        let got = render_roots(&replica, &roots);
        for (root, want) in &want {
            let got = &got[root];
            if got != want {
                problems.push(format!(
                    "{name}: root {root:?} of {what} differs\n  room:     {got}\n  expected: {want}"
                ));
            }
        }
        let replica_sv = doc_clocks(&replica);
        if replica_sv != room_sv {
            problems.push(format!(
                "{name}: {what} has state vector {replica_sv:?}, the room {room_sv:?}"
            ));
        }
    }
    problems
}

fn hex_of(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn every_honest_frame_is_accepted_and_the_room_ends_as_the_union_of_the_clients() {
    let rooms = rooms();
    assert!(rooms.len() >= 6, "the corpus has its rooms: {rooms:?}");
    let problems: Vec<String> = rooms.iter().flat_map(|room| replay_room(room)).collect();
    assert!(
        problems.is_empty(),
        "{} problem(s):\n{}",
        problems.len(),
        problems.join("\n")
    );
}

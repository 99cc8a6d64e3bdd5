//! Random honest editing sessions: several yrs clients (UTF-16 like Yjs, some with `gc: false`)
//! edit text with emoji, formatting and embeds, nested maps and arrays holding texts, and an XML
//! tree; delete what others type in; undo and redo; go offline and come back through the sync
//! handshake, sometimes typing before their sync step 2 as real clients do. Everything they send
//! goes through the server's path (`honest_corpus::ServerRoom`: the connection's validator, then
//! `RoomDoc::apply_client` with held updates re-admitted as the room does). No frame may be
//! refused, and at the end every client, the room and a joiner built from the room's snapshot
//! hold the same document.
//!
//! 256 cases by default (a few seconds in a debug build);
//! `PROPTEST_CASES=2000 cargo test -p chorus-server --test it honest_sessions` runs more cases.
//! Failing seeds are kept in `tests/proptest-regressions/honest_sessions.txt`.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex, PoisonError};

use chorus_protocol::message::{SYNC_STEP1, SYNC_STEP2, SYNC_UPDATE, sync_frame};
use proptest::prelude::*;
use proptest::test_runner::FileFailurePersistence;
use yrs::types::Attrs;
use yrs::types::text::YChange;
use yrs::types::xml::XmlIn;
use yrs::undo::Options as UndoOptions;
use yrs::updates::encoder::Encode;
use yrs::{
    Any, Array, ArrayPrelim, ArrayRef, Doc, Map, MapPrelim, MapRef, Out, ReadTxn, Text, TextPrelim,
    TextRef, Transact, TransactionMut, UndoManager, WriteTxn, Xml, XmlElementPrelim, XmlElementRef,
    XmlFragment, XmlFragmentRef, XmlOut, XmlTextPrelim, XmlTextRef,
};

use super::honest_corpus::{RootKind, ServerRoom, apply_to, doc_clocks, render_roots, utf16_doc};

const ROOTS: [(&str, RootKind); 4] = [
    ("text", RootKind::Text),
    ("prosemirror", RootKind::XmlFragment),
    ("meta", RootKind::Map),
    ("items", RootKind::Array),
];

/// Client ids as Yjs picks them: random 32-bit numbers.
const CLIENT_IDS: [u64; 5] = [
    2_947_310_553,
    1_004_224_198,
    3_661_042_907,
    87_211_345,
    4_032_119_776,
];

/// What clients type: ASCII, accents (precomposed and combining), CJK, emoji outside the BMP,
/// ZWJ sequences, flags, skin tones, and a paste.
const PIECES: [&str; 12] = [
    "a",
    "hello ",
    "😀",
    "👨‍👩‍👧‍👦",
    "café ",
    "e\u{301}",
    "中文",
    "🇯🇵",
    "👍🏽",
    "\n",
    "𝄞x",
    "",
];

/// One local edit, with its targets and positions as selectors resolved against the client's
/// document when it runs (modulo what exists), so that shrinking keeps them meaningful.
#[derive(Debug, Clone)]
enum Edit {
    TextInsert {
        target: u8,
        at: u16,
        piece: u8,
        attr: u8,
    },
    TextDelete {
        target: u8,
        at: u16,
        len: u8,
    },
    TextFormat {
        target: u8,
        at: u16,
        len: u8,
        attr: u8,
    },
    TextEmbed {
        target: u8,
        at: u16,
    },
    Paste {
        target: u8,
        at: u16,
        kib: u8,
    },
    MapSet {
        target: u8,
        key: u8,
        value: u8,
    },
    MapDelete {
        target: u8,
        key: u8,
    },
    ArrayInsert {
        target: u8,
        at: u16,
        value: u8,
    },
    ArrayDelete {
        target: u8,
        at: u16,
        len: u8,
    },
    XmlInsert {
        target: u8,
        at: u16,
        shape: u8,
    },
    XmlDelete {
        target: u8,
        at: u16,
        len: u8,
    },
    XmlAttribute {
        target: u8,
        key: u8,
        value: u8,
    },
}

/// How a client comes back.
#[derive(Debug, Clone)]
enum Comeback {
    /// Step 1 and step 2 only.
    Plain,
    /// An edit in the `connected` handler: its update goes before sync step 1.
    EditFirst(Edit),
    /// An edit between its step 1 and the step 2 that answers the server's step 1.
    EditBeforeStep2(Edit),
    /// A provider that queued the updates made offline and sends them first, one by one.
    Queued,
}

#[derive(Debug, Clone)]
enum Action {
    Edit {
        client: u8,
        edit: Edit,
    },
    Undo {
        client: u8,
    },
    Redo {
        client: u8,
    },
    /// Delivers up to `count` of the client's frames in flight to the room.
    ToRoom {
        client: u8,
        count: u8,
    },
    /// Delivers up to `count` of the room's frames in flight to the client.
    ToClient {
        client: u8,
        count: u8,
    },
    /// The socket closes: the first `delivered` frames in flight still arrive, the rest are lost.
    Offline {
        client: u8,
        delivered: u8,
    },
    Online {
        client: u8,
        how: Comeback,
    },
}

#[derive(Debug, Clone)]
struct Session {
    /// Per client: whether its document keeps deleted content (`gc: false`).
    skip_gc: Vec<bool>,
    actions: Vec<Action>,
}

fn edit() -> impl Strategy<Value = Edit> {
    let t = any::<u8>();
    let at = any::<u16>();
    prop_oneof![
        6 => (t, at, 0..PIECES.len() as u8, any::<u8>())
            .prop_map(|(target, at, piece, attr)| Edit::TextInsert { target, at, piece, attr }),
        3 => (t, at, 1..12u8)
            .prop_map(|(target, at, len)| Edit::TextDelete { target, at, len }),
        2 => (t, at, 1..12u8, any::<u8>())
            .prop_map(|(target, at, len, attr)| Edit::TextFormat { target, at, len, attr }),
        1 => (t, at).prop_map(|(target, at)| Edit::TextEmbed { target, at }),
        1 => (t, at, 0..3u8)
            .prop_map(|(target, at, kib)| Edit::Paste { target, at, kib }),
        2 => (t, 0..4u8, any::<u8>())
            .prop_map(|(target, key, value)| Edit::MapSet { target, key, value }),
        1 => (t, 0..4u8).prop_map(|(target, key)| Edit::MapDelete { target, key }),
        2 => (t, at, any::<u8>())
            .prop_map(|(target, at, value)| Edit::ArrayInsert { target, at, value }),
        1 => (t, at, 1..3u8)
            .prop_map(|(target, at, len)| Edit::ArrayDelete { target, at, len }),
        2 => (t, at, any::<u8>())
            .prop_map(|(target, at, shape)| Edit::XmlInsert { target, at, shape }),
        1 => (t, at, 1..3u8)
            .prop_map(|(target, at, len)| Edit::XmlDelete { target, at, len }),
        1 => (t, 0..3u8, any::<u8>())
            .prop_map(|(target, key, value)| Edit::XmlAttribute { target, key, value }),
    ]
}

fn action(clients: u8) -> impl Strategy<Value = Action> {
    let c = 0..clients;
    prop_oneof![
        12 => (c.clone(), edit()).prop_map(|(client, edit)| Action::Edit { client, edit }),
        2 => c.clone().prop_map(|client| Action::Undo { client }),
        1 => c.clone().prop_map(|client| Action::Redo { client }),
        6 => (c.clone(), 1..6u8).prop_map(|(client, count)| Action::ToRoom { client, count }),
        6 => (c.clone(), 1..6u8).prop_map(|(client, count)| Action::ToClient { client, count }),
        2 => (c.clone(), 0..4u8)
            .prop_map(|(client, delivered)| Action::Offline { client, delivered }),
        2 => (
            c,
            prop_oneof![
                Just(Comeback::Plain),
                edit().prop_map(Comeback::EditFirst),
                edit().prop_map(Comeback::EditBeforeStep2),
                Just(Comeback::Queued),
            ]
        )
            .prop_map(|(client, how)| Action::Online { client, how }),
    ]
}

fn session() -> impl Strategy<Value = Session> {
    (2..=4u8).prop_flat_map(|clients| {
        (
            prop::collection::vec(prop::bool::weighted(0.3), usize::from(clients)),
            prop::collection::vec(action(clients), 1..120),
        )
            .prop_map(|(skip_gc, actions)| Session { skip_gc, actions })
    })
}

/// A y-websocket frame from a client, and what it is (for failure reports).
#[derive(Debug)]
struct Frame {
    bytes: Vec<u8>,
    what: &'static str,
}

impl Frame {
    fn step1(sv: &[u8]) -> Self {
        Self {
            bytes: sync_frame(SYNC_STEP1, sv).to_vec(),
            what: "sync step 1",
        }
    }

    fn step2(update: &[u8]) -> Self {
        Self {
            bytes: sync_frame(SYNC_STEP2, update).to_vec(),
            what: "sync step 2",
        }
    }

    fn update(update: &[u8]) -> Self {
        Self {
            bytes: sync_frame(SYNC_UPDATE, update).to_vec(),
            what: "update",
        }
    }
}

struct Client {
    doc: Doc,
    undo: UndoManager,
    /// Updates of local transactions since last taken.
    local: Arc<Mutex<Vec<Vec<u8>>>>,
    /// Every update this client made or applied, in order, for failure reports.
    history: Vec<(&'static str, Vec<u8>)>,
    /// Updates made while offline, for [`Comeback::Queued`].
    offline_updates: Vec<Vec<u8>>,
    /// The current connection, if online.
    conn: Option<usize>,
    to_room: VecDeque<Frame>,
    /// What the room sent, in flight.
    from_room: VecDeque<FromRoom>,
    /// Whether the room's answer to this connection's sync step 1 has not arrived yet.
    awaiting_step2: bool,
    /// Changes that arrived before that answer, applied after it (see
    /// [`World::deliver_to_client`]). Like Yjs' pending structs they survive a reconnect and
    /// go into the client's sync step 2, merged with its diff, as `Y.encodeStateAsUpdate`
    /// merges its pending structs (with Skip structs over the gaps).
    early: Vec<Vec<u8>>,
}

/// A Yjs v1 update from the room.
enum FromRoom {
    /// Its sync step 2, answering the client's step 1.
    Step2(Vec<u8>),
    /// Another connection's change.
    Change(Vec<u8>),
}

/// Origin of transactions applying what the room sent: not local, not undoable.
const REMOTE: &str = "remote";

impl Client {
    fn new(index: usize, skip_gc: bool) -> Self {
        let doc = utf16_doc(Some(CLIENT_IDS[index]), skip_gc);
        // Define the roots (as every client of an app does) before anything is observed.
        let (text, fragment, map, array) = {
            let mut txn = doc.transact_mut();
            (
                txn.get_or_insert_text("text"),
                txn.get_or_insert_xml_fragment("prosemirror"),
                txn.get_or_insert_map("meta"),
                txn.get_or_insert_array("items"),
            )
        };
        let local = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&local);
        doc.observe_update_v1("honest", move |txn, event| {
            let remote = txn
                .origin()
                .is_some_and(|o| o.as_ref() == REMOTE.as_bytes());
            if !remote {
                sink.lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .push(event.update.clone());
            }
        })
        .expect("observe the client's updates");
        let mut undo = UndoManager::with_options(UndoOptions {
            capture_timeout_millis: 0,
            ..UndoOptions::default()
        });
        undo.expand_scope(&doc, &text);
        undo.expand_scope(&doc, &fragment);
        undo.expand_scope(&doc, &map);
        undo.expand_scope(&doc, &array);
        Self {
            doc,
            undo,
            local,
            history: Vec::new(),
            offline_updates: Vec::new(),
            conn: None,
            to_room: VecDeque::new(),
            from_room: VecDeque::new(),
            awaiting_step2: false,
            early: Vec::new(),
        }
    }

    /// What local transactions produced since last asked: sent if online, kept if not.
    fn flush_local(&mut self) {
        let updates: Vec<Vec<u8>> =
            std::mem::take(&mut *self.local.lock().unwrap_or_else(PoisonError::into_inner));
        for update in updates {
            self.history.push(("local", update.clone()));
            if self.conn.is_some() {
                self.to_room.push_back(Frame::update(&update));
            } else {
                self.offline_updates.push(update);
            }
        }
    }

    fn state_vector(&self) -> Vec<u8> {
        self.doc.transact().state_vector().encode_v1()
    }

    /// Its state minus what a peer with state vector `sv` has: what its sync step 2 carries.
    fn diff(&self, sv: &yrs::StateVector) -> Vec<u8> {
        self.doc.transact().encode_diff_v1(sv)
    }
}

/// Shared types of a client's document, found by walking it.
#[derive(Default)]
struct Targets {
    texts: Vec<TextRef>,
    xml_texts: Vec<XmlTextRef>,
    maps: Vec<MapRef>,
    arrays: Vec<ArrayRef>,
    fragments: Vec<XmlFragmentRef>,
    elements: Vec<XmlElementRef>,
}

impl Targets {
    fn of<T: ReadTxn>(txn: &T) -> Self {
        let mut targets = Self::default();
        for (name, kind) in ROOTS {
            let root = match kind {
                RootKind::Text => txn.get_text(name).map(Out::YText),
                RootKind::XmlFragment => txn.get_xml_fragment(name).map(Out::YXmlFragment),
                RootKind::Map => txn.get_map(name).map(Out::YMap),
                RootKind::Array => txn.get_array(name).map(Out::YArray),
            };
            if let Some(root) = root {
                targets.walk(root, txn);
            }
        }
        targets
    }

    fn walk<T: ReadTxn>(&mut self, value: Out, txn: &T) {
        match value {
            Out::YText(text) => self.texts.push(text),
            Out::YMap(map) => {
                let mut entries: Vec<(String, Out)> =
                    map.iter(txn).map(|(k, v)| (k.to_owned(), v)).collect();
                entries.sort_by(|a, b| a.0.cmp(&b.0));
                self.maps.push(map);
                for (_, v) in entries {
                    self.walk(v, txn);
                }
            }
            Out::YArray(array) => {
                let items: Vec<Out> = array.iter(txn).collect();
                self.arrays.push(array);
                for v in items {
                    self.walk(v, txn);
                }
            }
            Out::YXmlFragment(fragment) => {
                let children: Vec<XmlOut> = fragment.children(txn).collect();
                self.fragments.push(fragment);
                for child in children {
                    self.walk_xml(child, txn);
                }
            }
            _ => {}
        }
    }

    fn walk_xml<T: ReadTxn>(&mut self, node: XmlOut, txn: &T) {
        match node {
            XmlOut::Element(element) => {
                let children: Vec<XmlOut> = element.children(txn).collect();
                self.elements.push(element);
                for child in children {
                    self.walk_xml(child, txn);
                }
            }
            XmlOut::Text(text) => self.xml_texts.push(text),
            XmlOut::Fragment(fragment) => self.walk(Out::YXmlFragment(fragment), txn),
        }
    }
}

fn pick<T>(items: &[T], selector: impl Into<usize>) -> Option<&T> {
    (!items.is_empty()).then(|| &items[selector.into() % items.len()])
}

/// UTF-16 offsets between characters (never inside a surrogate pair) and around embeds.
fn boundaries<X: Text, T: ReadTxn>(text: &X, txn: &T) -> Vec<u32> {
    let mut offsets = vec![0u32];
    let mut at = 0u32;
    for chunk in text.diff(txn, YChange::identity) {
        match chunk.insert {
            Out::Any(Any::String(s)) => {
                for c in s.chars() {
                    at += u32::try_from(c.len_utf16()).expect("1 or 2");
                    offsets.push(at);
                }
            }
            _ => {
                at += 1;
                offsets.push(at);
            }
        }
    }
    offsets
}

fn attrs(selector: u8) -> Attrs {
    let (key, value): (&str, Any) = match selector % 7 {
        0 => ("bold", Any::Bool(true)),
        1 => ("italic", Any::Bool(true)),
        2 => ("color", Any::from("#e91e63")),
        3 => (
            "link",
            Any::Map(Arc::new(HashMap::from([(
                "href".to_owned(),
                Any::from("https://example.com/ü"),
            )]))),
        ),
        4 => ("bold", Any::Null),
        5 => ("strike", Any::Bool(true)),
        _ => ("italic", Any::Null),
    };
    Attrs::from([(Arc::from(key), value)])
}

/// Edits a text (a root or nested `Y.Text`, or an `XmlText`) at character boundaries.
fn edit_text<X: Text>(text: &X, txn: &mut TransactionMut, edit: &Edit) {
    let offsets = boundaries(text, txn);
    let at = |selector: u16| offsets[usize::from(selector) % offsets.len()];
    let span = |selector: u16, len: u8| {
        let start = usize::from(selector) % offsets.len();
        let end = (start + usize::from(len)).min(offsets.len() - 1);
        (offsets[start], offsets[end] - offsets[start])
    };
    match *edit {
        Edit::TextInsert {
            at: pos,
            piece,
            attr,
            ..
        } => {
            let piece = PIECES[usize::from(piece) % PIECES.len()];
            if piece.is_empty() {
                return;
            }
            if attr % 3 == 0 {
                text.insert_with_attributes(txn, at(pos), piece, attrs(attr / 3));
            } else {
                text.insert(txn, at(pos), piece);
            }
        }
        Edit::TextDelete { at: pos, len, .. } => {
            let (index, len) = span(pos, len);
            if len > 0 {
                text.remove_range(txn, index, len);
            }
        }
        Edit::TextFormat {
            at: pos, len, attr, ..
        } => {
            let (index, len) = span(pos, len);
            if len > 0 {
                text.format(txn, index, len, attrs(attr));
            }
        }
        Edit::TextEmbed { at: pos, .. } => {
            let image = Any::Map(Arc::new(HashMap::from([(
                "image".to_owned(),
                Any::from("https://example.com/😀.png"),
            )])));
            text.insert_embed(txn, at(pos), image);
        }
        Edit::Paste { at: pos, kib, .. } => {
            let unit = "Lorem ipsum dolor sit amet, 😀 consectetur 中文 adipiscing. ";
            let paste = unit.repeat((usize::from(kib) * 1024 + 512) / unit.len());
            text.insert(txn, at(pos), &paste);
        }
        _ => {}
    }
}

/// What maps and arrays hold: primitives, texts, and cards (a map with a title text and an
/// array of note texts), as apps nest them.
fn value_in(selector: u8) -> yrs::In {
    match selector % 6 {
        0 => yrs::In::from(i64::from(selector)),
        1 => yrs::In::from(format!("v{selector} 😀")),
        2 => yrs::In::from(selector.is_multiple_of(2)),
        3 => yrs::In::from(TextPrelim::new("note 👍🏽")),
        4 => yrs::In::from(MapPrelim::from([
            ("title", yrs::In::from(TextPrelim::new("title 🇯🇵"))),
            (
                "notes",
                yrs::In::from(ArrayPrelim::from([TextPrelim::new("n 中文")])),
            ),
            ("done", yrs::In::from(false)),
        ])),
        _ => yrs::In::from(ArrayPrelim::from([1i64, 2, 3])),
    }
}

fn xml_node(shape: u8) -> XmlElementPrelim {
    match shape % 4 {
        0 => XmlElementPrelim::new("paragraph", [XmlIn::from(XmlTextPrelim::new("para 😀"))]),
        1 => XmlElementPrelim::new(
            "blockquote",
            [XmlIn::from(XmlElementPrelim::new(
                "paragraph",
                [XmlIn::from(XmlTextPrelim::new("quoted é"))],
            ))],
        ),
        2 => XmlElementPrelim::new(
            "heading",
            [
                XmlIn::from(XmlTextPrelim::new("Title 🇯🇵")),
                XmlIn::from(XmlTextPrelim::new("")),
            ],
        ),
        _ => XmlElementPrelim::empty("horizontal_rule"),
    }
}

/// Runs one local edit on a client, in its own transaction (so that it can be undone alone).
fn run_edit(client: &mut Client, edit: &Edit) {
    {
        let mut txn = client.doc.transact_mut();
        let targets = Targets::of(&txn);
        match *edit {
            Edit::TextInsert { target, .. }
            | Edit::TextDelete { target, .. }
            | Edit::TextFormat { target, .. }
            | Edit::TextEmbed { target, .. }
            | Edit::Paste { target, .. } => {
                // Mostly the main text; sometimes a nested text or the editor's XML text.
                let all = targets.texts.len() + targets.xml_texts.len();
                let index = if target % 2 == 0 {
                    0
                } else {
                    usize::from(target / 2) % all
                };
                if index < targets.texts.len() {
                    edit_text(&targets.texts[index], &mut txn, edit);
                } else {
                    edit_text(
                        &targets.xml_texts[index - targets.texts.len()],
                        &mut txn,
                        edit,
                    );
                }
            }
            Edit::MapSet { target, key, value } => {
                if let Some(map) = pick(&targets.maps, target) {
                    map.insert(&mut txn, format!("k{key}"), value_in(value));
                }
            }
            Edit::MapDelete { target, key } => {
                if let Some(map) = pick(&targets.maps, target) {
                    map.remove(&mut txn, &format!("k{key}"));
                }
            }
            Edit::ArrayInsert { target, at, value } => {
                if let Some(array) = pick(&targets.arrays, target) {
                    let index = u32::from(at) % (array.len(&txn) + 1);
                    array.insert(&mut txn, index, value_in(value));
                }
            }
            Edit::ArrayDelete { target, at, len } => {
                if let Some(array) = pick(&targets.arrays, target) {
                    let n = array.len(&txn);
                    if n > 0 {
                        let index = u32::from(at) % n;
                        array.remove_range(&mut txn, index, u32::from(len).min(n - index));
                    }
                }
            }
            Edit::XmlInsert { target, at, shape } => {
                // Into the fragment, or into an element (a paragraph inside a quote, ...).
                let count = targets.fragments.len() + targets.elements.len();
                let index = usize::from(target) % count;
                if index < targets.fragments.len() {
                    let parent = &targets.fragments[index];
                    let at = u32::from(at) % (parent.len(&txn) + 1);
                    if shape % 5 == 4 {
                        parent.insert(&mut txn, at, XmlTextPrelim::new("loose text"));
                    } else {
                        parent.insert(&mut txn, at, xml_node(shape));
                    }
                } else {
                    let parent = &targets.elements[index - targets.fragments.len()];
                    let at = u32::from(at) % (parent.len(&txn) + 1);
                    if shape % 5 == 4 {
                        parent.insert(&mut txn, at, XmlTextPrelim::new("inline ö"));
                    } else {
                        parent.insert(&mut txn, at, xml_node(shape));
                    }
                }
            }
            Edit::XmlDelete { target, at, len } => {
                // Whole blocks go, whoever is typing in them.
                let count = targets.fragments.len() + targets.elements.len();
                let index = usize::from(target) % count;
                let remove =
                    |n: u32,
                     txn: &mut TransactionMut,
                     f: &dyn Fn(&mut TransactionMut, u32, u32)| {
                        if n > 0 {
                            let i = u32::from(at) % n;
                            f(txn, i, u32::from(len).min(n - i));
                        }
                    };
                if index < targets.fragments.len() {
                    let parent = &targets.fragments[index];
                    let n = parent.len(&txn);
                    remove(n, &mut txn, &|txn, i, l| parent.remove_range(txn, i, l));
                } else {
                    let parent = &targets.elements[index - targets.fragments.len()];
                    let n = parent.len(&txn);
                    remove(n, &mut txn, &|txn, i, l| parent.remove_range(txn, i, l));
                }
            }
            Edit::XmlAttribute { target, key, value } => {
                if let Some(element) = pick(&targets.elements, target) {
                    let key = ["level", "align", "data-id"][usize::from(key) % 3];
                    if value % 4 == 0 {
                        element.remove_attribute(&mut txn, &key);
                    } else {
                        element.insert_attribute(&mut txn, key, format!("{value}"));
                    }
                }
            }
        }
    }
    client.flush_local();
}

/// The session: the room and the clients, with what is in flight between them.
struct World {
    room: ServerRoom,
    clients: Vec<Client>,
    next_conn: usize,
    /// What happened, for failure reports.
    log: Vec<String>,
    /// Per connection (its index is its number): the client, the frames it delivered to the
    /// room, and how many frames the room had had in all when it closed. The honest corpus'
    /// yrs half is written from this (`record_the_yrs_half_of_the_honest_corpus`).
    sent: Vec<(usize, Vec<Vec<u8>>, Option<usize>)>,
    /// Which connection each frame the room received came from, in order.
    order: Vec<usize>,
}

impl World {
    fn new(skip_gc: &[bool]) -> Self {
        let mut world = Self {
            room: ServerRoom::new(),
            clients: skip_gc
                .iter()
                .enumerate()
                .map(|(i, &skip)| Client::new(i, skip))
                .collect(),
            next_conn: 0,
            log: Vec::new(),
            sent: Vec::new(),
            order: Vec::new(),
        };
        for i in 0..world.clients.len() {
            world.connect(i, &Comeback::Plain);
        }
        world
    }

    /// A client's socket opens: it sends sync step 1 and answers the server's step 1 (the
    /// room's state vector now) with its step 2; `how` says what else it sends, and when.
    fn connect(&mut self, c: usize, how: &Comeback) {
        let conn = self.next_conn;
        self.next_conn += 1;
        self.sent.push((c, Vec::new(), None));
        let server_sv: yrs::StateVector = self
            .room
            .state_vector()
            .entries
            .iter()
            .map(|&(client, clock)| (yrs::ClientID::new(client), clock))
            .collect();
        let client = &mut self.clients[c];
        client.conn = Some(conn);
        client.awaiting_step2 = true;
        let offline = std::mem::take(&mut client.offline_updates);
        match how {
            Comeback::Plain => {}
            Comeback::EditFirst(edit) => run_edit(client, edit),
            Comeback::Queued => {
                for update in &offline {
                    client.to_room.push_back(Frame::update(update));
                }
            }
            Comeback::EditBeforeStep2(_) => {}
        }
        let sv = client.state_vector();
        client.to_room.push_back(Frame::step1(&sv));
        if let Comeback::EditBeforeStep2(edit) = how {
            run_edit(client, edit);
        }
        let mut step2 = client.diff(&server_sv);
        if !client.early.is_empty() {
            let parts = std::iter::once(&step2).chain(&client.early);
            step2 = yrs::merge_updates_v1(parts).expect("yrs merges what it encoded");
        }
        client.to_room.push_back(Frame::step2(&step2));
    }

    /// Delivers a client's next frame to the room; what the room changes goes to the others.
    fn deliver_to_room(&mut self, c: usize) -> Result<(), String> {
        let Some(conn) = self.clients[c].conn else {
            return Ok(());
        };
        let Some(frame) = self.clients[c].to_room.pop_front() else {
            return Ok(());
        };
        self.sent[conn].1.push(frame.bytes.clone());
        self.order.push(conn);
        let outcome = self.room.receive(conn, &frame.bytes).map_err(|refusal| {
            format!(
                "the room refused client {c}'s {} on connection {conn} with {}: {}\nframe ({} bytes): {}\nsession so far:\n{}",
                frame.what,
                refusal.code,
                refusal.detail,
                frame.bytes.len(),
                hex(&frame.bytes),
                self.log.join("\n")
            )
        })?;
        if let Some(reply) = outcome.reply {
            self.clients[c].from_room.push_back(FromRoom::Step2(reply));
        }
        for (from, delta) in outcome.deltas {
            for other in &mut self.clients {
                if other.conn.is_some_and(|conn| Some(conn) != from) {
                    other.from_room.push_back(FromRoom::Change(delta.clone()));
                }
            }
        }
        Ok(())
    }

    /// Delivers the room's next frame to a client.
    ///
    /// Changes that reach a client before the room's answer to its sync step 1 can start past
    /// its clocks; Yjs keeps such structs pending until the answer fills the gap, but yrs
    /// 0.28.1 integrates one without dependencies behind a Skip block and panics when the
    /// answer then covers both (`BlockStore::push`; see
    /// `a_gc_struct_ahead_of_the_document_then_what_it_follows` below).
    /// These clients stand in for Yjs, so they apply such early changes after the answer,
    /// which holds all of them (it was encoded later); what they send is unaffected.
    fn deliver_to_client(&mut self, c: usize) -> Result<(), String> {
        let Some(message) = self.clients[c].from_room.pop_front() else {
            return Ok(());
        };
        let updates = match message {
            FromRoom::Change(update) if self.clients[c].awaiting_step2 => {
                self.clients[c].early.push(update);
                return Ok(());
            }
            FromRoom::Change(update) => vec![update],
            FromRoom::Step2(update) => {
                let client = &mut self.clients[c];
                client.awaiting_step2 = false;
                let mut updates = vec![update];
                updates.append(&mut client.early);
                updates
            }
        };
        for update in updates {
            let client = &mut self.clients[c];
            let applied = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                apply_to(&client.doc, &update);
            }));
            client.history.push(("remote", update.clone()));
            if applied.is_err() {
                let history: Vec<String> = client
                    .history
                    .iter()
                    .map(|(what, u)| format!("{what} {}", hex(u)))
                    .collect();
                return Err(format!(
                    "client {c}'s yrs panicked applying what the room sent it: {}\nits history (local and remote updates, in order, the last one the panic):\n{}\nsession so far:\n{}",
                    hex(&update),
                    history.join("\n"),
                    self.log.join("\n")
                ));
            }
        }
        Ok(())
    }

    fn offline(&mut self, c: usize, delivered: usize) -> Result<(), String> {
        let Some(conn) = self.clients[c].conn else {
            return Ok(());
        };
        for _ in 0..delivered {
            self.deliver_to_room(c)?;
        }
        let client = &mut self.clients[c];
        client.to_room.clear();
        client.from_room.clear();
        client.awaiting_step2 = false;
        client.conn = None;
        self.sent[conn].2 = Some(self.order.len());
        self.room.leave(conn);
        Ok(())
    }

    fn run(&mut self, action: &Action) -> Result<(), String> {
        self.log.push(format!("{action:?}"));
        let n = self.clients.len();
        match action {
            Action::Edit { client, edit } => {
                run_edit(&mut self.clients[usize::from(*client) % n], edit)
            }
            Action::Undo { client } => {
                let client = &mut self.clients[usize::from(*client) % n];
                client.undo.undo_blocking();
                client.flush_local();
            }
            Action::Redo { client } => {
                let client = &mut self.clients[usize::from(*client) % n];
                client.undo.redo_blocking();
                client.flush_local();
            }
            Action::ToRoom { client, count } => {
                for _ in 0..*count {
                    self.deliver_to_room(usize::from(*client) % n)?;
                }
            }
            Action::ToClient { client, count } => {
                for _ in 0..*count {
                    self.deliver_to_client(usize::from(*client) % n)?;
                }
            }
            Action::Offline { client, delivered } => {
                self.offline(usize::from(*client) % n, usize::from(*delivered))?;
            }
            Action::Online { client, how } => {
                let c = usize::from(*client) % n;
                if self.clients[c].conn.is_none() {
                    self.connect(c, how);
                }
            }
        }
        Ok(())
    }

    /// Everyone online, everything delivered, then one more handshake each, until quiet.
    fn settle(&mut self) -> Result<(), String> {
        self.log.push("-- settle".to_owned());
        for c in 0..self.clients.len() {
            if self.clients[c].conn.is_none() {
                self.connect(c, &Comeback::Plain);
            }
        }
        for round in 0..3 {
            loop {
                let mut busy = false;
                for c in 0..self.clients.len() {
                    while !self.clients[c].to_room.is_empty() {
                        busy = true;
                        self.deliver_to_room(c)?;
                    }
                    while !self.clients[c].from_room.is_empty() {
                        busy = true;
                        self.deliver_to_client(c)?;
                    }
                }
                if !busy {
                    break;
                }
            }
            if round < 2 {
                // A resync, as after a reconnect: step 1 and step 2 both ways.
                for c in 0..self.clients.len() {
                    self.offline(c, 0)?;
                    self.connect(c, &Comeback::Plain);
                }
            }
        }
        Ok(())
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Runs a session; `Err` says what went wrong.
fn run_session(session: &Session) -> Result<(), String> {
    run_session_in(session).map(|_| ())
}

/// [`run_session`], returning the settled world.
fn run_session_in(session: &Session) -> Result<World, String> {
    let mut world = World::new(&session.skip_gc);
    for action in &session.actions {
        world.run(action)?;
    }
    world.settle()?;
    let room_sv = world.room.clocks();
    let joiner = utf16_doc(None, false);
    apply_to(&joiner, &world.room.joiner_state());
    let room_content = render_roots(&joiner, &ROOTS);
    let snapshot = utf16_doc(None, false);
    apply_to(&snapshot, &world.room.snapshot());
    let mut problems = Vec::new();
    let mut check = |who: &str, doc: &Doc| {
        let sv = doc_clocks(doc);
        if sv != room_sv {
            problems.push(format!("{who}: state vector {sv:?}, the room {room_sv:?}"));
        }
        let content: BTreeMap<String, String> = render_roots(doc, &ROOTS);
        for (root, want) in &room_content {
            if &content[root] != want {
                problems.push(format!(
                    "{who}: root {root:?}\n  has:  {}\n  room: {want}",
                    content[root]
                ));
            }
        }
    };
    check("the room's joiner state", &joiner);
    check("a joiner from the room's snapshot", &snapshot);
    for (i, client) in world.clients.iter().enumerate() {
        check(&format!("client {i}"), &client.doc);
    }
    if problems.is_empty() {
        Ok(world)
    } else {
        Err(format!(
            "{}\nsession:\n{}",
            problems.join("\n"),
            world.log.join("\n")
        ))
    }
}

/// Writes what a settled session's yrs clients sent, in the honest corpus' format
/// (`tests/corpus/honest/README.md`), to `dir`.
fn write_corpus_room(world: &mut World, session: &Session, seed: u64, dir: &std::path::Path) {
    std::fs::create_dir_all(dir).expect("corpus dir");
    let mut connections = Vec::new();
    for (conn, (client, frames, closed_at)) in world.sent.iter().enumerate() {
        let file = format!("conn-{conn:03}.bin");
        let mut bytes = Vec::new();
        for frame in frames {
            bytes.extend_from_slice(&u32::try_from(frame.len()).expect("small").to_le_bytes());
            bytes.extend_from_slice(frame);
        }
        std::fs::write(dir.join(&file), bytes).expect("write a connection");
        // A close lies between the last frame before it and the first after it.
        let close =
            closed_at.map(|at| serde_json::json!({ "code": 1000, "at_ms": at as f64 - 0.5 }));
        connections.push(serde_json::json!({
            "file": file,
            "client": format!("yrs-{client}"),
            "node": 0,
            "gc": !session.skip_gc[*client],
            "frames": frames.len(),
            "close": close,
        }));
    }
    let state = world.room.snapshot();
    let joiner = utf16_doc(None, false);
    apply_to(&joiner, &state);
    let kind = |kind: RootKind| match kind {
        RootKind::Text => "delta",
        RootKind::XmlFragment => "xml",
        RootKind::Map => "map",
        RootKind::Array => "array",
    };
    let rendered = render_roots(&joiner, &ROOTS);
    let content: serde_json::Map<String, serde_json::Value> = ROOTS
        .iter()
        .map(|(name, root)| {
            let value = serde_json::json!({ kind(*root): rendered[*name] });
            ((*name).to_owned(), value)
        })
        .collect();
    let manifest = serde_json::json!({
        "format": "chorus-honest-corpus/1",
        "seed": seed,
        "nodes": 1,
        "settings": { "generator": "yrs clients of honest_sessions.rs (record_the_yrs_half_of_the_honest_corpus)" },
        "doc": format!("honest-yrs-s{seed}"),
        "ok": true,
        "problems": [],
        "connections": connections,
        "order": world.order,
        "order_ms": (0..world.order.len()).map(|i| i as f64).collect::<Vec<_>>(),
        "final": {
            "converged": true,
            "update_v1_hex": hex(&state),
            "state_vector_hex": hex(&joiner.transact().state_vector().encode_v1()),
            "content": content,
        },
    });
    std::fs::write(
        dir.join("manifest.json"),
        serde_json::to_vec_pretty(&manifest).expect("json"),
    )
    .expect("write the manifest");
}

/// Not a check but the recorder of the corpus' yrs half: the frames yrs clients of seeded
/// honest sessions sent, which `honest_corpus` replays with every recorded room. Run it with
/// `cargo test -p chorus-server --test it record_the_yrs_half -- --ignored` to write them again.
#[test]
#[ignore = "writes tests/corpus/honest/yrs-*: run on purpose"]
fn record_the_yrs_half_of_the_honest_corpus() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::{RngAlgorithm, TestRng, TestRunner};
    let corpus = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus/honest");
    for seed in 1..=4u64 {
        let mut bytes = [0u8; 32];
        bytes[..8].copy_from_slice(&seed.to_le_bytes());
        let rng = TestRng::from_seed(RngAlgorithm::ChaCha, &bytes);
        let mut runner = TestRunner::new_with_rng(ProptestConfig::default(), rng);
        let session = session()
            .new_tree(&mut runner)
            .expect("a session")
            .current();
        let mut world = run_session_in(&session).expect("an honest session passes");
        write_corpus_room(
            &mut world,
            &session,
            seed,
            &corpus.join(format!("yrs-seed-{seed}/room-0")),
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/proptest-regressions/honest_sessions.txt"
        )))),
        ..ProptestConfig::default()
    })]

    #[test]
    fn honest_sessions_are_never_refused_and_everyone_converges(session in session()) {
        if let Err(problem) = run_session(&session) {
            return Err(TestCaseError::fail(problem));
        }
    }
}

fn unhex(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).expect("hex digits"))
        .collect()
}

/// Found by `honest_sessions_are_never_refused_and_everyone_converges` (its first seed in
/// `tests/proptest-regressions/honest_sessions.txt`): client A (id 2947310553) types into a card
/// that client B (id 3661042907) concurrently replaced, so the room collects the text and
/// broadcasts a lone GC struct at clock 19 (`CHANGE`). A client that gets it before the room's
/// answer to its sync step 1 (`STEP2`, which covers clocks 0..22 of A) cannot integrate it yet.
/// Yjs 13.6 keeps it pending and ends with A at 22, B at 1 and `meta = { k0: 0 }` in either
/// order. yrs 0.28.1 integrates it at once behind a Skip block over clocks 0..19
/// (`Update::integrate`, the `offset < 0` branch), then, integrating `STEP2`'s GC struct 1..22
/// over that Skip, panics in `BlockStore::push` (subtract with overflow, `block_store.rs:320`:
/// the new block ends past the Skip it replaces). The room's client path holds `CHANGE` outside
/// yrs until clock 19 of A is there, so it is fine; `RoomDoc::apply`, which relayed updates from
/// other nodes take (`Room::remote`), hands it to yrs and panics on `STEP2`: the room is dropped.
#[test]
fn a_gc_struct_ahead_of_the_document_then_what_it_follows() {
    const CHANGE: &str = "0101d9c7b1fd0a13000301d9c7b1fd0a011303";
    const STEP2: &str = "0201dba9dcd10d002801046d657461026b30017d0002d9c7b1fd0a002101046d657461026b3001001501d9c7b1fd0a010016";
    let (change, step2) = (unhex(CHANGE), unhex(STEP2));
    let expected_sv = vec![(2_947_310_553, 22), (3_661_042_907, 1)];
    let expected_meta = "map{\"k0\": \"Number(Int(0))\"}";

    // What clients send, through the server's path: the change is held, then taken.
    for (first, second) in [(&change, &step2), (&step2, &change)] {
        let mut room = ServerRoom::new();
        room.update(0, first, &mut Default::default())
            .expect("the room takes the first");
        room.update(1, second, &mut Default::default())
            .expect("the room takes the second");
        assert_eq!(room.clocks(), expected_sv);
        let joiner = utf16_doc(None, false);
        apply_to(&joiner, &room.joiner_state());
        assert_eq!(
            render_roots(&joiner, &[("meta", RootKind::Map)])["meta"],
            expected_meta
        );
    }

    // What other nodes relay: the same bytes through the trusted path. Fails with yrs 0.28.1.
    let mut room = chorus_server::room::doc::RoomDoc::new().expect("a room document");
    room.apply(&change).expect("the relayed change");
    let applied = room.apply(&step2);
    assert!(
        applied.is_ok(),
        "the relayed step 2 after the change: {applied:?} (yrs panicked; Yjs takes it)"
    );
    let sv: Vec<(u64, u32)> = {
        let mut sv: Vec<(u64, u32)> = room
            .state_vector()
            .expect("state vector")
            .entries
            .into_iter()
            .filter(|&(_, clock)| clock > 0)
            .collect();
        sv.sort_unstable();
        sv
    };
    assert_eq!(sv, expected_sv);
}

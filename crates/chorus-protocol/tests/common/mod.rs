//! Random editing sessions on real yrs documents, shared by the property tests.
//!
//! A [`Session`] is a few documents (distinct client ids) and a schedule of steps: a transaction
//! of random edits on one document, or the delivery of one already-produced update to one
//! document (so later edits build on remote content and updates arrive out of order). Every
//! update a transaction produces is captured through `observe_update_v1`, exactly what the
//! server relays.
#![allow(dead_code)] // each test binary uses a different part

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use proptest::collection::vec;
use proptest::prelude::*;
use yrs::types::ToJson;
use yrs::types::text::Diff;
use yrs::types::xml::XmlIn;
use yrs::updates::decoder::Decode;
use yrs::{
    Any, Array, ArrayPrelim, ClientID, Doc, GetString, In, Map, MapPrelim, OffsetKind, Options,
    Out, ReadTxn, Text, TextPrelim, Transact, Update, WriteTxn, Xml, XmlElementPrelim, XmlFragment,
    XmlOut, XmlTextPrelim,
};

/// Roots every session edits.
pub const TEXT: &str = "text";
pub const MAP: &str = "map";
pub const ARRAY: &str = "array";
pub const XML: &str = "xml";

/// A value to insert: plain data or a new shared type (possibly with nested content).
#[derive(Debug, Clone)]
pub enum Value {
    Any(Any),
    Map(Vec<(String, Value)>),
    Array(Vec<Value>),
    Text(String),
    /// A sub-document (ContentDoc).
    Doc,
}

impl Value {
    fn into_in(self) -> In {
        match self {
            Value::Any(any) => In::Any(any),
            Value::Map(entries) => In::Map(MapPrelim::from_iter(
                entries.into_iter().map(|(k, v)| (k, v.into_in())),
            )),
            Value::Array(values) => In::Array(ArrayPrelim::from_iter(
                values.into_iter().map(Value::into_in),
            )),
            Value::Text(text) => In::Text(TextPrelim::new(text).into()),
            // `In::Doc` would write a type item with yrs' sub-document type ref, which Yjs
            // cannot read; sub-documents are inserted with `Prelim for Doc` instead (see Edit).
            Value::Doc => In::Any(Any::Null),
        }
    }
}

/// One edit inside a transaction. Positions are taken modulo the current length.
#[derive(Debug, Clone)]
pub enum Edit {
    TextInsert {
        at: u32,
        text: String,
        attrs: Option<(String, Any)>,
    },
    TextDelete {
        at: u32,
        len: u32,
    },
    TextFormat {
        at: u32,
        len: u32,
        key: String,
        value: Any,
    },
    TextEmbed {
        at: u32,
        value: Any,
    },
    MapSet {
        key: String,
        value: Value,
    },
    MapRemove {
        key: String,
    },
    SubDoc {
        key: String,
    },
    /// Edits inside whatever shared type `map[key]` holds.
    Nested {
        key: String,
        edit: NestedEdit,
    },
    ArrayInsert {
        at: u32,
        values: Vec<Value>,
    },
    ArrayDelete {
        at: u32,
        len: u32,
    },
    XmlElement {
        at: u32,
        tag: String,
        attrs: Vec<(String, String)>,
        text: String,
    },
    XmlText {
        at: u32,
        text: String,
    },
    XmlAttribute {
        child: u32,
        key: String,
        value: String,
    },
    XmlFormat {
        child: u32,
        at: u32,
        len: u32,
        key: String,
    },
    XmlRemove {
        child: u32,
    },
}

/// An edit applied to a nested shared type, if it has the matching kind.
#[derive(Debug, Clone)]
pub enum NestedEdit {
    Set { key: String, value: Value },
    Push { value: Value },
    Insert { at: u32, text: String },
    Delete { at: u32, len: u32 },
}

#[derive(Debug, Clone)]
pub enum Step {
    /// One transaction of edits on document `doc` (mod the document count).
    Transact { doc: usize, edits: Vec<Edit> },
    /// Deliver update `pick` (mod the updates so far) to document `doc`.
    Deliver { doc: usize, pick: usize },
}

/// Map keys and attribute names: few, so that edits collide (overwrites, concurrent sets).
pub fn key() -> impl Strategy<Value = String> {
    prop::sample::select(vec!["a", "b", "c", "ключ", "🔑"]).prop_map(str::to_owned)
}

/// Text with ASCII, multi-byte and astral characters (UTF-16 length ≠ char count ≠ bytes).
pub fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z ]{1,8}",
        "[éü✓日本]{1,4}",
        "[😀𝄞🎉]{1,3}",
        any::<String>().prop_filter("non-empty", |s| !s.is_empty()),
    ]
}

/// Every `Any` kind, nested a few levels deep.
pub fn any_value() -> impl Strategy<Value = Any> {
    let leaf = prop_oneof![
        Just(Any::Null),
        Just(Any::Undefined),
        any::<bool>().prop_map(Any::Bool),
        any::<i32>().prop_map(|n| Any::from(i64::from(n))),
        any::<i64>().prop_map(Any::from),
        (-1e9f64..1e9).prop_map(Any::from),
        any::<f32>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(|f| Any::from(f64::from(f))),
        any::<String>().prop_map(|s| Any::from(s.as_str())),
        vec(any::<u8>(), 0..8).prop_map(|b| Any::Buffer(b.into())),
    ];
    leaf.prop_recursive(4, 24, 4, |inner| {
        prop_oneof![
            vec(inner.clone(), 0..4).prop_map(|v| Any::Array(v.into())),
            vec((any::<String>(), inner), 0..4)
                .prop_map(|entries| Any::from(entries.into_iter().collect::<HashMap<_, _>>())),
        ]
    })
}

/// JSON-safe values for embeds and formatting attributes (they travel as JSON text).
pub fn json_value() -> impl Strategy<Value = Any> {
    let leaf = prop_oneof![
        Just(Any::Null),
        any::<bool>().prop_map(Any::Bool),
        any::<i32>().prop_map(|n| Any::from(i64::from(n))),
        "[a-z]{0,5}".prop_map(|s| Any::from(s.as_str())),
    ];
    leaf.prop_recursive(3, 12, 3, |inner| {
        prop_oneof![
            vec(inner.clone(), 0..3).prop_map(|v| Any::Array(v.into())),
            vec(("[a-z]{1,3}", inner), 0..3)
                .prop_map(|entries| Any::from(entries.into_iter().collect::<HashMap<_, _>>())),
        ]
    })
}

/// Values to insert, including nested shared types three levels deep.
pub fn value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        4 => any_value().prop_map(Value::Any),
        1 => text().prop_map(Value::Text),
        1 => Just(Value::Map(Vec::new())),
        1 => Just(Value::Array(Vec::new())),
    ];
    leaf.prop_recursive(3, 16, 3, |inner| {
        prop_oneof![
            vec((key(), inner.clone()), 1..3).prop_map(Value::Map),
            vec(inner, 1..3).prop_map(Value::Array),
        ]
    })
}

fn nested_edit() -> impl Strategy<Value = NestedEdit> {
    prop_oneof![
        (key(), value()).prop_map(|(key, value)| NestedEdit::Set { key, value }),
        value().prop_map(|value| NestedEdit::Push { value }),
        (any::<u32>(), text()).prop_map(|(at, text)| NestedEdit::Insert { at, text }),
        (any::<u32>(), 1..4u32).prop_map(|(at, len)| NestedEdit::Delete { at, len }),
    ]
}

pub fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        4 => (any::<u32>(), text(), prop::option::of((key(), json_value())))
            .prop_map(|(at, text, attrs)| Edit::TextInsert { at, text, attrs }),
        2 => (any::<u32>(), 1..6u32).prop_map(|(at, len)| Edit::TextDelete { at, len }),
        1 => (any::<u32>(), 1..6u32, key(), json_value())
            .prop_map(|(at, len, key, value)| Edit::TextFormat { at, len, key, value }),
        // Embeds are wrapped in an object: a bare string embed reads back like text in a diff.
        1 => (any::<u32>(), json_value()).prop_map(|(at, value)| Edit::TextEmbed {
            at,
            value: Any::from(HashMap::from([("embed".to_owned(), value)])),
        }),
        3 => (key(), value()).prop_map(|(key, value)| Edit::MapSet { key, value }),
        1 => key().prop_map(|key| Edit::MapRemove { key }),
        1 => key().prop_map(|key| Edit::SubDoc { key }),
        3 => (key(), nested_edit()).prop_map(|(key, edit)| Edit::Nested { key, edit }),
        2 => (any::<u32>(), vec(value(), 1..4))
            .prop_map(|(at, values)| Edit::ArrayInsert { at, values }),
        1 => (any::<u32>(), 1..4u32).prop_map(|(at, len)| Edit::ArrayDelete { at, len }),
        2 => (any::<u32>(), "[a-z]{1,6}", vec((key(), "[a-z]{0,4}"), 0..3), "[a-z ]{0,6}")
            .prop_map(|(at, tag, attrs, text)| Edit::XmlElement { at, tag, attrs, text }),
        1 => (any::<u32>(), text()).prop_map(|(at, text)| Edit::XmlText { at, text }),
        1 => (any::<u32>(), key(), "[a-z]{0,4}")
            .prop_map(|(child, key, value)| Edit::XmlAttribute { child, key, value }),
        1 => (any::<u32>(), any::<u32>(), 1..4u32, key())
            .prop_map(|(child, at, len, key)| Edit::XmlFormat { child, at, len, key }),
        1 => any::<u32>().prop_map(|child| Edit::XmlRemove { child }),
    ]
}

pub fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        3 => (any::<usize>(), vec(edit(), 1..4)).prop_map(|(doc, edits)| Step::Transact { doc, edits }),
        1 => (any::<usize>(), any::<usize>()).prop_map(|(doc, pick)| Step::Deliver { doc, pick }),
    ]
}

/// `at` reduced to a valid insertion index for a sequence of length `len`.
fn index(at: u32, len: u32) -> u32 {
    at % (len + 1)
}

/// `(at, len)` reduced to a valid, non-empty range, if the sequence is not empty.
fn range(at: u32, len: u32, total: u32) -> Option<(u32, u32)> {
    (total > 0).then(|| {
        let start = at % total;
        (start, len.min(total - start))
    })
}

/// UTF-16 offsets of the character boundaries of a text (0 first, the length last).
///
/// Text edits land on character boundaries: yrs 0.28.1 splits a surrogate pair locally
/// without the U+FFFD replacement Yjs (and yrs' own decoder) applies, so a local edit inside
/// an astral character makes the editing replica diverge from every other one. Servers only
/// apply remote updates, so that yrs bug is out of scope here.
fn boundaries<T: Text>(txn: &yrs::TransactionMut<'_>, text: &T) -> Vec<u32> {
    let mut offsets = vec![0];
    let mut at = 0;
    for chunk in text.diff(txn, |_| ()) {
        match chunk.insert {
            Out::Any(Any::String(s)) => {
                for c in s.chars() {
                    at += c.len_utf16() as u32;
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

/// An insertion point on a character boundary.
fn text_index<T: Text>(txn: &yrs::TransactionMut<'_>, text: &T, at: u32) -> u32 {
    let offsets = boundaries(txn, text);
    offsets[at as usize % offsets.len()]
}

/// A non-empty range of whole characters, as UTF-16 `(start, len)`.
fn text_range<T: Text>(
    txn: &yrs::TransactionMut<'_>,
    text: &T,
    at: u32,
    len: u32,
) -> Option<(u32, u32)> {
    let offsets = boundaries(txn, text);
    let chars = offsets.len() - 1;
    (chars > 0).then(|| {
        let start = at as usize % chars;
        let end = (start + len as usize).min(chars);
        (offsets[start], offsets[end] - offsets[start])
    })
}

/// Applies one edit in `txn`. Edits whose target does not exist (yet) do nothing.
pub fn apply_edit(doc: &Doc, txn: &mut yrs::TransactionMut<'_>, edit: Edit) {
    let text = txn.get_or_insert_text(TEXT);
    let map = txn.get_or_insert_map(MAP);
    let array = txn.get_or_insert_array(ARRAY);
    let xml = txn.get_or_insert_xml_fragment(XML);
    let _ = doc;
    match edit {
        Edit::TextInsert { at, text: s, attrs } => {
            let at = text_index(txn, &text, at);
            match attrs {
                Some((k, v)) => {
                    text.insert_with_attributes(txn, at, &s, HashMap::from([(k.into(), v)]))
                }
                None => text.insert(txn, at, &s),
            }
        }
        Edit::TextDelete { at, len } => {
            if let Some((at, len)) = text_range(txn, &text, at, len) {
                text.remove_range(txn, at, len);
            }
        }
        Edit::TextFormat {
            at,
            len,
            key,
            value,
        } => {
            if let Some((at, len)) = text_range(txn, &text, at, len) {
                text.format(txn, at, len, HashMap::from([(key.into(), value)]));
            }
        }
        Edit::TextEmbed { at, value } => {
            let at = text_index(txn, &text, at);
            text.insert_embed(txn, at, value);
        }
        Edit::MapSet { key, value } => {
            map.insert(txn, key, value.into_in());
        }
        Edit::MapRemove { key } => {
            map.remove(txn, &key);
        }
        Edit::SubDoc { key } => {
            map.insert(txn, key, Doc::new());
        }
        Edit::Nested { key, edit } => apply_nested(txn, map.get(txn, &key), edit),
        Edit::ArrayInsert { at, values } => {
            let at = index(at, array.len(txn));
            for (i, value) in values.into_iter().enumerate() {
                array.insert(txn, at + i as u32, value.into_in());
            }
        }
        Edit::ArrayDelete { at, len } => {
            if let Some((at, len)) = range(at, len, array.len(txn)) {
                array.remove_range(txn, at, len);
            }
        }
        Edit::XmlElement {
            at,
            tag,
            attrs,
            text: inner,
        } => {
            let mut element = XmlElementPrelim::new(tag, [XmlIn::from(XmlTextPrelim::new(inner))]);
            for (k, v) in attrs {
                element.attributes.insert(k.into(), v);
            }
            let at = index(at, xml.len(txn));
            xml.insert(txn, at, element);
        }
        Edit::XmlText { at, text: s } => {
            let at = index(at, xml.len(txn));
            xml.insert(txn, at, XmlTextPrelim::new(s));
        }
        Edit::XmlAttribute { child, key, value } => {
            if let Some(XmlOut::Element(element)) = nth_child(txn, &xml, child) {
                element.insert_attribute(txn, key, value);
            }
        }
        Edit::XmlFormat {
            child,
            at,
            len,
            key,
        } => {
            if let Some(XmlOut::Text(t)) = nth_child(txn, &xml, child)
                && let Some((at, len)) = text_range(txn, &t, at, len)
            {
                t.format(txn, at, len, HashMap::from([(key.into(), Any::Bool(true))]));
            }
        }
        Edit::XmlRemove { child } => {
            let len = xml.len(txn);
            if len > 0 {
                xml.remove_range(txn, child % len, 1);
            }
        }
    }
}

fn nth_child(txn: &yrs::TransactionMut<'_>, xml: &yrs::XmlFragmentRef, n: u32) -> Option<XmlOut> {
    let len = xml.len(txn);
    (len > 0).then(|| xml.get(txn, n % len)).flatten()
}

fn apply_nested(txn: &mut yrs::TransactionMut<'_>, target: Option<Out>, edit: NestedEdit) {
    match (target, edit) {
        (Some(Out::YMap(m)), NestedEdit::Set { key, value }) => {
            m.insert(txn, key, value.into_in());
        }
        (Some(Out::YMap(m)), NestedEdit::Delete { .. }) => {
            let first = m.keys(txn).next().map(str::to_owned);
            if let Some(k) = first {
                m.remove(txn, &k);
            }
        }
        (Some(Out::YArray(a)), NestedEdit::Push { value }) => {
            a.push_back(txn, value.into_in());
        }
        (Some(Out::YArray(a)), NestedEdit::Delete { at, len }) => {
            if let Some((at, len)) = range(at, len, a.len(txn)) {
                a.remove_range(txn, at, len);
            }
        }
        (Some(Out::YText(t)), NestedEdit::Insert { at, text }) => {
            let at = text_index(txn, &t, at);
            t.insert(txn, at, &text);
        }
        (Some(Out::YText(t)), NestedEdit::Delete { at, len }) => {
            if let Some((at, len)) = text_range(txn, &t, at, len) {
                t.remove_range(txn, at, len);
            }
        }
        _ => {}
    }
}

/// `(producing doc, v1 update)` pairs, appended by the documents' update observers.
pub type UpdateLog = Arc<Mutex<Vec<(usize, Vec<u8>)>>>;

/// Documents plus every update their transactions produced, in production order.
pub struct Session {
    pub docs: Vec<Doc>,
    /// `(producing doc, v1 update)` as observed by `observe_update_v1`.
    pub updates: UpdateLog,
    /// The same transactions encoded as v2 (`TransactionMut::encode_update_v2`).
    pub updates_v2: Vec<Vec<u8>>,
    /// `TransactionMut::encode_update_v1` of each transaction (must equal the observed bytes).
    pub txn_updates: Vec<Vec<u8>>,
}

impl Session {
    /// Documents with client ids `first_client`, `first_client + 1`, …
    pub fn new(docs: usize, first_client: u64) -> Self {
        let updates = Arc::new(Mutex::new(Vec::new()));
        let docs = (0..docs)
            .map(|i| {
                // Yjs counts text positions in UTF-16 units; yrs' default (bytes) makes
                // positions inside a multi-byte character a local-API panic.
                let doc = Doc::with_options(Options {
                    client_id: ClientID::new(first_client + i as u64),
                    offset_kind: OffsetKind::Utf16,
                    ..Options::default()
                });
                // Declare the roots up front, as applications do: a root that exists only on
                // replicas that happened to touch it would make equal documents look different.
                doc.get_or_insert_text(TEXT);
                doc.get_or_insert_map(MAP);
                doc.get_or_insert_array(ARRAY);
                doc.get_or_insert_xml_fragment(XML);
                let sink = Arc::clone(&updates);
                doc.observe_update_v1("capture", move |_, event| {
                    sink.lock()
                        .expect("update log lock")
                        .push((i, event.update.clone()));
                })
                .expect("observe updates");
                doc
            })
            .collect();
        Self {
            docs,
            updates,
            updates_v2: Vec::new(),
            txn_updates: Vec::new(),
        }
    }

    pub fn observed(&self) -> Vec<(usize, Vec<u8>)> {
        self.updates.lock().expect("update log lock").clone()
    }

    /// Runs the schedule. Delivered updates are applied with `apply_update`; an update that
    /// yrs refuses fails the test.
    pub fn run(&mut self, steps: Vec<Step>) -> Result<(), String> {
        let n = self.docs.len();
        for step in steps {
            match step {
                Step::Transact { doc, edits } => {
                    let doc = &self.docs[doc % n];
                    let mut txn = doc.transact_mut();
                    for edit in edits {
                        apply_edit(doc, &mut txn, edit);
                    }
                    self.txn_updates.push(txn.encode_update_v1());
                    self.updates_v2.push(txn.encode_update_v2());
                }
                Step::Deliver { doc, pick } => {
                    let log = self.observed();
                    if log.is_empty() {
                        continue;
                    }
                    let (_, update) = &log[pick % log.len()];
                    apply(&self.docs[doc % n], update)?;
                }
            }
        }
        Ok(())
    }
}

/// Applies a v1 update to `doc`.
pub fn apply(doc: &Doc, update: &[u8]) -> Result<(), String> {
    let update = Update::decode_v1(update).map_err(|e| format!("decode: {e}"))?;
    doc.transact_mut()
        .apply_update(update)
        .map_err(|e| format!("apply: {e}"))
}

/// Everything an observer can see of a document, for equality checks.
#[derive(Debug, PartialEq)]
pub struct Snapshot {
    state_vector: Vec<(u64, u32)>,
    text: Vec<Diff<()>>,
    map: Option<Any>,
    array: Option<Any>,
    xml: Option<String>,
}

pub fn snapshot(doc: &Doc) -> Snapshot {
    let txn = doc.transact();
    let mut state_vector: Vec<_> = txn
        .state_vector()
        .iter()
        .map(|(client, clock)| (client.get(), *clock))
        .collect();
    state_vector.sort_unstable();
    Snapshot {
        state_vector,
        text: txn
            .get_text(TEXT)
            .map(|t| t.diff(&txn, |_| ()))
            .unwrap_or_default(),
        map: txn.get_map(MAP).map(|m| m.to_json(&txn)),
        array: txn.get_array(ARRAY).map(|a| a.to_json(&txn)),
        xml: txn.get_xml_fragment(XML).map(|x| {
            let mut out = String::new();
            for child in x.children(&txn) {
                xml_canonical(&txn, child, &mut out);
            }
            out
        }),
    }
}

/// XML as a string with attributes in sorted order (`get_string` follows hash-map order).
fn xml_canonical(txn: &yrs::Transaction<'_>, node: XmlOut, out: &mut String) {
    match node {
        XmlOut::Element(element) => {
            let mut attrs: Vec<String> = element
                .attributes(txn)
                .map(|(k, v)| format!("{k}={v:?}"))
                .collect();
            attrs.sort_unstable();
            out.push_str(&format!("<{} {}>", element.tag(), attrs.join(" ")));
            for child in element.children(txn) {
                xml_canonical(txn, child, out);
            }
            out.push_str("</>");
        }
        XmlOut::Text(text) => {
            for chunk in text.diff(txn, |_| ()) {
                let mut attrs: Vec<String> = chunk
                    .attributes
                    .iter()
                    .flat_map(|attrs| attrs.iter())
                    .map(|(k, v)| format!("{k}={v:?}"))
                    .collect();
                attrs.sort_unstable();
                out.push_str(&format!("[{:?} {}]", chunk.insert, attrs.join(" ")));
            }
        }
        XmlOut::Fragment(fragment) => out.push_str(&fragment.get_string(txn)),
    }
}

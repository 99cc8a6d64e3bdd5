//! The content of a document as owned values, read once from yrs.
//!
//! Diffing and restoring compare two such trees; keeping them apart from yrs means the
//! comparison never holds a transaction and the JSON rendering is one pure function.
//!
//! Every shared type is a [`Shared`]: a *kind*, a list part (the characters of a text, or the
//! elements of an array or XML node) and a map part (a map's entries, or an XML node's
//! attributes). That is how Yjs stores them too (`Branch.start` and `Branch.map`), which is what
//! lets a root whose kind the encoded state does not record be read and edited at all.

use std::collections::BTreeMap;
use std::hash::{DefaultHasher, Hash, Hasher};

use serde_json::{Map as JsonMap, Value as Json};
use yrs::branch::{Branch, BranchPtr};
use yrs::types::text::YChange;
use yrs::types::{Attrs, TypeRef};
use yrs::{Any, Array, ArrayRef, Map, MapRef, Number, Out, ReadTxn, Text, TextRef};

use crate::HistoryError;

/// How deep shared types (and JSON values inside them) may nest before a state is refused.
///
/// Reading, diffing and restoring recurse once per level. Honest editors nest a few dozen levels
/// at most (a ProseMirror list in a list in a blockquote...), while a hostile state can nest
/// thousands and overflow the stack of the thread that reads it (a 2 MiB tokio worker). 256
/// levels keep every recursion of this crate well under 1 MiB of stack.
pub(crate) const MAX_DEPTH: usize = 256;

/// One value in a document: a JSON-like value, a sub-document, or a shared type.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Node {
    /// A primitive (`Any`): what `Y.Map.set(k, 1)` or `Y.Array.push(['x'])` stores.
    Value(Any),
    /// A sub-document, known only by its guid (its content is another document).
    Doc { guid: String },
    /// A shared type.
    Shared(Shared),
}

/// A shared type: its kind, its list part and its map part.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Shared {
    pub kind: Kind,
    pub list: List,
    /// Map entries (`Y.Map`) or attributes (`Y.XmlElement`, `Y.XmlText`), by key.
    pub map: BTreeMap<String, Node>,
}

/// Which shared type a [`Shared`] is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Kind {
    Text,
    Map,
    Array,
    XmlFragment,
    XmlElement(String),
    XmlText,
    /// A `Y.XmlHook`: a map with a hook name.
    XmlHook(String),
}

/// The list part of a shared type.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum List {
    /// Characters and embeds with their formatting (`Y.Text`, `Y.XmlText`).
    Text(Vec<Run>),
    /// Elements (`Y.Array`, XML children). Empty for maps.
    Items(Vec<Node>),
}

/// Formatting attributes of a stretch of text; `null` values (removed formats) are left out.
pub(crate) type Format = BTreeMap<String, Any>;

/// A stretch of text with one formatting, or one embed.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Run {
    pub piece: Piece,
    pub format: Format,
}

/// What a [`Run`] holds.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Piece {
    Str(String),
    /// An embed: a value (`insertEmbed(i, {image: ..})`) or a shared type.
    Embed(Box<Node>),
}

impl Kind {
    /// Whether the list part of this kind is text.
    pub fn is_text(&self) -> bool {
        matches!(self, Kind::Text | Kind::XmlText)
    }

    /// The name used in JSON.
    pub fn name(&self) -> &'static str {
        match self {
            Kind::Text => "text",
            Kind::Map => "map",
            Kind::Array => "array",
            Kind::XmlFragment => "xml_fragment",
            Kind::XmlElement(_) => "xml_element",
            Kind::XmlText => "xml_text",
            Kind::XmlHook(_) => "xml_hook",
        }
    }
}

impl Shared {
    /// An empty shared type of `kind`.
    pub fn empty(kind: Kind) -> Self {
        let list = if kind.is_text() {
            List::Text(Vec::new())
        } else {
            List::Items(Vec::new())
        };
        Shared {
            kind,
            list,
            map: BTreeMap::new(),
        }
    }

    /// Whether it holds nothing at all.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
            && match &self.list {
                List::Text(runs) => runs.is_empty(),
                List::Items(items) => items.is_empty(),
            }
    }
}

impl Node {
    /// Whether two nodes are shared types of the same kind (and tag), so that one can be edited
    /// into the other instead of being replaced.
    pub fn same_shape(&self, other: &Node) -> bool {
        match (self, other) {
            (Node::Shared(a), Node::Shared(b)) => a.kind == b.kind,
            _ => false,
        }
    }

    /// A hash of the whole content, to compare elements quickly before comparing them fully.
    pub fn digest(&self) -> u64 {
        let mut hasher = DefaultHasher::new();
        // The JSON rendering is canonical (sorted keys), so equal content hashes equally.
        node_json(self).to_string().hash(&mut hasher);
        hasher.finish()
    }
}

/// Every root of a document with content, by name, read from a transaction.
///
/// A root without live content is left out: once its deleted content is collected, an encoded
/// state cannot tell an emptied root from one never created.
pub(crate) fn read_roots<T: ReadTxn>(txn: &T) -> Result<BTreeMap<String, Shared>, HistoryError> {
    let mut roots = BTreeMap::new();
    let refs: Vec<(String, Out)> = txn
        .root_refs()
        .map(|(name, out)| (name.to_string(), out))
        .collect();
    for (name, out) in refs {
        let Some(branch) = out.try_branch().map(BranchPtr::from) else {
            continue;
        };
        let Some(kind) = root_kind(txn, branch, &out) else {
            continue;
        };
        let shared = read_shared(txn, branch, kind, 0)?;
        if !shared.is_empty() {
            roots.insert(name, shared);
        }
    }
    Ok(roots)
}

/// The kind of a root, or `None` if it has no live content.
///
/// A decoded state names a root only by the key its items point to, not by its type (Yjs
/// writes no type for roots), so yrs holds such a root as `Out::UndefinedRef`. Its kind is
/// inferred from what it holds: characters or value embeds (Yjs `ContentString`,
/// `ContentEmbed`, which only texts hold) make a text, and with map entries an XML text;
/// elements that are all XML nodes make an XML fragment (Tiptap's and y-prosemirror's
/// `prosemirror`/`default`); other elements an array; map entries alone a map. Roots whose
/// type was declared locally keep it.
pub(crate) fn root_kind<T: ReadTxn>(txn: &T, branch: BranchPtr, out: &Out) -> Option<Kind> {
    match out {
        Out::YText(_) => return Some(Kind::Text),
        Out::YArray(_) => return Some(Kind::Array),
        Out::YMap(_) => return Some(Kind::Map),
        Out::YXmlFragment(_) | Out::YXmlElement(_) => return Some(Kind::XmlFragment),
        Out::YXmlText(_) => return Some(Kind::XmlText),
        _ => {}
    }
    infer_kind(txn, branch)
}

/// Infers the kind of a branch whose type is undefined (see [`root_kind`]).
fn infer_kind<T: ReadTxn>(txn: &T, branch: BranchPtr) -> Option<Kind> {
    let has_map = MapRef::from(branch).len(txn) > 0;
    let text = TextRef::from(branch).diff(txn, YChange::identity);
    if text.iter().any(|chunk| matches!(chunk.insert, Out::Any(_))) {
        return Some(if has_map { Kind::XmlText } else { Kind::Text });
    }
    let array = ArrayRef::from(branch);
    if array.len(txn) > 0 {
        let all_xml = array.iter(txn).all(|out| is_xml_node(&out));
        return Some(if all_xml {
            Kind::XmlFragment
        } else {
            Kind::Array
        });
    }
    has_map.then_some(Kind::Map)
}

fn is_xml_node(out: &Out) -> bool {
    match out {
        Out::YXmlElement(_) | Out::YXmlText(_) | Out::YXmlFragment(_) => true,
        Out::YMap(map) => matches!(map.as_ref().type_ref(), TypeRef::XmlHook(_)),
        _ => false,
    }
}

/// Reads a shared type of a known kind.
pub(crate) fn read_shared<T: ReadTxn>(
    txn: &T,
    branch: BranchPtr,
    kind: Kind,
    depth: usize,
) -> Result<Shared, HistoryError> {
    if depth >= MAX_DEPTH {
        return Err(HistoryError::TooDeep(MAX_DEPTH));
    }
    let list = if kind.is_text() {
        let mut runs: Vec<Run> = Vec::new();
        for chunk in TextRef::from(branch).diff(txn, YChange::identity) {
            let format = read_format(chunk.attributes.as_deref());
            let piece = match chunk.insert {
                Out::Any(Any::String(s)) => Piece::Str(s.to_string()),
                other => Piece::Embed(Box::new(read_node(txn, other, depth + 1)?)),
            };
            push_run(&mut runs, Run { piece, format });
        }
        List::Text(runs)
    } else if matches!(kind, Kind::Map | Kind::XmlHook(_)) {
        List::Items(Vec::new())
    } else {
        let mut items = Vec::new();
        for out in ArrayRef::from(branch).iter(txn) {
            items.push(read_node(txn, out, depth + 1)?);
        }
        List::Items(items)
    };
    let mut map = BTreeMap::new();
    let entries: Vec<(String, Out)> = MapRef::from(branch)
        .iter(txn)
        .map(|(key, out)| (key.to_string(), out))
        .collect();
    for (key, out) in entries {
        map.insert(key, read_node(txn, out, depth + 1)?);
    }
    Ok(Shared { kind, list, map })
}

/// Appends a run, merging it into the previous one when both are text with the same format
/// (yrs may split a run at a format item that changes nothing).
pub(crate) fn push_run(runs: &mut Vec<Run>, run: Run) {
    if let Piece::Str(s) = &run.piece {
        if s.is_empty() {
            return;
        }
        if let Some(Run {
            piece: Piece::Str(prev),
            format,
        }) = runs.last_mut()
            && *format == run.format
        {
            prev.push_str(s);
            return;
        }
    }
    runs.push(run);
}

fn read_format(attrs: Option<&Attrs>) -> Format {
    attrs
        .map(|attrs| {
            attrs
                .iter()
                .filter(|(_, v)| !matches!(v, Any::Null | Any::Undefined))
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect()
        })
        .unwrap_or_default()
}

/// Reads one value.
pub(crate) fn read_node<T: ReadTxn>(txn: &T, out: Out, depth: usize) -> Result<Node, HistoryError> {
    if depth >= MAX_DEPTH {
        return Err(HistoryError::TooDeep(MAX_DEPTH));
    }
    let (branch, kind) = match &out {
        Out::Any(any) => {
            check_any_depth(any, depth)?;
            return Ok(Node::Value(any.clone()));
        }
        Out::YDoc(doc) => {
            return Ok(Node::Doc {
                guid: doc.guid().to_string(),
            });
        }
        Out::YText(r) => (branch_of(r), Kind::Text),
        Out::YArray(r) => (branch_of(r), Kind::Array),
        Out::YMap(r) => {
            let kind = match r.as_ref().type_ref() {
                TypeRef::XmlHook(name) => Kind::XmlHook(name.to_string()),
                _ => Kind::Map,
            };
            (branch_of(r), kind)
        }
        Out::YXmlFragment(r) => (branch_of(r), Kind::XmlFragment),
        Out::YXmlText(r) => (branch_of(r), Kind::XmlText),
        Out::YXmlElement(r) => {
            let tag = r.try_tag().map(|t| t.to_string()).unwrap_or_default();
            (branch_of(r), Kind::XmlElement(tag))
        }
        Out::UndefinedRef(b) => {
            let branch = *b;
            match infer_kind(txn, branch) {
                Some(kind) => (branch, kind),
                // Nothing live inside: an empty map renders and restores as well as anything.
                None => (branch, Kind::Map),
            }
        }
    };
    Ok(Node::Shared(read_shared(txn, branch, kind, depth)?))
}

/// The branch of a shared type reference.
pub(crate) fn branch_of<R: AsRef<Branch>>(r: &R) -> BranchPtr {
    BranchPtr::from(r.as_ref())
}

fn check_any_depth(any: &Any, depth: usize) -> Result<(), HistoryError> {
    if depth >= MAX_DEPTH {
        return Err(HistoryError::TooDeep(MAX_DEPTH));
    }
    match any {
        Any::Array(items) => items.iter().try_for_each(|a| check_any_depth(a, depth + 1)),
        Any::Map(map) => map.values().try_for_each(|a| check_any_depth(a, depth + 1)),
        _ => Ok(()),
    }
}

// ---------------------------------------------------------------------------------------------
// JSON rendering (the shape is documented in the crate docs).

/// The JSON of a whole document: `{"roots": {name: node}}`.
pub(crate) fn roots_json(roots: &BTreeMap<String, Shared>) -> Json {
    let mut out = JsonMap::new();
    for (name, shared) in roots {
        out.insert(name.clone(), shared_json(shared));
    }
    let mut doc = JsonMap::new();
    doc.insert("roots".into(), Json::Object(out));
    Json::Object(doc)
}

/// The JSON of one node.
pub(crate) fn node_json(node: &Node) -> Json {
    match node {
        Node::Value(any) => {
            let mut o = JsonMap::new();
            o.insert("kind".into(), "value".into());
            o.insert("value".into(), any_json(any));
            Json::Object(o)
        }
        Node::Doc { guid } => {
            let mut o = JsonMap::new();
            o.insert("kind".into(), "doc".into());
            o.insert("guid".into(), guid.clone().into());
            Json::Object(o)
        }
        Node::Shared(shared) => shared_json(shared),
    }
}

/// The JSON of one shared type.
pub(crate) fn shared_json(shared: &Shared) -> Json {
    let mut o = JsonMap::new();
    o.insert("kind".into(), shared.kind.name().into());
    match &shared.kind {
        Kind::XmlElement(tag) => {
            o.insert("tag".into(), tag.clone().into());
        }
        Kind::XmlHook(name) => {
            o.insert("hook".into(), name.clone().into());
        }
        _ => {}
    }
    match &shared.list {
        List::Text(runs) => {
            o.insert(
                "delta".into(),
                Json::Array(runs.iter().map(run_json).collect()),
            );
        }
        List::Items(items) => {
            let key = match shared.kind {
                Kind::Array => Some("items"),
                Kind::Map | Kind::XmlHook(_) => None,
                _ => Some("children"),
            };
            if let Some(key) = key {
                o.insert(
                    key.into(),
                    Json::Array(items.iter().map(node_json).collect()),
                );
            } else if !items.is_empty() {
                // A map that also holds elements (only a hostile or odd state does).
                o.insert(
                    "items".into(),
                    Json::Array(items.iter().map(node_json).collect()),
                );
            }
        }
    }
    let map_key = match shared.kind {
        Kind::Map | Kind::XmlHook(_) => Some("entries"),
        Kind::XmlElement(_) | Kind::XmlText => Some("attributes"),
        _ if !shared.map.is_empty() => Some("attributes"),
        _ => None,
    };
    if let Some(key) = map_key {
        let entries = shared
            .map
            .iter()
            .map(|(k, v)| (k.clone(), node_json(v)))
            .collect();
        o.insert(key.into(), Json::Object(entries));
    }
    Json::Object(o)
}

/// The JSON of one text run: `{"insert": "text"}` or `{"insert": {"embed": node}}`, with
/// `"attributes"` when formatted.
pub(crate) fn run_json(run: &Run) -> Json {
    let mut o = JsonMap::new();
    match &run.piece {
        Piece::Str(s) => {
            o.insert("insert".into(), s.clone().into());
        }
        Piece::Embed(node) => {
            let mut e = JsonMap::new();
            e.insert("embed".into(), node_json(node));
            o.insert("insert".into(), Json::Object(e));
        }
    }
    if !run.format.is_empty() {
        o.insert("attributes".into(), format_json(&run.format));
    }
    Json::Object(o)
}

/// Formatting attributes as a JSON object.
pub(crate) fn format_json(format: &Format) -> Json {
    Json::Object(
        format
            .iter()
            .map(|(k, v)| (k.clone(), any_json(v)))
            .collect(),
    )
}

/// A primitive as JSON: numbers, strings, booleans, arrays and objects as themselves;
/// `undefined` and non-finite numbers as `null`; binary as `{"$binary": "<hex>"}`.
pub(crate) fn any_json(any: &Any) -> Json {
    match any {
        Any::Null | Any::Undefined => Json::Null,
        Any::Bool(b) => Json::Bool(*b),
        Any::Number(Number::Int(n)) => Json::Number((*n).into()),
        Any::Number(Number::Float(f)) => {
            serde_json::Number::from_f64(*f).map_or(Json::Null, Json::Number)
        }
        Any::String(s) => Json::String(s.to_string()),
        Any::Buffer(bytes) => {
            let mut o = JsonMap::new();
            o.insert("$binary".into(), Json::String(hex(bytes)));
            Json::Object(o)
        }
        Any::Array(items) => Json::Array(items.iter().map(any_json).collect()),
        Any::Map(map) => {
            // Sorted, whatever map the JSON library keeps, so the output is stable.
            let sorted: BTreeMap<&str, &Any> = map.iter().map(|(k, v)| (k.as_str(), v)).collect();
            Json::Object(
                sorted
                    .into_iter()
                    .map(|(k, v)| (k.to_string(), any_json(v)))
                    .collect(),
            )
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    s
}

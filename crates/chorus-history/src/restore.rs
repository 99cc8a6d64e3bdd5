//! The forward update that gives a live document an earlier version's content.
//!
//! The current state is loaded into a private document that writes under the restore's client
//! id; the plans of [`crate::plan`] are applied to it in one transaction, and that
//! transaction's update is the result. Nothing of the past is rewritten: the update only adds
//! items and deletes current ones, as a user typing would, so every peer (and its undo
//! manager) takes it as an ordinary edit, and it composes with edits made concurrently.
//!
//! Every position handed to yrs comes from reading the same document, and is checked against
//! the live length first: yrs' local editing API panics on an out-of-range position, and a
//! restore must never take the server down with it.

use std::collections::BTreeMap;

use yrs::branch::BranchPtr;
use yrs::types::Attrs;
use yrs::types::text::DeltaPrelim;
use yrs::types::xml::XmlDeltaPrelim;
use yrs::{
    Any, Array, ArrayPrelim, ArrayRef, Doc, In, Map, MapPrelim, MapRef, Options, Out, Text,
    TextPrelim, TextRef, TransactionMut, WriteTxn, XmlElementPrelim, XmlFragmentPrelim,
    XmlTextPrelim,
};

use crate::HistoryError;
use crate::model::{Format, Kind, List, MAX_DEPTH, Node, Shared, branch_of};
use crate::plan::{self, Chunk, KeyStep, ListStep, TextStep};

/// Applies, in `txn`, the changes that turn every root from `current` into `target`.
pub(crate) fn restore_roots(
    txn: &mut TransactionMut,
    current: &BTreeMap<String, Shared>,
    target: &BTreeMap<String, Shared>,
) -> Result<(), HistoryError> {
    let names: std::collections::BTreeSet<&String> = current.keys().chain(target.keys()).collect();
    for name in names {
        let (cur, tgt) = (current.get(name), target.get(name));
        if cur == tgt {
            continue;
        }
        // An absent side is an empty root of the other side's kind.
        let kind = match (cur, tgt) {
            (_, Some(t)) => t.kind.clone(),
            (Some(c), None) => c.kind.clone(),
            (None, None) => continue,
        };
        let empty_cur;
        let cur = match cur {
            Some(c) => c,
            None => {
                empty_cur = Shared::empty(kind.clone());
                &empty_cur
            }
        };
        let empty_tgt;
        let tgt = match tgt {
            Some(t) => t,
            None => {
                empty_tgt = Shared::empty(cur.kind.clone());
                &empty_tgt
            }
        };
        let branch = root_branch(txn, name.as_str(), &kind);
        sync(txn, branch, cur, tgt, 0)?;
    }
    Ok(())
}

/// The branch of a root, created if the current document has none. The kind only decides how
/// yrs labels the branch locally: items name their parent root by key alone.
fn root_branch(txn: &mut TransactionMut, name: &str, kind: &Kind) -> BranchPtr {
    match kind {
        Kind::Text | Kind::XmlText => branch_of(&txn.get_or_insert_text(name)),
        Kind::Map | Kind::XmlHook(_) => branch_of(&txn.get_or_insert_map(name)),
        Kind::Array => branch_of(&txn.get_or_insert_array(name)),
        Kind::XmlFragment | Kind::XmlElement(_) => branch_of(&txn.get_or_insert_xml_fragment(name)),
    }
}

/// Edits `branch`, whose content is `cur`, until its content is `tgt`.
fn sync(
    txn: &mut TransactionMut,
    branch: BranchPtr,
    cur: &Shared,
    tgt: &Shared,
    depth: usize,
) -> Result<(), HistoryError> {
    if depth >= MAX_DEPTH {
        return Err(HistoryError::TooDeep(MAX_DEPTH));
    }
    match (&cur.list, &tgt.list) {
        (List::Text(a), List::Text(b)) => sync_text(txn, branch, a, b, depth)?,
        (List::Items(a), List::Items(b)) => sync_items(txn, branch, a, b, depth)?,
        // The list part changes sort (only across roots whose kind was inferred differently):
        // empty it, then fill it.
        (List::Text(a), List::Items(b)) => {
            sync_text(txn, branch, a, &[], depth)?;
            sync_items(txn, branch, &[], b, depth)?;
        }
        (List::Items(a), List::Text(b)) => {
            sync_items(txn, branch, a, &[], depth)?;
            sync_text(txn, branch, &[], b, depth)?;
        }
    }
    sync_map(txn, branch, &cur.map, &tgt.map, depth)
}

fn sync_text(
    txn: &mut TransactionMut,
    branch: BranchPtr,
    a: &[crate::model::Run],
    b: &[crate::model::Run],
    depth: usize,
) -> Result<(), HistoryError> {
    let text = TextRef::from(branch);
    let mut pos: u32 = 0;
    for step in plan::text_plan(a, b) {
        match step {
            TextStep::Retain { len } => pos = advance(pos, len)?,
            TextStep::Format { len, changes } => {
                check_range(pos, len, text.len(txn))?;
                let attrs: Attrs = changes
                    .into_iter()
                    .map(|(k, v)| (k.into(), v.unwrap_or(Any::Null)))
                    .collect();
                text.format(txn, pos, len, attrs);
                pos = advance(pos, len)?;
            }
            TextStep::Delete { chunk, .. } => {
                let len = chunk.len16();
                check_range(pos, len, text.len(txn))?;
                text.remove_range(txn, pos, len);
            }
            TextStep::Insert { chunk, format } => {
                check_range(pos, 0, text.len(txn))?;
                let attrs = attrs_of(format);
                let len = chunk.len16();
                match chunk {
                    Chunk::Str(s) => text.insert_with_attributes(txn, pos, &s, attrs),
                    Chunk::Embed(node) => insert_embed(txn, &text, pos, node, attrs, depth)?,
                }
                pos = advance(pos, len)?;
            }
        }
    }
    Ok(())
}

fn insert_embed(
    txn: &mut TransactionMut,
    text: &TextRef,
    pos: u32,
    node: &Node,
    attrs: Attrs,
    depth: usize,
) -> Result<(), HistoryError> {
    let shared = match node {
        Node::Value(any) => {
            text.insert_embed_with_attributes(txn, pos, any.clone(), attrs);
            return Ok(());
        }
        Node::Doc { .. } => {
            return Err(HistoryError::Unsupported(
                "a sub-document embedded in a text".into(),
            ));
        }
        Node::Shared(shared) => shared,
    };
    let branch = match &shared.kind {
        Kind::Text => {
            let r = text.insert_embed_with_attributes(txn, pos, TextPrelim::new(""), attrs);
            branch_of(&r)
        }
        Kind::Map => {
            let r = text.insert_embed_with_attributes(txn, pos, MapPrelim::default(), attrs);
            branch_of(&r)
        }
        Kind::Array => {
            let r = text.insert_embed_with_attributes(txn, pos, ArrayPrelim::default(), attrs);
            branch_of(&r)
        }
        Kind::XmlFragment => {
            let r =
                text.insert_embed_with_attributes(txn, pos, XmlFragmentPrelim::default(), attrs);
            branch_of(&r)
        }
        Kind::XmlElement(tag) => {
            let prelim = XmlElementPrelim::empty(tag.as_str());
            let r = text.insert_embed_with_attributes(txn, pos, prelim, attrs);
            branch_of(&r)
        }
        Kind::XmlText => {
            let r = text.insert_embed_with_attributes(txn, pos, XmlTextPrelim::new(""), attrs);
            branch_of(&r)
        }
        Kind::XmlHook(_) => return Err(unsupported_hook()),
    };
    sync(
        txn,
        branch,
        &Shared::empty(shared.kind.clone()),
        shared,
        depth + 1,
    )
}

fn sync_items(
    txn: &mut TransactionMut,
    branch: BranchPtr,
    a: &[Node],
    b: &[Node],
    depth: usize,
) -> Result<(), HistoryError> {
    let array = ArrayRef::from(branch);
    let mut pos: u32 = 0;
    for step in plan::list_plan(a, b) {
        match step {
            ListStep::Retain { len } => pos = advance(pos, to_u32(len)?)?,
            ListStep::Delete { nodes, .. } => {
                let len = to_u32(nodes.len())?;
                check_range(pos, len, array.len(txn))?;
                array.remove_range(txn, pos, len);
            }
            ListStep::Insert { nodes, .. } => {
                for node in nodes {
                    check_range(pos, 0, array.len(txn))?;
                    match node {
                        Node::Value(any) => {
                            array.insert(txn, pos, any.clone());
                        }
                        Node::Doc { guid } => {
                            array.insert(txn, pos, subdoc(guid));
                        }
                        Node::Shared(shared) => {
                            let out = array.insert(txn, pos, empty_prelim(&shared.kind)?);
                            fill(txn, &out, shared, depth)?;
                        }
                    }
                    pos = advance(pos, 1)?;
                }
            }
            ListStep::Edit { from, to, .. } => {
                let child = array
                    .get(txn, pos)
                    .as_ref()
                    .and_then(Out::try_branch)
                    .map(BranchPtr::from)
                    .ok_or_else(|| inconsistent("no shared element where one was read"))?;
                sync(txn, child, from, to, depth + 1)?;
                pos = advance(pos, 1)?;
            }
        }
    }
    Ok(())
}

fn sync_map(
    txn: &mut TransactionMut,
    branch: BranchPtr,
    a: &BTreeMap<String, Node>,
    b: &BTreeMap<String, Node>,
    depth: usize,
) -> Result<(), HistoryError> {
    let map = MapRef::from(branch);
    for step in plan::map_plan(a, b) {
        match step {
            KeyStep::Remove { key, .. } => {
                map.remove(txn, key);
            }
            KeyStep::Add { key, new } | KeyStep::Replace { key, new, .. } => match new {
                Node::Value(any) => {
                    map.insert(txn, key, any.clone());
                }
                Node::Doc { guid } => {
                    map.insert(txn, key, subdoc(guid));
                }
                Node::Shared(shared) => {
                    let out = map.insert(txn, key, empty_prelim(&shared.kind)?);
                    fill(txn, &out, shared, depth)?;
                }
            },
            KeyStep::Edit { key, from, to } => {
                let child = map
                    .get(txn, key)
                    .as_ref()
                    .and_then(Out::try_branch)
                    .map(BranchPtr::from)
                    .ok_or_else(|| inconsistent("no shared value where one was read"))?;
                sync(txn, child, from, to, depth + 1)?;
            }
        }
    }
    Ok(())
}

/// Fills a just inserted, empty shared type with `shared`'s content.
fn fill(
    txn: &mut TransactionMut,
    out: &Out,
    shared: &Shared,
    depth: usize,
) -> Result<(), HistoryError> {
    let branch = out
        .try_branch()
        .map(BranchPtr::from)
        .ok_or_else(|| inconsistent("an inserted shared type has no branch"))?;
    sync(
        txn,
        branch,
        &Shared::empty(shared.kind.clone()),
        shared,
        depth + 1,
    )
}

/// An empty shared type of `kind`, ready to insert.
fn empty_prelim(kind: &Kind) -> Result<In, HistoryError> {
    Ok(match kind {
        Kind::Text => In::Text(DeltaPrelim::default()),
        Kind::Map => In::Map(MapPrelim::default()),
        Kind::Array => In::Array(ArrayPrelim::default()),
        Kind::XmlFragment => In::XmlFragment(XmlFragmentPrelim::default()),
        Kind::XmlElement(tag) => In::XmlElement(XmlElementPrelim::empty(tag.as_str())),
        Kind::XmlText => In::XmlText(XmlDeltaPrelim::default()),
        Kind::XmlHook(_) => return Err(unsupported_hook()),
    })
}

/// A sub-document with this guid (its content lives elsewhere, under that guid).
fn subdoc(guid: &str) -> Doc {
    Doc::with_options(Options {
        guid: guid.into(),
        ..Options::default()
    })
}

fn unsupported_hook() -> HistoryError {
    // yrs has no way to create a `Y.XmlHook`; an existing one is still edited in place.
    HistoryError::Unsupported("re-creating a Y.XmlHook".into())
}

fn attrs_of(format: &Format) -> Attrs {
    format
        .iter()
        .map(|(k, v)| (k.as_str().into(), v.clone()))
        .collect()
}

fn inconsistent(what: &str) -> HistoryError {
    HistoryError::Inconsistent(what.to_string())
}

fn advance(pos: u32, len: u32) -> Result<u32, HistoryError> {
    pos.checked_add(len)
        .ok_or_else(|| inconsistent("position overflows"))
}

fn to_u32(n: usize) -> Result<u32, HistoryError> {
    u32::try_from(n).map_err(|_| inconsistent("length overflows"))
}

/// Checks that `pos..pos+len` lies within a sequence of `live` units, so yrs cannot panic.
fn check_range(pos: u32, len: u32, live: u32) -> Result<(), HistoryError> {
    match pos.checked_add(len) {
        Some(end) if end <= live => Ok(()),
        _ => Err(inconsistent(
            "a position read from the document is out of range",
        )),
    }
}

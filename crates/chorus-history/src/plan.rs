//! What to change, type by type, to turn one content into another.
//!
//! [`restore`](crate::restore) applies these plans to a live yrs document; [`diff`](crate::diff)
//! renders the same plans for a UI. Keeping one planner means the diff a user reads is exactly
//! what a restore would do.
//!
//! - Text: a shortest edit script over characters (Unicode scalar values, so a surrogate pair
//!   is never split) and embeds, then formatting changes on the characters both sides keep.
//! - Lists (arrays, XML children): elements with equal content are kept; in each stretch that
//!   differs, elements of the same shape (same shared kind, same XML tag) are paired in order and
//!   edited in place, so that a paragraph with one word changed stays the same paragraph (and
//!   concurrent edits inside it survive); the others are deleted or inserted.
//! - Maps (map entries, XML attributes): by key; shared values of the same shape are edited in
//!   place, everything else is set.

use std::collections::BTreeSet;

use crate::model::{Format, Node, Piece, Run, Shared};
use crate::seq::{self, Op};

/// One unit of text: a character or an embed, with its run (for its formatting).
#[derive(Debug, Clone, Copy)]
struct Unit<'a> {
    piece: UnitPiece<'a>,
    run: usize,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum UnitPiece<'a> {
    Char(char),
    Embed(&'a Node),
}

impl UnitPiece<'_> {
    /// Length in UTF-16 code units, the unit Yjs positions count in.
    fn len16(&self) -> u32 {
        match self {
            UnitPiece::Char(c) => c.len_utf16() as u32,
            UnitPiece::Embed(_) => 1,
        }
    }
}

fn units(runs: &[Run]) -> Vec<Unit<'_>> {
    let mut out = Vec::new();
    for (run, r) in runs.iter().enumerate() {
        match &r.piece {
            Piece::Str(s) => out.extend(s.chars().map(|c| Unit {
                piece: UnitPiece::Char(c),
                run,
            })),
            Piece::Embed(node) => out.push(Unit {
                piece: UnitPiece::Embed(node),
                run,
            }),
        }
    }
    out
}

/// A piece of text content in a step: characters of one format, or one embed.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Chunk<'a> {
    Str(String),
    Embed(&'a Node),
}

impl Chunk<'_> {
    pub fn len16(&self) -> u32 {
        match self {
            Chunk::Str(s) => s.encode_utf16().count() as u32,
            Chunk::Embed(_) => 1,
        }
    }
}

/// One step of a text plan, in document order. Lengths are UTF-16 code units.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum TextStep<'a> {
    /// Keep `len` units as they are.
    Retain { len: u32 },
    /// Keep `len` units, changing their formatting: `changes` maps each attribute that differs
    /// to its new value, `None` where the attribute goes away.
    Format {
        len: u32,
        changes: Vec<(String, Option<yrs::Any>)>,
    },
    /// Delete these units (with the formatting they had).
    Delete {
        chunk: Chunk<'a>,
        format: &'a Format,
    },
    /// Insert these units with exactly this formatting.
    Insert {
        chunk: Chunk<'a>,
        format: &'a Format,
    },
}

/// The plan that turns text `a` into text `b`.
pub(crate) fn text_plan<'a>(a: &'a [Run], b: &'a [Run]) -> Vec<TextStep<'a>> {
    let ua = units(a);
    let ub = units(b);
    let ops = seq::diff(ua.len(), ub.len(), |i, j| ua[i].piece == ub[j].piece);
    let mut steps = Vec::new();
    for op in ops {
        match op {
            Op::Equal { a: ia, b: ib, len } => {
                // Group by the pair of runs, inside which formatting is constant.
                let mut i = 0;
                while i < len {
                    let (ra, rb) = (ua[ia + i].run, ub[ib + i].run);
                    let mut len16 = 0;
                    while i < len && ua[ia + i].run == ra && ub[ib + i].run == rb {
                        len16 += ua[ia + i].piece.len16();
                        i += 1;
                    }
                    let changes = format_changes(&a[ra].format, &b[rb].format);
                    push_text(
                        &mut steps,
                        if changes.is_empty() {
                            TextStep::Retain { len: len16 }
                        } else {
                            TextStep::Format {
                                len: len16,
                                changes,
                            }
                        },
                    );
                }
            }
            Op::Delete { a: ia, len } => {
                for (chunk, run) in chunks(&ua[ia..ia + len]) {
                    steps.push(TextStep::Delete {
                        chunk,
                        format: &a[run].format,
                    });
                }
            }
            Op::Insert { b: ib, len } => {
                for (chunk, run) in chunks(&ub[ib..ib + len]) {
                    steps.push(TextStep::Insert {
                        chunk,
                        format: &b[run].format,
                    });
                }
            }
        }
    }
    steps
}

/// Merges a retain into a preceding retain, and equal formats into each other.
fn push_text<'a>(steps: &mut Vec<TextStep<'a>>, step: TextStep<'a>) {
    match (steps.last_mut(), &step) {
        (Some(TextStep::Retain { len }), TextStep::Retain { len: more }) => *len += more,
        (
            Some(TextStep::Format { len, changes }),
            TextStep::Format {
                len: more,
                changes: same,
            },
        ) if changes == same => *len += more,
        _ => steps.push(step),
    }
}

/// Splits units into chunks of one run each (embeds alone).
fn chunks<'a>(units: &[Unit<'a>]) -> Vec<(Chunk<'a>, usize)> {
    let mut out: Vec<(Chunk<'a>, usize)> = Vec::new();
    for u in units {
        match u.piece {
            UnitPiece::Char(c) => match out.last_mut() {
                Some((Chunk::Str(s), run)) if *run == u.run => s.push(c),
                _ => out.push((Chunk::Str(c.to_string()), u.run)),
            },
            UnitPiece::Embed(node) => out.push((Chunk::Embed(node), u.run)),
        }
    }
    out
}

/// The attributes whose value differs from `a` to `b`, with `b`'s value (`None`: removed).
pub(crate) fn format_changes(a: &Format, b: &Format) -> Vec<(String, Option<yrs::Any>)> {
    let keys: BTreeSet<&String> = a.keys().chain(b.keys()).collect();
    keys.into_iter()
        .filter(|k| a.get(*k) != b.get(*k))
        .map(|k| (k.clone(), b.get(k).cloned()))
        .collect()
}

/// One step of a list plan, in order.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum ListStep<'a> {
    /// Keep `len` elements (equal on both sides).
    Retain { len: usize },
    /// Delete these elements of `a`.
    Delete { a: usize, nodes: &'a [Node] },
    /// Insert these elements of `b`.
    Insert { b: usize, nodes: &'a [Node] },
    /// Edit element `a` (index in `a`) into element `b` (index in `b`): same shape, other content.
    Edit {
        a: usize,
        b: usize,
        from: &'a Shared,
        to: &'a Shared,
    },
}

/// The plan that turns the elements `a` into the elements `b`.
pub(crate) fn list_plan<'a>(a: &'a [Node], b: &'a [Node]) -> Vec<ListStep<'a>> {
    let da: Vec<u64> = a.iter().map(Node::digest).collect();
    let db: Vec<u64> = b.iter().map(Node::digest).collect();
    let ops = seq::diff(a.len(), b.len(), |i, j| da[i] == db[j] && a[i] == b[j]);
    let mut steps = Vec::new();
    let mut i = 0;
    while i < ops.len() {
        match ops[i] {
            Op::Equal { len, .. } => {
                steps.push(ListStep::Retain { len });
                i += 1;
            }
            _ => {
                // A stretch of changes: a deletion, an insertion, or both.
                let (mut del, mut ins) = ((0, 0), (0, 0));
                while let Some(op) = ops.get(i) {
                    match *op {
                        Op::Delete { a, len } => del = (a, len),
                        Op::Insert { b, len } => ins = (b, len),
                        Op::Equal { .. } => break,
                    }
                    i += 1;
                }
                pair_up(&mut steps, a, del, b, ins);
            }
        }
    }
    steps
}

/// Plans a stretch where `a[del]` became `b[ins]`: pairs elements of the same shape in order.
fn pair_up<'a>(
    steps: &mut Vec<ListStep<'a>>,
    a: &'a [Node],
    (a0, alen): (usize, usize),
    b: &'a [Node],
    (b0, blen): (usize, usize),
) {
    let ra = &a[a0..a0 + alen];
    let rb = &b[b0..b0 + blen];
    for op in seq::diff(alen, blen, |i, j| ra[i].same_shape(&rb[j])) {
        match op {
            Op::Equal { a: i, b: j, len } => {
                for k in 0..len {
                    if let (Node::Shared(from), Node::Shared(to)) = (&ra[i + k], &rb[j + k]) {
                        steps.push(ListStep::Edit {
                            a: a0 + i + k,
                            b: b0 + j + k,
                            from,
                            to,
                        });
                    }
                }
            }
            Op::Delete { a: i, len } => steps.push(ListStep::Delete {
                a: a0 + i,
                nodes: &ra[i..i + len],
            }),
            Op::Insert { b: j, len } => steps.push(ListStep::Insert {
                b: b0 + j,
                nodes: &rb[j..j + len],
            }),
        }
    }
}

/// One change of a map plan, by key.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum KeyStep<'a> {
    /// The key is only in `a`.
    Remove { key: &'a str, old: &'a Node },
    /// The key is only in `b`.
    Add { key: &'a str, new: &'a Node },
    /// The value differs and is replaced whole.
    Replace {
        key: &'a str,
        old: &'a Node,
        new: &'a Node,
    },
    /// Both are shared types of the same shape: edit in place.
    Edit {
        key: &'a str,
        from: &'a Shared,
        to: &'a Shared,
    },
}

/// The plan that turns map `a` into map `b`, by key in order.
pub(crate) fn map_plan<'a>(
    a: &'a std::collections::BTreeMap<String, Node>,
    b: &'a std::collections::BTreeMap<String, Node>,
) -> Vec<KeyStep<'a>> {
    let keys: BTreeSet<&'a String> = a.keys().chain(b.keys()).collect();
    let mut steps = Vec::new();
    for key in keys {
        match (a.get(key), b.get(key)) {
            (Some(old), None) => steps.push(KeyStep::Remove { key, old }),
            (None, Some(new)) => steps.push(KeyStep::Add { key, new }),
            (Some(old), Some(new)) if old != new => match (old, new) {
                (Node::Shared(from), Node::Shared(to)) if from.kind == to.kind => {
                    steps.push(KeyStep::Edit { key, from, to })
                }
                _ => steps.push(KeyStep::Replace { key, old, new }),
            },
            _ => {}
        }
    }
    steps
}

//! Property tests: random edit sequences over every kind of shared type, on documents with gc
//! on. A version is taken after a first sequence, more edits (with deletions) make the current
//! state, and the restore must give back exactly the version's content; a replica editing
//! meanwhile must converge with the restored document.

use std::collections::HashMap;

use proptest::prelude::*;
use yrs::types::Attrs;
use yrs::{
    Any, Array, ArrayPrelim, ArrayRef, Doc, GetString, Map, MapPrelim, MapRef, Out, Text,
    TextPrelim, TextRef, Transact, TransactionMut, WriteTxn, Xml, XmlElementPrelim, XmlFragment,
    XmlTextPrelim, XmlTextRef,
};

use chorus_history::restore_update;

use crate::helpers::{RESTORE_ID, apply, assert_restores, content, doc, load, state};

/// Pieces of text, some outside the BMP so UTF-16 positions differ from char counts.
const WORDS: &[&str] = &["a", "bc", "def ", "é", "😀", "\n", "xyz", "🎉!"];
const KEYS: &[&str] = &["k0", "k1", "k2", "k3"];
const TAGS: &[&str] = &["paragraph", "heading", "blockquote"];

#[derive(Debug, Clone)]
pub enum Edit {
    TextInsert {
        at: usize,
        word: usize,
        fmt: usize,
    },
    TextDelete {
        at: usize,
        len: usize,
    },
    TextFormat {
        at: usize,
        len: usize,
        fmt: usize,
    },
    TextEmbed {
        at: usize,
    },
    MapSet {
        key: usize,
        val: usize,
    },
    MapRemove {
        key: usize,
    },
    MapNestedText {
        key: usize,
        at: usize,
        word: usize,
    },
    ArrayInsert {
        at: usize,
        val: usize,
    },
    ArrayRemove {
        at: usize,
        len: usize,
    },
    ArrayNestedSet {
        at: usize,
        key: usize,
        val: usize,
    },
    XmlInsert {
        at: usize,
        tag: usize,
        word: usize,
    },
    XmlRemove {
        at: usize,
    },
    XmlTextInsert {
        node: usize,
        at: usize,
        word: usize,
        bold: bool,
    },
    XmlTextDelete {
        node: usize,
        at: usize,
        len: usize,
    },
    XmlAttr {
        node: usize,
        val: usize,
    },
}

/// One random edit of any kind.
pub fn edit() -> impl Strategy<Value = Edit> {
    let n = 0usize..64;
    prop_oneof![
        (n.clone(), 0..WORDS.len(), 0usize..4).prop_map(|(at, word, fmt)| Edit::TextInsert {
            at,
            word,
            fmt
        }),
        (n.clone(), 1usize..6).prop_map(|(at, len)| Edit::TextDelete { at, len }),
        (n.clone(), 1usize..8, 0usize..5).prop_map(|(at, len, fmt)| Edit::TextFormat {
            at,
            len,
            fmt
        }),
        n.clone().prop_map(|at| Edit::TextEmbed { at }),
        (0..KEYS.len(), 0usize..6).prop_map(|(key, val)| Edit::MapSet { key, val }),
        (0..KEYS.len()).prop_map(|key| Edit::MapRemove { key }),
        (0..KEYS.len(), n.clone(), 0..WORDS.len())
            .prop_map(|(key, at, word)| Edit::MapNestedText { key, at, word }),
        (n.clone(), 0usize..6).prop_map(|(at, val)| Edit::ArrayInsert { at, val }),
        (n.clone(), 1usize..3).prop_map(|(at, len)| Edit::ArrayRemove { at, len }),
        (n.clone(), 0..KEYS.len(), 0usize..6).prop_map(|(at, key, val)| Edit::ArrayNestedSet {
            at,
            key,
            val
        }),
        (n.clone(), 0..TAGS.len(), 0..WORDS.len()).prop_map(|(at, tag, word)| Edit::XmlInsert {
            at,
            tag,
            word
        }),
        n.clone().prop_map(|at| Edit::XmlRemove { at }),
        (n.clone(), n.clone(), 0..WORDS.len(), any::<bool>()).prop_map(|(node, at, word, bold)| {
            Edit::XmlTextInsert {
                node,
                at,
                word,
                bold,
            }
        }),
        (n.clone(), n.clone(), 1usize..5).prop_map(|(node, at, len)| Edit::XmlTextDelete {
            node,
            at,
            len
        }),
        (n.clone(), 0usize..6).prop_map(|(node, val)| Edit::XmlAttr { node, val }),
    ]
}

fn format(i: usize) -> Attrs {
    let pair: (&str, Any) = match i {
        0 => ("bold", true.into()),
        1 => ("italic", true.into()),
        2 => ("color", Any::from("red")),
        3 => ("bold", Any::Null),
        _ => ("link", Any::from("https://x.test")),
    };
    Attrs::from([(pair.0.into(), pair.1)])
}

fn value(i: usize) -> Any {
    match i {
        0 => Any::from(1),
        1 => Any::from("two"),
        2 => Any::from(true),
        3 => Any::Null,
        4 => Any::from(vec![Any::from(1.5), Any::from("x")]),
        _ => Any::from(HashMap::from([("n".to_string(), Any::from(7))])),
    }
}

/// A UTF-16 position at a character boundary: the `at`-th boundary, wrapped.
fn boundary(s: &str, at: usize) -> u32 {
    let chars: Vec<char> = s.chars().collect();
    let i = at % (chars.len() + 1);
    chars[..i].iter().map(|c| c.len_utf16() as u32).sum()
}

/// UTF-16 length of up to `len` characters from boundary `at`.
fn span(s: &str, at: usize, len: usize) -> (u32, u32) {
    let chars: Vec<char> = s.chars().collect();
    let i = at % (chars.len() + 1);
    let end = (i + len).min(chars.len());
    let start: u32 = chars[..i].iter().map(|c| c.len_utf16() as u32).sum();
    let l: u32 = chars[i..end].iter().map(|c| c.len_utf16() as u32).sum();
    (start, l)
}

/// The text of a text root or XML text as positions see it: embeds count as one unit, which
/// `get_string` leaves out, so texts with embeds are measured through their delta.
fn text_units<T: Text>(t: &T, txn: &TransactionMut) -> String {
    let mut s = String::new();
    for chunk in t.diff(txn, yrs::types::text::YChange::identity) {
        match chunk.insert {
            Out::Any(Any::String(x)) => s.push_str(&x),
            _ => s.push('\u{FFFC}'),
        }
    }
    s
}

fn run(d: &Doc, edit: &Edit) {
    let mut txn = d.transact_mut();
    let text = txn.get_or_insert_text("text");
    let map = txn.get_or_insert_map("map");
    let arr = txn.get_or_insert_array("array");
    let xml = txn.get_or_insert_xml_fragment("prosemirror");
    match *edit {
        Edit::TextInsert { at, word, fmt } => {
            let pos = boundary(&text_units(&text, &txn), at);
            if fmt == 3 {
                text.insert(&mut txn, pos, WORDS[word]);
            } else {
                text.insert_with_attributes(&mut txn, pos, WORDS[word], format(fmt));
            }
        }
        Edit::TextDelete { at, len } => {
            let (pos, l) = span(&text_units(&text, &txn), at, len);
            if l > 0 {
                text.remove_range(&mut txn, pos, l);
            }
        }
        Edit::TextFormat { at, len, fmt } => {
            let (pos, l) = span(&text_units(&text, &txn), at, len);
            if l > 0 {
                text.format(&mut txn, pos, l, format(fmt));
            }
        }
        Edit::TextEmbed { at } => {
            let pos = boundary(&text_units(&text, &txn), at);
            text.insert_embed(
                &mut txn,
                pos,
                Any::from(HashMap::from([("image".to_string(), Any::from("i.png"))])),
            );
        }
        Edit::MapSet { key, val } => match val {
            4 => {
                let t: TextRef = map.insert(&mut txn, KEYS[key], TextPrelim::new("note"));
                t.format(&mut txn, 0, 2, format(0));
            }
            5 => {
                let m: MapRef = map.insert(&mut txn, KEYS[key], MapPrelim::default());
                m.insert(&mut txn, "inner", value(key));
            }
            v => {
                map.insert(&mut txn, KEYS[key], value(v));
            }
        },
        Edit::MapRemove { key } => {
            map.remove(&mut txn, KEYS[key]);
        }
        Edit::MapNestedText { key, at, word } => {
            if let Some(Out::YText(t)) = map.get(&txn, KEYS[key]) {
                let pos = boundary(&t.get_string(&txn), at);
                t.insert(&mut txn, pos, WORDS[word]);
            }
        }
        Edit::ArrayInsert { at, val } => {
            let pos = (at % (arr.len(&txn) as usize + 1)) as u32;
            match val {
                4 => {
                    let m: MapRef = arr.insert(&mut txn, pos, MapPrelim::default());
                    m.insert(&mut txn, "name", "card");
                }
                5 => {
                    let a: ArrayRef = arr.insert(&mut txn, pos, ArrayPrelim::default());
                    a.push_back(&mut txn, 1);
                }
                v => {
                    arr.insert(&mut txn, pos, value(v));
                }
            }
        }
        Edit::ArrayRemove { at, len } => {
            let n = arr.len(&txn) as usize;
            if n > 0 {
                let pos = at % n;
                let l = len.min(n - pos);
                arr.remove_range(&mut txn, pos as u32, l as u32);
            }
        }
        Edit::ArrayNestedSet { at, key, val } => {
            let n = arr.len(&txn);
            if n > 0
                && let Some(Out::YMap(m)) = arr.get(&txn, (at as u32) % n)
            {
                m.insert(&mut txn, KEYS[key], value(val));
            }
        }
        Edit::XmlInsert { at, tag, word } => {
            let pos = (at % (xml.len(&txn) as usize + 1)) as u32;
            let el = xml.insert(&mut txn, pos, XmlElementPrelim::empty(TAGS[tag]));
            if tag == 1 {
                el.insert_attribute(&mut txn, "level", Any::from(1));
            }
            el.push_back(&mut txn, XmlTextPrelim::new(WORDS[word]));
        }
        Edit::XmlRemove { at } => {
            let n = xml.len(&txn);
            if n > 0 {
                xml.remove_range(&mut txn, (at as u32) % n, 1);
            }
        }
        Edit::XmlTextInsert {
            node,
            at,
            word,
            bold,
        } => {
            if let Some(t) = xml_text(&xml, &txn, node) {
                let pos = boundary(&text_units(&t, &txn), at);
                let attrs = if bold { format(0) } else { Attrs::new() };
                t.insert_with_attributes(&mut txn, pos, WORDS[word], attrs);
            }
        }
        Edit::XmlTextDelete { node, at, len } => {
            if let Some(t) = xml_text(&xml, &txn, node) {
                let (pos, l) = span(&text_units(&t, &txn), at, len);
                if l > 0 {
                    t.remove_range(&mut txn, pos, l);
                }
            }
        }
        Edit::XmlAttr { node, val } => {
            let n = xml.len(&txn);
            if n > 0
                && let Some(el) = xml
                    .get(&txn, (node as u32) % n)
                    .and_then(|x| x.into_xml_element())
            {
                if val == 3 {
                    el.remove_attribute(&mut txn, &"level");
                } else {
                    el.insert_attribute(&mut txn, "level", value(val));
                }
            }
        }
    }
}

fn xml_text(xml: &yrs::XmlFragmentRef, txn: &TransactionMut, node: usize) -> Option<XmlTextRef> {
    let n = xml.len(txn);
    if n == 0 {
        return None;
    }
    let el = xml.get(txn, (node as u32) % n)?.into_xml_element()?;
    el.get(txn, 0)?.into_xml_text()
}

/// Applies `edits` in order.
pub fn build(edits: &[Edit], d: &Doc) {
    for e in edits {
        run(d, e);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn restore_gives_back_the_version(
        before in proptest::collection::vec(edit(), 0..40),
        after in proptest::collection::vec(edit(), 0..40),
    ) {
        let d = doc(1);
        build(&before, &d);
        let version = state(&d);
        build(&after, &d);
        let current = state(&d);
        assert_restores(&current, &version);
        // And the other way: from the version forward to the current content.
        assert_restores(&version, &current);
    }

    #[test]
    fn a_concurrent_replica_converges_with_the_restore(
        before in proptest::collection::vec(edit(), 0..30),
        after in proptest::collection::vec(edit(), 0..30),
        meanwhile in proptest::collection::vec(edit(), 0..15),
    ) {
        let a = doc(1);
        build(&before, &a);
        let version = state(&a);
        build(&after, &a);
        let current = state(&a);
        let b = load(2, &current);
        build(&meanwhile, &b);
        let update = restore_update(&current, &version, RESTORE_ID).expect("restore");
        apply(&a, &update);
        prop_assert_eq!(content(&state(&a)), content(&version));
        let (sa, sb) = (state(&a), state(&b));
        apply(&a, &sb);
        apply(&b, &sa);
        prop_assert_eq!(content(&state(&a)), content(&state(&b)));
    }
}

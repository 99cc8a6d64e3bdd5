//! Hand-written restores, one per kind of shared type, plus roots that appear or vanish and a
//! replica that edits while the restore is computed.

use std::collections::HashMap;

use chorus_history::restore_update;
use serde_json::json;
use yrs::types::Attrs;
use yrs::{
    Any, Array, ArrayPrelim, GetString, Map, MapPrelim, MapRef, ReadTxn, Text, TextPrelim,
    Transact, WriteTxn, Xml, XmlElementPrelim, XmlFragment, XmlTextPrelim,
};

use crate::helpers::{RESTORE_ID, apply, assert_restores, content, doc, load, state};

fn attrs(pairs: &[(&str, Any)]) -> Attrs {
    pairs
        .iter()
        .map(|(k, v)| ((*k).into(), v.clone()))
        .collect()
}

#[test]
fn plain_text_with_deletions() {
    let d = doc(1);
    let text = d.get_or_insert_text("content");
    text.insert(
        &mut d.transact_mut(),
        0,
        "The quick brown fox jumps over the lazy dog",
    );
    let version = state(&d);
    {
        let mut txn = d.transact_mut();
        text.remove_range(&mut txn, 4, 6); // "quick "
        text.insert(&mut txn, 0, "Yesterday, ");
        let len = text.len(&txn);
        text.remove_range(&mut txn, len - 3, 3);
        text.push(&mut txn, "cat 😀 and é");
    }
    let current = state(&d);
    assert_ne!(content(&current), content(&version));
    let restored = assert_restores(&current, &version);
    let r = load(5, &restored);
    assert_eq!(
        r.get_or_insert_text("content").get_string(&r.transact()),
        "The quick brown fox jumps over the lazy dog"
    );
}

#[test]
fn text_formatting_and_embeds() {
    let d = doc(1);
    let text = d.get_or_insert_text("rich");
    {
        let mut txn = d.transact_mut();
        text.insert(&mut txn, 0, "Hello world, this is rich text");
        text.format(&mut txn, 0, 5, attrs(&[("italic", true.into())]));
        text.format(&mut txn, 6, 5, attrs(&[("bold", true.into())]));
        text.format(
            &mut txn,
            13,
            4,
            attrs(&[("link", Any::from("https://x.test"))]),
        );
        text.insert_embed(
            &mut txn,
            11,
            Any::from(HashMap::from([("image".to_string(), Any::from("a.png"))])),
        );
    }
    let version = state(&d);
    {
        let mut txn = d.transact_mut();
        text.format(&mut txn, 6, 5, attrs(&[("bold", Any::Null)]));
        text.format(
            &mut txn,
            0,
            3,
            attrs(&[("underline", true.into()), ("italic", Any::Null)]),
        );
        text.remove_range(&mut txn, 11, 1); // the embed
        text.insert_with_attributes(&mut txn, 8, "XYZ", attrs(&[("color", Any::from("red"))]));
        text.format(
            &mut txn,
            14,
            6,
            attrs(&[("link", Any::from("https://y.test"))]),
        );
        text.insert_embed(
            &mut txn,
            0,
            Any::from(HashMap::from([("formula".to_string(), Any::from("e=mc2"))])),
        );
    }
    let current = state(&d);
    assert_ne!(content(&current), content(&version));
    assert_restores(&current, &version);
}

#[test]
fn nested_maps_texts_and_a_kind_change() {
    let d = doc(1);
    let map = d.get_or_insert_map("meta");
    {
        let mut txn = d.transact_mut();
        map.insert(&mut txn, "title", "Plan");
        map.insert(&mut txn, "count", 1);
        let nested: MapRef = map.insert(&mut txn, "nested", MapPrelim::default());
        nested.insert(&mut txn, "a", 1);
        let t = nested.insert(&mut txn, "note", TextPrelim::new("hi there"));
        t.format(&mut txn, 0, 2, attrs(&[("bold", true.into())]));
        let list = map.insert(&mut txn, "list", ArrayPrelim::default());
        list.push_back(&mut txn, 1);
        list.push_back(&mut txn, "two");
    }
    let version = state(&d);
    {
        let mut txn = d.transact_mut();
        map.insert(&mut txn, "title", "Plan B");
        map.remove(&mut txn, "count");
        let nested = map
            .get(&txn, "nested")
            .and_then(|o| o.cast::<MapRef>().ok())
            .expect("nested");
        nested.insert(&mut txn, "a", 2);
        let t = nested
            .get(&txn, "note")
            .and_then(|o| o.cast::<yrs::TextRef>().ok())
            .expect("note");
        t.remove_range(&mut txn, 0, 3);
        t.push(&mut txn, " and more");
        map.insert(&mut txn, "extra", Any::from(vec![Any::from(1), Any::Null]));
        // "list" becomes a map: the version's array has to be rebuilt.
        let m: MapRef = map.insert(&mut txn, "list", MapPrelim::default());
        m.insert(&mut txn, "x", true);
    }
    let current = state(&d);
    assert_restores(&current, &version);
}

#[test]
fn arrays_of_values_and_shared_types() {
    let d = doc(1);
    let arr = d.get_or_insert_array("items");
    {
        let mut txn = d.transact_mut();
        arr.push_back(&mut txn, 1);
        arr.push_back(&mut txn, "two");
        arr.push_back(
            &mut txn,
            Any::from(HashMap::from([("k".to_string(), Any::from(3))])),
        );
        let m: MapRef = arr.push_back(&mut txn, MapPrelim::default());
        m.insert(&mut txn, "name", "card");
        let inner = arr.push_back(&mut txn, ArrayPrelim::default());
        inner.push_back(&mut txn, true);
        arr.push_back(&mut txn, Any::Buffer(vec![1u8, 2, 3].into()));
    }
    let version = state(&d);
    {
        let mut txn = d.transact_mut();
        arr.remove_range(&mut txn, 0, 2);
        arr.insert(&mut txn, 1, "new");
        let m = arr
            .get(&txn, 2)
            .and_then(|o| o.cast::<MapRef>().ok())
            .expect("map");
        m.insert(&mut txn, "name", "renamed");
        m.insert(&mut txn, "done", true);
        arr.push_back(&mut txn, 42);
    }
    let current = state(&d);
    assert_restores(&current, &version);
}

/// A Tiptap/ProseMirror document: a `prosemirror` XmlFragment of headings, paragraphs and lists,
/// with marks as XmlText formatting and node attributes as XML attributes.
pub fn prosemirror_version(d: &yrs::Doc) {
    let frag = d.get_or_insert_xml_fragment("prosemirror");
    let mut txn = d.transact_mut();
    let h = frag.push_back(&mut txn, XmlElementPrelim::empty("heading"));
    h.insert_attribute(&mut txn, "level", Any::from(1));
    h.push_back(&mut txn, XmlTextPrelim::new("Title"));
    let p = frag.push_back(&mut txn, XmlElementPrelim::empty("paragraph"));
    let t = p.push_back(&mut txn, XmlTextPrelim::new("Hello world, again"));
    t.format(
        &mut txn,
        6,
        5,
        attrs(&[("bold", Any::from(HashMap::<String, Any>::new()))]),
    );
    let list = frag.push_back(&mut txn, XmlElementPrelim::empty("bulletList"));
    for item in ["one", "two", "three"] {
        let li = list.push_back(&mut txn, XmlElementPrelim::empty("listItem"));
        let lp = li.push_back(&mut txn, XmlElementPrelim::empty("paragraph"));
        lp.push_back(&mut txn, XmlTextPrelim::new(item));
    }
    let p2 = frag.push_back(&mut txn, XmlElementPrelim::empty("paragraph"));
    p2.push_back(&mut txn, XmlTextPrelim::new("The end."));
}

/// Edits a [`prosemirror_version`] document the way an editor would.
pub fn prosemirror_edits(d: &yrs::Doc) {
    let frag = d.get_or_insert_xml_fragment("prosemirror");
    let mut txn = d.transact_mut();
    let h = frag
        .get(&txn, 0)
        .and_then(|n| n.into_xml_element())
        .expect("heading");
    h.insert_attribute(&mut txn, "level", Any::from(2));
    let ht = h
        .get(&txn, 0)
        .and_then(|n| n.into_xml_text())
        .expect("heading text");
    ht.insert(&mut txn, 5, " (draft)");
    let p = frag
        .get(&txn, 1)
        .and_then(|n| n.into_xml_element())
        .expect("paragraph");
    let t = p
        .get(&txn, 0)
        .and_then(|n| n.into_xml_text())
        .expect("text");
    t.format(&mut txn, 6, 5, attrs(&[("bold", Any::Null)]));
    t.format(
        &mut txn,
        0,
        5,
        attrs(&[("italic", Any::from(HashMap::<String, Any>::new()))]),
    );
    t.remove_range(&mut txn, 11, 7);
    let list = frag
        .get(&txn, 2)
        .and_then(|n| n.into_xml_element())
        .expect("list");
    list.remove_range(&mut txn, 1, 1); // "two", collected with gc on
    let li = list
        .get(&txn, 0)
        .and_then(|n| n.into_xml_element())
        .expect("item");
    let lp = li
        .get(&txn, 0)
        .and_then(|n| n.into_xml_element())
        .expect("item paragraph");
    let lt = lp
        .get(&txn, 0)
        .and_then(|n| n.into_xml_text())
        .expect("item text");
    lt.push(&mut txn, " (first)");
    frag.remove_range(&mut txn, 3, 1); // the last paragraph
    let q = frag.insert(&mut txn, 1, XmlElementPrelim::empty("blockquote"));
    let qp = q.push_back(&mut txn, XmlElementPrelim::empty("paragraph"));
    qp.push_back(&mut txn, XmlTextPrelim::new("quoted"));
}

#[test]
fn prosemirror_content_json() {
    let d = doc(1);
    prosemirror_version(&d);
    let c = content(&state(&d));
    let root = &c["roots"]["prosemirror"];
    assert_eq!(root["kind"], "xml_fragment");
    assert_eq!(
        root["children"][0],
        json!({"kind": "xml_element", "tag": "heading",
               "attributes": {"level": {"kind": "value", "value": 1}},
               "children": [{"kind": "xml_text", "attributes": {},
                             "delta": [{"insert": "Title"}]}]})
    );
    assert_eq!(
        root["children"][1]["children"][0]["delta"],
        json!([{"insert": "Hello "}, {"insert": "world", "attributes": {"bold": {}}},
               {"insert": ", again"}])
    );
}

#[test]
fn prosemirror_xml_tree() {
    let d = doc(1);
    prosemirror_version(&d);
    let version = state(&d);
    prosemirror_edits(&d);
    let current = state(&d);
    assert_ne!(content(&current), content(&version));
    let restored = assert_restores(&current, &version);
    let r = load(5, &restored);
    let frag = r.get_or_insert_xml_fragment("prosemirror");
    assert_eq!(
        frag.get_string(&r.transact()),
        "<heading level=\"1\">Title</heading><paragraph>Hello <bold>world</bold>, again</paragraph>\
         <bulletList><listItem><paragraph>one</paragraph></listItem><listItem><paragraph>two</paragraph>\
         </listItem><listItem><paragraph>three</paragraph></listItem></bulletList><paragraph>The end.</paragraph>"
    );
}

#[test]
fn roots_absent_from_the_version_become_empty_and_emptied_roots_come_back() {
    let d = doc(1);
    let notes = d.get_or_insert_text("notes");
    notes.insert(&mut d.transact_mut(), 0, "kept in the version");
    let version = state(&d);
    {
        let mut txn = d.transact_mut();
        let len = notes.len(&txn);
        notes.remove_range(&mut txn, 0, len); // emptied: absent from the current content
        let later = txn.get_or_insert_map("later");
        later.insert(&mut txn, "k", "v");
        let arr = txn.get_or_insert_array("queue");
        arr.push_back(&mut txn, 1);
    }
    let current = state(&d);
    assert_eq!(
        content(&current)["roots"].as_object().map(|o| o.len()),
        Some(2),
        "notes is empty, later and queue have content"
    );
    let restored = assert_restores(&current, &version);
    assert_eq!(
        content(&restored),
        json!({"roots": {"notes": {"kind": "text", "delta": [{"insert": "kept in the version"}]}}})
    );
}

#[test]
fn restoring_the_same_content_changes_nothing() {
    let d = doc(1);
    prosemirror_version(&d);
    let s = state(&d);
    let update = restore_update(&s, &s, RESTORE_ID).expect("restore");
    let live = load(2, &s);
    let sv = live.transact().state_vector();
    apply(&live, &update);
    assert_eq!(live.transact().state_vector(), sv);
    assert_eq!(state(&live), s);
}

#[test]
fn a_replica_editing_meanwhile_converges_with_the_restored_document() {
    let a = doc(1);
    prosemirror_version(&a);
    a.get_or_insert_text("content")
        .insert(&mut a.transact_mut(), 0, "shared text here");
    let version = state(&a);
    prosemirror_edits(&a);
    {
        let t = a.get_or_insert_text("content");
        let mut txn = a.transact_mut();
        t.remove_range(&mut txn, 0, 7);
        t.push(&mut txn, " plus more");
    }
    let current = state(&a);
    // B holds the same current state and edits while the restore is computed and applied on A.
    let b = load(2, &current);
    {
        let frag = b.get_or_insert_xml_fragment("prosemirror");
        let mut txn = b.transact_mut();
        let p = frag.insert(&mut txn, 0, XmlElementPrelim::empty("paragraph"));
        p.push_back(&mut txn, XmlTextPrelim::new("MARKER-B"));
        let t = txn.get_or_insert_text("content");
        t.insert(&mut txn, 0, "B>");
        let h = frag
            .get(&txn, 1)
            .and_then(|n| n.into_xml_element())
            .expect("heading");
        h.insert_attribute(&mut txn, "level", Any::from(3));
    }
    let update = restore_update(&current, &version, RESTORE_ID).expect("restore");
    apply(&a, &update);
    assert_eq!(content(&state(&a)), content(&version));
    // Exchange both ways, as the server and its clients would.
    let a_state = state(&a);
    let b_state = state(&b);
    apply(&a, &b_state);
    apply(&b, &a_state);
    let (ca, cb) = (content(&state(&a)), content(&state(&b)));
    assert_eq!(ca, cb, "replicas diverge");
    assert_eq!(a.transact().state_vector(), b.transact().state_vector());
    let rendered = ca.to_string();
    assert!(
        rendered.contains("MARKER-B"),
        "B's paragraph was lost: {rendered}"
    );
    let text = a.get_or_insert_text("content").get_string(&a.transact());
    // B's insertion and the restore's both went to position 0: their order is the CRDT's.
    assert!(
        text == "B>shared text here" || text == "shared B>text here",
        "{text:?}"
    );
    // The version's heading level came back on A while B set another one concurrently: one
    // value wins, the same on both.
    let frag = a.get_or_insert_xml_fragment("prosemirror");
    let txn = a.transact();
    let heading = frag
        .get(&txn, 1)
        .and_then(|n| n.into_xml_element())
        .expect("heading");
    let level = heading.get_attribute(&txn, "level");
    assert!(
        matches!(level, Some(yrs::Out::Any(Any::Number(_)))),
        "{level:?}"
    );
}

#[test]
fn shared_types_embedded_in_text_and_sub_documents() {
    let d = doc(1);
    let text = d.get_or_insert_text("t");
    let arr = d.get_or_insert_array("docs");
    {
        let mut txn = d.transact_mut();
        text.insert(&mut txn, 0, "before after");
        let m: MapRef = text.insert_embed(&mut txn, 7, MapPrelim::default());
        m.insert(&mut txn, "kind", "mention");
        let sub = yrs::Doc::with_options(yrs::Options {
            guid: "sub-doc-guid".into(),
            ..yrs::Options::default()
        });
        arr.push_back(&mut txn, sub);
        arr.push_back(&mut txn, "after the sub-document");
    }
    let version = state(&d);
    {
        let mut txn = d.transact_mut();
        text.remove_range(&mut txn, 5, 4); // the embed and the letters around it
        arr.remove_range(&mut txn, 0, 1);
    }
    let current = state(&d);
    assert_ne!(content(&current), content(&version));
    let restored = assert_restores(&current, &version);
    let c = content(&restored);
    assert_eq!(
        c["roots"]["docs"]["items"][0],
        json!({"kind": "doc", "guid": "sub-doc-guid"})
    );
    assert_eq!(
        c["roots"]["t"]["delta"][1]["insert"]["embed"],
        json!({"kind": "map", "entries": {"kind": {"kind": "value", "value": "mention"}}})
    );
}

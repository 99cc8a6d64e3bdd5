//! The diff of two versions: its JSON shape, positions in UTF-16 units, and a serde round trip.

use chorus_history::{DocDiff, diff};
use serde_json::{Value, json};
use yrs::types::Attrs;
use yrs::{Any, Array, Map, MapPrelim, MapRef, Text, Transact, WriteTxn};

use crate::helpers::{doc, state};
use crate::restore::{prosemirror_edits, prosemirror_version};

fn diff_json(a: &[u8], b: &[u8]) -> Value {
    let d = diff(a, b).expect("diff");
    // Every diff survives a JSON round trip unchanged.
    let text = serde_json::to_string(&d).expect("serialize");
    let back: DocDiff = serde_json::from_str(&text).expect("deserialize");
    assert_eq!(back, d);
    serde_json::to_value(&d).expect("to_value")
}

#[test]
fn text_insertions_deletions_and_formatting() {
    let d = doc(1);
    let t = d.get_or_insert_text("t");
    t.insert(&mut d.transact_mut(), 0, "hello old world");
    let a = state(&d);
    {
        let mut txn = d.transact_mut();
        t.remove_range(&mut txn, 6, 4); // "old "
        t.insert(&mut txn, 6, "brave ");
        t.format(
            &mut txn,
            12,
            5,
            Attrs::from([("bold".into(), Any::from(true))]),
        );
    }
    let b = state(&d);
    assert_eq!(
        diff_json(&a, &b),
        json!({"roots": {"t": {"change": "edited", "kind": "text", "text": [
            // Minimal: the space after "old" is kept as the space after "brave".
            {"op": "delete", "pos_a": 6, "pos_b": 6, "text": "old", "len": 3},
            {"op": "insert", "pos_a": 9, "pos_b": 6, "text": "brave", "len": 5},
            {"op": "format", "pos_a": 10, "pos_b": 12, "len": 5, "attributes": {"bold": true}},
        ]}}})
    );
}

#[test]
fn positions_count_utf16_code_units() {
    let d = doc(1);
    let t = d.get_or_insert_text("t");
    t.insert(&mut d.transact_mut(), 0, "😀a");
    let a = state(&d);
    t.insert(&mut d.transact_mut(), 2, "é");
    let b = state(&d);
    assert_eq!(
        diff_json(&a, &b)["roots"]["t"]["text"],
        json!([{"op": "insert", "pos_a": 2, "pos_b": 2, "text": "é", "len": 1}])
    );
}

#[test]
fn map_keys_added_removed_replaced_and_edited() {
    let d = doc(1);
    let m = d.get_or_insert_map("m");
    {
        let mut txn = d.transact_mut();
        m.insert(&mut txn, "gone", 1);
        m.insert(&mut txn, "same", "x");
        m.insert(&mut txn, "value", 1);
        let inner: MapRef = m.insert(&mut txn, "inner", MapPrelim::default());
        inner.insert(&mut txn, "n", 1);
    }
    let a = state(&d);
    {
        let mut txn = d.transact_mut();
        m.remove(&mut txn, "gone");
        m.insert(&mut txn, "new", true);
        m.insert(&mut txn, "value", "one");
        let inner = m
            .get(&txn, "inner")
            .and_then(|o| o.cast::<MapRef>().ok())
            .expect("inner");
        inner.insert(&mut txn, "n", 2);
    }
    let b = state(&d);
    assert_eq!(
        diff_json(&a, &b),
        json!({"roots": {"m": {"change": "edited", "kind": "map", "keys": [
            {"key": "gone", "change": {"change": "removed", "value": {"kind": "value", "value": 1}}},
            {"key": "inner", "change": {"change": "edited", "kind": "map", "keys": [
                {"key": "n", "change": {"change": "replaced",
                    "before": {"kind": "value", "value": 1}, "after": {"kind": "value", "value": 2}}}
            ]}},
            {"key": "new", "change": {"change": "added", "value": {"kind": "value", "value": true}}},
            {"key": "value", "change": {"change": "replaced",
                "before": {"kind": "value", "value": 1}, "after": {"kind": "value", "value": "one"}}},
        ]}}})
    );
}

#[test]
fn array_elements_added_and_removed() {
    let d = doc(1);
    let arr = d.get_or_insert_array("a");
    {
        let mut txn = d.transact_mut();
        arr.insert_range(&mut txn, 0, [1, 2, 3, 4]);
    }
    let a = state(&d);
    {
        let mut txn = d.transact_mut();
        arr.remove_range(&mut txn, 1, 2);
        arr.insert(&mut txn, 2, 5);
    }
    let b = state(&d);
    assert_eq!(
        diff_json(&a, &b),
        json!({"roots": {"a": {"change": "edited", "kind": "array", "elements": [
            {"op": "delete", "index_a": 1, "index_b": 1,
             "values": [{"kind": "value", "value": 2}, {"kind": "value", "value": 3}]},
            {"op": "insert", "index_a": 4, "index_b": 2, "values": [{"kind": "value", "value": 5}]},
        ]}}})
    );
}

#[test]
fn xml_tree_edits_in_place_and_roots_added_or_removed() {
    let d = doc(1);
    prosemirror_version(&d);
    d.get_or_insert_map("old")
        .insert(&mut d.transact_mut(), "k", 1);
    let a = state(&d);
    prosemirror_edits(&d);
    {
        let mut txn = d.transact_mut();
        txn.get_or_insert_map("old").remove(&mut txn, "k");
        txn.get_or_insert_text("fresh")
            .insert(&mut txn, 0, "new root");
    }
    let b = state(&d);
    let v = diff_json(&a, &b);
    assert_eq!(v["roots"]["old"]["change"], "removed");
    assert_eq!(
        v["roots"]["fresh"],
        json!({"change": "added", "value": {"kind": "text", "delta": [{"insert": "new root"}]}})
    );
    let pm = &v["roots"]["prosemirror"];
    assert_eq!(pm["change"], "edited");
    assert_eq!(pm["kind"], "xml_fragment");
    let elements = pm["elements"].as_array().expect("elements");
    // The heading is edited in place: its level attribute and its text.
    assert_eq!(
        elements[0],
        json!({"op": "edit", "index_a": 0, "index_b": 0, "edits": {
            "kind": "xml_element", "tag": "heading",
            "elements": [{"op": "edit", "index_a": 0, "index_b": 0, "edits": {
                "kind": "xml_text",
                "text": [{"op": "insert", "pos_a": 5, "pos_b": 5, "text": " (draft)", "len": 8}]}}],
            "keys": [{"key": "level", "change": {"change": "replaced",
                "before": {"kind": "value", "value": 1}, "after": {"kind": "value", "value": 2}}}]}})
    );
    // The blockquote is new, the last paragraph gone.
    assert_eq!(elements[1]["op"], "insert");
    assert_eq!(elements[1]["values"][0]["tag"], "blockquote");
    assert_eq!(
        elements.last().map(|e| e["op"].clone()),
        Some(json!("delete"))
    );
    // The paragraph: italic added, the bold mark removed from "world", ", again" deleted.
    assert_eq!(
        elements[2],
        json!({"op": "edit", "index_a": 1, "index_b": 2, "edits": {
            "kind": "xml_element", "tag": "paragraph",
            "elements": [{"op": "edit", "index_a": 0, "index_b": 0, "edits": {
                "kind": "xml_text", "text": [
                    {"op": "format", "pos_a": 0, "pos_b": 0, "len": 5, "attributes": {"italic": {}}},
                    {"op": "format", "pos_a": 6, "pos_b": 6, "len": 5, "attributes": {"bold": null}},
                    {"op": "delete", "pos_a": 11, "pos_b": 11, "text": ", again", "len": 7}]}}]}})
    );
}

#[test]
fn equal_states_have_an_empty_diff() {
    let d = doc(1);
    prosemirror_version(&d);
    let a = state(&d);
    assert_eq!(diff_json(&a, &a), json!({"roots": {}}));
    // Same content written by other clients: still no difference.
    let e = doc(2);
    prosemirror_version(&e);
    assert_eq!(diff(&a, &state(&e)).expect("diff"), DocDiff::default());
}

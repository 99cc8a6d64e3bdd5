//! Chorus patch (see `CHORUS-PATCHES.md`): `TypeRef::XmlHook` carries the hook name that Yjs
//! writes after type ref 5 (`YXmlHook._write`: `writeTypeRef(5)`, `writeKey(hookName)`), so that
//! a Yjs update holding a `Y.XmlHook` is decoded, kept and encoded back byte for byte.
//!
//! `chorus-repro/xml-hook.mjs record` builds the updates with the real `yjs` npm package and
//! prints them with the state Yjs encodes from them and what Yjs reads
//! (`chorus-repro/xml-hook.yjs.json`). These tests apply them to yrs, compare what yrs reads and
//! encodes, and check what Yjs reads from yrs' encoding: that is
//! `chorus-repro/xml-hook.yrs-in-yjs.json`, the output of `xml-hook.mjs read` on
//! `chorus-repro/xml-hook.yrs.json`, yrs' encoded state, which the tests check is still exactly
//! what yrs encodes. To re-create them (after changing the scenario):
//! `node chorus-repro/xml-hook.mjs record > chorus-repro/xml-hook.yjs.json`,
//! `CHORUS_REPRO_WRITE=1 cargo test --lib chorus_xml_hook`, then
//! `node chorus-repro/xml-hook.mjs read chorus-repro/xml-hook.yrs.json > chorus-repro/xml-hook.yrs-in-yjs.json`.

use crate::branch::BranchPtr;
use crate::types::xml::XmlHookRef;
use crate::types::{ToJson, TypeRef};
use crate::updates::decoder::Decode;
use crate::updates::encoder::Encode;
use crate::{
    Any, Array, ArrayRef, Doc, GetString, Map, MapRef, Out, ReadTxn, StateVector, Transact, Update,
};
use serde_json::{json, Value};
use std::path::PathBuf;

fn repro_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("chorus-repro")
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn read_json(name: &str) -> Value {
    let path = repro_dir().join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{:?}: {}", path, e));
    serde_json::from_str(&text).unwrap()
}

fn hexes(value: &Value) -> Vec<Vec<u8>> {
    value
        .as_array()
        .unwrap()
        .iter()
        .map(|h| unhex(h.as_str().unwrap()))
        .collect()
}

/// JSON numbers as f64, so that yrs' `Any::Number` and Node's integers compare.
fn norm(value: Value) -> Value {
    match value {
        Value::Number(n) => json!(n.as_f64().unwrap()),
        Value::Array(a) => Value::Array(a.into_iter().map(norm).collect()),
        Value::Object(o) => Value::Object(o.into_iter().map(|(k, v)| (k, norm(v))).collect()),
        other => other,
    }
}

/// A hook as `xml-hook.mjs` prints it: its name and its map, read through yrs' public API (the
/// hook comes out of its parent as an `Out::YMap`; its name is its branch's type ref).
fn hook_data<T: ReadTxn>(txn: &T, map: &MapRef) -> Value {
    let name = match map.as_ref().type_ref() {
        TypeRef::XmlHook(name) => name.to_string(),
        other => panic!("not a hook: {}", other),
    };
    let hook = XmlHookRef::from(BranchPtr::from(map.as_ref()));
    let mut entries = serde_json::Map::new();
    for (key, value) in hook.iter(txn) {
        let value = match value {
            Out::YMap(inner) => hook_data(txn, &inner),
            Out::Any(any) => serde_json::to_value(&any).unwrap(),
            other => panic!("unexpected hook value {}", other),
        };
        entries.insert(key.to_owned(), value);
    }
    json!({ "hook": name, "entries": entries })
}

/// What `xml-hook.mjs` prints for a document: the children of the root XmlFragment "xml".
fn describe(doc: &Doc) -> Value {
    let frag = doc.get_or_insert_xml_fragment("xml");
    let txn = doc.transact();
    let list: &ArrayRef = frag.as_ref();
    let children: Vec<Value> = list
        .iter(&txn)
        .map(|child| match child {
            Out::YMap(map) => hook_data(&txn, &map),
            Out::YXmlElement(e) => json!({ "xml": e.get_string(&txn) }),
            other => panic!("unexpected child {}", other),
        })
        .collect();
    norm(json!({ "children": children }))
}

fn apply_v1(doc: &Doc, update: &[u8]) {
    let update = Update::decode_v1(update).expect("the v1 update decodes");
    doc.transact_mut()
        .apply_update(update)
        .expect("the update applies");
}

fn apply_v2(doc: &Doc, update: &[u8]) {
    let update = Update::decode_v2(update).expect("the v2 update decodes");
    doc.transact_mut()
        .apply_update(update)
        .expect("the update applies");
}

fn state_v1(doc: &Doc) -> Vec<u8> {
    doc.transact()
        .encode_state_as_update_v1(&StateVector::default())
}

fn state_v2(doc: &Doc) -> Vec<u8> {
    doc.transact()
        .encode_state_as_update_v2(&StateVector::default())
}

/// The type ref alone: 5, then the hook name as a lib0 var-string (`writeKey` in v1), as
/// `YXmlHook._write`; read back with the name, in both encodings. yrs 0.28.1 wrote `05` alone
/// and read `05 07 6d 79 ...` as `XmlHook` followed by the bytes of the name.
#[test]
fn chorus_xml_hook_type_ref_encoding() {
    let hook = TypeRef::XmlHook("my-hook".into());
    assert_eq!(hex(&hook.encode_v1()), "05076d792d686f6f6b");
    assert_eq!(TypeRef::decode_v1(&hook.encode_v1()).unwrap(), hook);
    assert_eq!(TypeRef::decode_v2(&hook.encode_v2()).unwrap(), hook);
    assert!(
        TypeRef::decode_v1(&[5]).is_err(),
        "the name is not optional"
    );
    assert_eq!(hook.kind(), crate::types::TYPE_REFS_XML_HOOK);
    assert_eq!(hook.to_string(), "XmlHook(my-hook)");
}

/// The updates Yjs writes, applied one by one, v1 and v2: yrs reads the same children as Yjs
/// (the hook with its name and map, nested hook included, then `<p>after</p>`), and encodes
/// exactly the state Yjs encodes. yrs 0.28.1: update 1 and 3 do not decode in v1
/// (`UnexpectedValue`, `EndOfBuffer(1)`), and decode to the wrong content in v2 (every key after
/// the hook name is shifted: `<p>` becomes `<my-hook>`, ...).
#[test]
fn chorus_xml_hook_yjs_updates() {
    let yjs = read_json("xml-hook.yjs.json");
    let expected = norm(yjs["yjs"].clone());

    let d1 = Doc::new();
    for update in hexes(&yjs["updates_v1"]) {
        apply_v1(&d1, &update);
    }
    let d2 = Doc::new();
    for update in hexes(&yjs["updates_v2"]) {
        apply_v2(&d2, &update);
    }
    for (encoding, d) in [("v1", &d1), ("v2", &d2)] {
        assert!(
            d.transact().store().pending_update().is_none(),
            "{encoding}: nothing pending"
        );
        assert_eq!(describe(d), expected, "{encoding}: yrs vs Yjs");
        assert_eq!(
            hex(&state_v1(d)),
            yjs["state_v1"].as_str().unwrap(),
            "{encoding}: yrs' v1 state vs Yjs'"
        );
        assert_eq!(
            hex(&state_v2(d)),
            yjs["state_v2"].as_str().unwrap(),
            "{encoding}: yrs' v2 state vs Yjs'"
        );
    }

    // The whole state at once, and a yrs replica of yrs' own encoding.
    for (encoding, d) in [
        ("state v1", {
            let d = Doc::new();
            apply_v1(&d, &unhex(yjs["state_v1"].as_str().unwrap()));
            d
        }),
        ("state v2", {
            let d = Doc::new();
            apply_v2(&d, &unhex(yjs["state_v2"].as_str().unwrap()));
            d
        }),
        ("replica", {
            let d = Doc::new();
            apply_v1(&d, &state_v1(&d1));
            d
        }),
    ] {
        assert_eq!(describe(&d), expected, "{encoding}: yrs vs Yjs");
        assert_eq!(
            hex(&state_v1(&d)),
            yjs["state_v1"].as_str().unwrap(),
            "{encoding}: yrs' v1 state vs Yjs'"
        );
    }
}

/// The hook behaves as the map it is in Yjs (`YXmlHook extends YMap`): its keys read through
/// `Map`, `to_json` gives its entries (nested hook included, as Yjs' `toJSON`), and displaying
/// the fragment, the store and the blocks does not panic.
#[test]
fn chorus_xml_hook_reads_as_map() {
    let yjs = read_json("xml-hook.yjs.json");
    let d = Doc::new();
    apply_v1(&d, &unhex(yjs["state_v1"].as_str().unwrap()));
    let frag = d.get_or_insert_xml_fragment("xml");
    let txn = d.transact();
    let list: &ArrayRef = frag.as_ref();
    let hook = match list.get(&txn, 0) {
        Some(Out::YMap(map)) => map,
        other => panic!("expected the hook, got {:?}", other),
    };
    assert_eq!(
        hook.as_ref().type_ref(),
        &TypeRef::XmlHook("my-hook".into())
    );
    assert_eq!(hook.len(&txn), 3);
    assert_eq!(
        hook.get(&txn, "title"),
        Some(Out::Any(Any::String("Bonjour".into())))
    );
    let as_hook = XmlHookRef::from(BranchPtr::from(hook.as_ref()));
    assert_eq!(as_hook.get(&txn, "count"), Some(Out::Any(Any::from(42))));
    assert_eq!(
        norm(serde_json::to_value(hook.to_json(&txn)).unwrap()),
        norm(json!({ "count": 42, "inner": { "k": "v" }, "title": "Bonjour" }))
    );
    assert_eq!(
        norm(serde_json::to_value(as_hook.to_json(&txn)).unwrap()),
        norm(serde_json::to_value(hook.to_json(&txn)).unwrap())
    );
    // Yjs' `toString` of a hook is "[object Object]"; yrs' is its JSON. Neither panics.
    let s = frag.get_string(&txn);
    assert!(s.ends_with("<p>after</p>"), "{}", s);
    let _ = format!("{}", hook.as_ref());
    let _ = format!("{:?} {}", txn.store(), txn.store());
}

/// What real Yjs reads from yrs' encoding (`xml-hook.yrs-in-yjs.json`, recorded with
/// `xml-hook.mjs read` from `xml-hook.yrs.json`): the same children, hook name and map, and
/// Yjs encodes the state back to the same bytes, in v1 and v2.
#[test]
fn chorus_xml_hook_yjs_reads_yrs_encoding() {
    let yjs = read_json("xml-hook.yjs.json");
    let d = Doc::new();
    for update in hexes(&yjs["updates_v1"]) {
        apply_v1(&d, &update);
    }
    let yrs = json!({ "state_v1": hex(&state_v1(&d)), "state_v2": hex(&state_v2(&d)) });
    let path = repro_dir().join("xml-hook.yrs.json");
    if std::env::var_os("CHORUS_REPRO_WRITE").is_some() {
        std::fs::write(&path, serde_json::to_string_pretty(&yrs).unwrap() + "\n").unwrap();
    }
    assert_eq!(
        read_json("xml-hook.yrs.json"),
        yrs,
        "yrs' encoding differs from the committed one Yjs read"
    );

    let read = read_json("xml-hook.yrs-in-yjs.json");
    let expected = norm(yjs["yjs"].clone());
    for encoding in ["v1", "v2"] {
        let by_yjs = &read[format!("from_{encoding}")];
        assert_eq!(
            norm(json!({ "children": by_yjs["children"].clone() })),
            expected,
            "Yjs reading yrs' {encoding} state"
        );
        let state = format!("state_{encoding}");
        assert_eq!(
            by_yjs[&state], yrs[&state],
            "Yjs re-encoding yrs' {encoding} state"
        );
    }
}

/// A hook whose name is empty: the name is the single byte 0. yrs 0.28.1 decoded this update
/// "fine" (it read that byte as an empty delete set) and encoded the hook without it,
/// `01010300070103786d6c0500`, which Yjs refuses ("Unexpected end of array").
#[test]
fn chorus_xml_hook_empty_name() {
    let yjs = read_json("xml-hook.yjs.json");
    let d = Doc::new();
    apply_v1(&d, &unhex(yjs["empty_name_v1"].as_str().unwrap()));
    assert_eq!(describe(&d), norm(yjs["empty_name_yjs"].clone()));
    assert_eq!(
        hex(&state_v1(&d)),
        yjs["empty_name_state_v1"].as_str().unwrap()
    );
}

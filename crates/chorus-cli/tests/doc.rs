//! `chorus doc` against a real store directory, through the real binary.

use std::path::Path;
use std::process::{Command, Output};

use yrs::updates::decoder::Decode;
use yrs::{Doc, ReadTxn, Text, Transact};

fn chorus(data_dir: &Path, args: &[&str]) -> Output {
    let output = Command::new(env!("CARGO_BIN_EXE_chorus"))
        .arg("doc")
        .args(args)
        .arg("--data-dir")
        .arg(data_dir)
        .output()
        .expect("chorus runs");
    assert!(
        output.status.success(),
        "chorus doc {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

fn text_update(text: &str) -> Vec<u8> {
    let doc = Doc::new();
    let shared = doc.get_or_insert_text("content");
    shared.insert(&mut doc.transact_mut(), 0, text);
    doc.transact()
        .encode_state_as_update_v1(&yrs::StateVector::default())
}

#[test]
fn import_list_export_and_compact() {
    let dir = tempfile::tempdir().expect("dir");
    let data = dir.path().join("data");
    let file = dir.path().join("update.bin");
    std::fs::write(&file, text_update("hello")).expect("write update");
    chorus(
        &data,
        &["import", "team/notes", file.to_str().expect("utf8 path")],
    );
    std::fs::write(&file, text_update("world")).expect("write update");
    chorus(
        &data,
        &["import", "team/notes", file.to_str().expect("utf8 path")],
    );

    let listed = chorus(&data, &["list"]);
    assert_eq!(String::from_utf8_lossy(&listed.stdout), "team/notes\n");

    let json = chorus(&data, &["export", "team/notes", "--format", "json"]);
    let json: serde_json::Value = serde_json::from_slice(&json.stdout).expect("JSON");
    let content = json["content"].as_str().expect("text content");
    assert!(
        content.contains("hello") && content.contains("world"),
        "both imports merged: {content}"
    );

    let exported = chorus(&data, &["export", "team/notes"]);
    let update = yrs::Update::decode_v1(&exported.stdout).expect("a Yjs update");
    assert!(!update.state_vector().is_empty());
    chorus(&data, &["compact", "team/notes"]);

    let refused = Command::new(env!("CARGO_BIN_EXE_chorus"))
        .args(["doc", "export", "missing", "--data-dir"])
        .arg(&data)
        .output()
        .expect("chorus runs");
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("not in the store"));
}

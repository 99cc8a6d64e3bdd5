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

/// The text "content" of a document state.
fn text_of(state: &[u8]) -> String {
    use yrs::GetString;
    let doc = Doc::new();
    let update = yrs::Update::decode_v1(state).expect("an update");
    doc.transact_mut().apply_update(update).expect("applies");
    let text = doc.get_or_insert_text("content");
    text.get_string(&doc.transact())
}

/// Versions made the way a server stores them (files beside the snapshots), then listed,
/// shown, restored and pruned through the real binary.
#[tokio::test]
async fn versions_list_show_restore_and_prune() {
    use chorus_store::versions::{Version, VersionId, VersionKind, VersionMeta, VersionStore};

    let dir = tempfile::tempdir().expect("dir");
    let data = dir.path().join("data");
    let store = chorus_store::FsVersions::open(&data).expect("version store");
    let doc = chorus_protocol::DocName::parse("team/notes").expect("name");
    let mut ids = Vec::new();
    for (i, text) in ["first", "second", "third"].into_iter().enumerate() {
        let state = text_update(text);
        // Recent: the default retention (500 versions, 90 days) keeps them.
        let created_ms = chorus_store::versions::now_ms() - 10_000 + i as u64;
        let id = VersionId::new(created_ms);
        let version = Version {
            meta: VersionMeta {
                id: id.clone(),
                doc: doc.to_string(),
                created_ms,
                kind: VersionKind::Requested,
                label: Some(format!("v{i}")),
                restored_from: None,
                authors: vec!["ada".into()],
                state_bytes: state.len() as u64,
            },
            state: state.into(),
            state_vector: vec![0].into(),
        };
        store.put(&doc, &version).await.expect("put");
        ids.push(id.to_string());
    }

    let listed = chorus(&data, &["versions", "list", "team/notes"]);
    let listed = String::from_utf8_lossy(&listed.stdout).into_owned();
    assert_eq!(listed.lines().count(), 3, "{listed}");
    assert!(
        listed.lines().next().is_some_and(|l| l.starts_with(&ids[0])
            && l.contains("\"v0\"")
            && l.contains("by ada")),
        "{listed}"
    );

    let shown = chorus(
        &data,
        &[
            "versions",
            "show",
            "team/notes",
            &ids[0],
            "--format",
            "update",
        ],
    );
    assert_eq!(text_of(&shown.stdout), "first");

    // The stored document moves on, then the first version is restored into it.
    let file = dir.path().join("update.bin");
    std::fs::write(&file, text_update("something else")).expect("write update");
    chorus(
        &data,
        &["import", "team/notes", file.to_str().expect("utf8 path")],
    );
    chorus(
        &data,
        &[
            "versions",
            "restore",
            "team/notes",
            &ids[0],
            "--author",
            "operator",
        ],
    );
    let exported = chorus(&data, &["export", "team/notes"]);
    assert_eq!(text_of(&exported.stdout), "first");
    let listed = chorus(&data, &["versions", "list", "team/notes", "--json"]);
    let last: serde_json::Value = serde_json::from_str(
        String::from_utf8_lossy(&listed.stdout)
            .lines()
            .last()
            .expect("a line"),
    )
    .expect("JSON");
    assert_eq!(last["kind"], "restored");
    assert_eq!(last["restored_from"], ids[0].as_str());
    assert_eq!(last["authors"], serde_json::json!(["operator"]));

    let dry = chorus(
        &data,
        &[
            "versions",
            "prune",
            "team/notes",
            "--keep",
            "2",
            "--dry-run",
        ],
    );
    assert_eq!(String::from_utf8_lossy(&dry.stdout).lines().count(), 2);
    assert_eq!(
        store.list(&doc).await.expect("list").len(),
        4,
        "a dry run removes nothing"
    );
    let pruned = chorus(&data, &["versions", "prune", "team/notes", "--keep", "2"]);
    let report = String::from_utf8_lossy(&pruned.stdout).into_owned();
    assert!(
        report.contains(&format!("removed {}", ids[0]))
            && report.contains(&format!("removed {}", ids[1])),
        "{report}"
    );
    let kept: Vec<String> = store
        .list(&doc)
        .await
        .expect("list")
        .into_iter()
        .map(|v| v.id.to_string())
        .collect();
    assert_eq!(kept.len(), 2);
    assert_eq!(kept[0], ids[2]);
}

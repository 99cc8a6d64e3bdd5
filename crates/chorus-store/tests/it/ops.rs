//! The operator commands: list, export, import, compact.

use bytes::Bytes;
use chorus_store::{SnapshotStore, UpdateLog, ops};

use crate::helpers::{Editor, doc_name, fs_backends, text_of};

#[tokio::test]
async fn compact_folds_the_log_into_the_snapshot() {
    let (_dir, store, log) = fs_backends();
    let doc = doc_name("notes");
    let only_logged = doc_name("crashed-before-first-snapshot");
    let editor = Editor::new(5);
    editor.type_text("saved ");
    store.save(&doc, editor.state()).await.expect("save");
    let logged = [editor.type_text("logged "), editor.type_text("too")];
    log.append(&doc, &logged).await.expect("append");
    log.append(&only_logged, &[Editor::new(6).type_text("only in the log")])
        .await
        .expect("append");

    let mut expected = vec![doc.clone(), only_logged.clone()];
    expected.sort();
    assert_eq!(ops::list(&store, &log).await.expect("list"), expected);

    let exported = ops::export(&store, &log, &doc)
        .await
        .expect("export")
        .expect("present");
    assert_eq!(text_of([exported.state.as_ref()]), "saved logged too");
    assert_eq!((exported.through, exported.records), (2, 2));

    let compacted = ops::compact(&store, &log, &doc)
        .await
        .expect("compact")
        .expect("present");
    assert_eq!(compacted.records, 2);
    assert_eq!(log.read(&doc).await.expect("read"), vec![]);
    let snapshot = store.load(&doc).await.expect("load").expect("present");
    assert_eq!(text_of([snapshot.as_ref()]), "saved logged too");
    assert_eq!(
        log.append(&doc, &[editor.type_text("!")])
            .await
            .expect("append"),
        3,
        "numbering goes on after compaction"
    );

    let only = ops::compact(&store, &log, &only_logged)
        .await
        .expect("compact")
        .expect("present");
    assert_eq!(only.records, 1);
    let snapshot = store
        .load(&only_logged)
        .await
        .expect("load")
        .expect("present");
    assert_eq!(text_of([snapshot.as_ref()]), "only in the log");
    assert_eq!(
        ops::export(&store, &log, &doc_name("nothing"))
            .await
            .expect("export"),
        None
    );
}

#[tokio::test]
async fn import_merges_into_what_is_stored() {
    let (_dir, store, _) = fs_backends();
    let doc = doc_name("notes");
    let live = Editor::with_text(1, "live ");
    store.save(&doc, live.state()).await.expect("save");
    let backup = Editor::with_text(2, "restored");
    ops::import(&store, &doc, backup.state())
        .await
        .expect("import");
    let text = text_of([store
        .load(&doc)
        .await
        .expect("load")
        .expect("present")
        .as_ref()]);
    assert!(
        text.contains("live ") && text.contains("restored"),
        "{text}"
    );
    assert!(
        ops::import(&store, &doc, Bytes::from_static(b"junk"))
            .await
            .is_err(),
        "junk is refused"
    );
}

#[tokio::test]
async fn export_refuses_a_logged_record_that_is_not_an_update() {
    let (_dir, store, log) = fs_backends();
    let doc = doc_name("notes");
    let editor = Editor::new(1);
    log.append(
        &doc,
        &[editor.type_text("a"), Bytes::from_static(b"\xff\xff\xff")],
    )
    .await
    .expect("append");
    let error = ops::export(&store, &log, &doc)
        .await
        .expect_err("bad record");
    assert!(error.to_string().contains("log record 2"), "{error}");
}

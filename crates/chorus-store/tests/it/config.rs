//! `open`: from a configuration to working backends.

use chorus_store::{FsyncPolicy, LogBackend, SnapshotBackend, StoreConfig, open, ops};

use crate::helpers::{Editor, doc_name, redis_url, unique};

#[tokio::test]
async fn opens_files_side_by_side() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (store, log) = open(&StoreConfig::fs(dir.path(), FsyncPolicy::Always))
        .await
        .expect("open");
    let doc = doc_name("notes");
    let editor = Editor::new(1);
    editor.type_text("snap ");
    store.save(&doc, editor.state()).await.expect("save");
    log.append(&doc, &[editor.type_text("log")])
        .await
        .expect("append");
    assert!(dir.path().join("notes.snap").exists());
    assert!(dir.path().join("notes.log").exists());
    let exported = ops::export(store.as_ref(), log.as_ref(), &doc)
        .await
        .expect("export")
        .expect("present");
    assert_eq!(
        crate::helpers::text_of([exported.state.as_ref()]),
        "snap log"
    );
}

#[tokio::test]
async fn opens_redis_for_both_with_one_connection() {
    let prefix = format!("{}:", unique("test"));
    let config = StoreConfig {
        snapshots: SnapshotBackend::Redis {
            url: redis_url(),
            prefix: prefix.clone(),
        },
        log: LogBackend::Redis {
            url: redis_url(),
            prefix,
        },
    };
    let (store, log) = match open(&config).await {
        Ok(backends) => backends,
        Err(e) => panic!(
            "these tests need Redis at {} ({e}); see helpers::redis for how to start one",
            redis_url()
        ),
    };
    let doc = doc_name("notes");
    let editor = Editor::new(1);
    editor.type_text("a");
    store.save(&doc, editor.state()).await.expect("save");
    log.append(&doc, &[editor.type_text("b")])
        .await
        .expect("append");
    let compacted = ops::compact(store.as_ref(), log.as_ref(), &doc)
        .await
        .expect("compact")
        .expect("present");
    assert_eq!(compacted.records, 1);
    store.delete(&doc).await.expect("delete");
    log.delete(&doc).await.expect("delete");
    assert!(
        ops::list(store.as_ref(), log.as_ref())
            .await
            .expect("list")
            .is_empty()
    );
}

#[tokio::test]
async fn an_unreachable_redis_fails_at_open_without_leaking_the_password() {
    // Port 1 on loopback: nothing listens there.
    let config = StoreConfig {
        snapshots: SnapshotBackend::Redis {
            url: "redis://user:hunter2@127.0.0.1:1".to_owned(),
            prefix: String::new(),
        },
        log: LogBackend::Memory,
    };
    let Err(error) = open(&config).await else {
        panic!("connected to nothing");
    };
    let shown = format!("{error} {error:?}");
    assert!(!shown.contains("hunter2"), "{shown}");
}

#[cfg(not(feature = "s3"))]
#[tokio::test]
async fn s3_without_the_feature_is_a_configuration_error() {
    use chorus_store::{S3Config, StoreError};
    let config = StoreConfig {
        snapshots: SnapshotBackend::S3(S3Config {
            bucket: "b".to_owned(),
            prefix: String::new(),
            endpoint: None,
            region: None,
            allow_http: false,
        }),
        log: LogBackend::Memory,
    };
    assert!(matches!(open(&config).await, Err(StoreError::Config(_))));
}

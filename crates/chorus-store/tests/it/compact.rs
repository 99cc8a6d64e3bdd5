//! The one compaction (`ops::save_compacted`, and `ops::compact` through it), on files and on
//! Redis: what it saves holds the covered log records, what it truncates is only those.

use bytes::Bytes;
use chorus_store::{RedisLog, RedisStore, SnapshotStore, StoreError, UpdateLog, ops};

use crate::helpers::{Editor, doc_name, fs_backends, redis, redis_cleanup, text_of, unique};

/// A room saves its state while another node's updates sit in the shared log: the ones it
/// covers are merged in and dropped, a later one survives.
async fn merges_what_it_covers_and_keeps_the_rest(store: &dyn SnapshotStore, log: &dyn UpdateLog) {
    let doc = doc_name(&unique("room"));
    let room = Editor::with_text(1, "room ");
    let other = Editor::new(2);
    let covered = log
        .append(&doc, &[other.type_text("other ")])
        .await
        .expect("append");
    let later = other.type_text("later");
    let after = log
        .append(&doc, std::slice::from_ref(&later))
        .await
        .expect("append");

    let saved = ops::save_compacted(store, log, &doc, room.state(), covered)
        .await
        .expect("save");
    assert_eq!(text_of([saved.as_ref()]), "room other ");
    let stored = store.load(&doc).await.expect("load").expect("present");
    assert_eq!(stored, saved, "returns what it saved");
    assert_eq!(
        log.read(&doc).await.expect("read"),
        vec![(after, later)],
        "the record after `covered` survives"
    );
}

/// Nothing covered: the snapshot is saved as it is and the log is left alone.
async fn covering_nothing_saves_the_snapshot_as_is(store: &dyn SnapshotStore, log: &dyn UpdateLog) {
    let doc = doc_name(&unique("fresh"));
    let room = Editor::with_text(1, "as is");
    let logged = Editor::new(2).type_text("logged");
    log.append(&doc, std::slice::from_ref(&logged))
        .await
        .expect("append");
    let saved = ops::save_compacted(store, log, &doc, room.state(), 0)
        .await
        .expect("save");
    assert_eq!(saved, room.state());
    assert_eq!(
        store.load(&doc).await.expect("load"),
        Some(room.state()),
        "saved byte for byte"
    );
    assert_eq!(log.read(&doc).await.expect("read"), vec![(1, logged)]);
}

/// A covered record that is no Yjs update: the snapshot is saved alone and the log kept whole;
/// `ops::compact` says which record it is.
async fn records_that_do_not_merge_are_not_truncated(
    store: &dyn SnapshotStore,
    log: &dyn UpdateLog,
) {
    let doc = doc_name(&unique("junk"));
    let room = Editor::with_text(1, "room");
    let records = [
        Editor::new(2).type_text("fine"),
        Bytes::from_static(b"\xff\xff\xff"),
    ];
    let covered = log.append(&doc, &records).await.expect("append");
    let saved = ops::save_compacted(store, log, &doc, room.state(), covered)
        .await
        .expect("save");
    assert_eq!(saved, room.state(), "the snapshot alone");
    assert_eq!(store.load(&doc).await.expect("load"), Some(room.state()));
    assert_eq!(
        log.read(&doc).await.expect("read").len(),
        2,
        "not truncated"
    );

    let error = ops::compact(store, log, &doc)
        .await
        .expect_err("junk record");
    assert!(
        matches!(&error, StoreError::Corrupt { location, .. } if location.contains("log record 2")),
        "{error:?}"
    );
    assert_eq!(
        log.read(&doc).await.expect("read").len(),
        2,
        "not truncated"
    );
}

async fn compaction(store: &dyn SnapshotStore, log: &dyn UpdateLog) {
    merges_what_it_covers_and_keeps_the_rest(store, log).await;
    covering_nothing_saves_the_snapshot_as_is(store, log).await;
    records_that_do_not_merge_are_not_truncated(store, log).await;
}

#[tokio::test]
async fn compaction_on_files() {
    let (_dir, store, log) = fs_backends();
    compaction(&store, &log).await;
}

#[tokio::test]
async fn compaction_on_redis() {
    let conn = redis().await;
    compaction(&RedisStore::new(conn.clone()), &RedisLog::new(conn.clone())).await;
    redis_cleanup(&conn).await;
}

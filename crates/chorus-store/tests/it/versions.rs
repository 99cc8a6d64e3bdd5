//! Version stores: every backend keeps, lists, reads, prunes versions and adds up activity
//! the same way.

use bytes::Bytes;
use chorus_protocol::DocName;
use chorus_store::versions::{
    ActivityRecord, Retention, Version, VersionId, VersionKind, VersionMeta, VersionStore, prune,
};
use chorus_store::{FsVersions, MemoryVersions, RedisVersions};

use crate::helpers::{redis, redis_cleanup};

fn meta(id: &str, created_ms: u64) -> VersionMeta {
    VersionMeta {
        id: VersionId::parse(id).expect("id"),
        doc: "team/notes".into(),
        created_ms,
        kind: VersionKind::Auto,
        label: None,
        restored_from: None,
        authors: vec!["ada".into()],
        state_bytes: 3,
    }
}

/// The same checks against every backend.
async fn exercise(store: &dyn VersionStore) {
    let doc = DocName::parse("team/notes").expect("name");
    assert!(store.list(&doc).await.expect("list").is_empty());
    let mut versions = Vec::new();
    for i in 0..3u8 {
        let version = Version {
            meta: meta(&format!("000{i}-ab"), u64::from(i)),
            state: Bytes::from(vec![0, 0, i]),
            state_vector: Bytes::from_static(b"\x00"),
        };
        store.put(&doc, &version).await.expect("put");
        versions.push(version);
    }
    let listed = store.list(&doc).await.expect("list");
    assert_eq!(listed.len(), 3);
    assert_eq!(listed[0], versions[0].meta);
    let got = store.get(&doc, &versions[1].meta.id).await.expect("get");
    assert_eq!(got.as_ref(), Some(&versions[1]));
    let missing = VersionId::parse("nope").expect("id");
    assert_eq!(store.get(&doc, &missing).await.expect("get"), None);

    let keep_one = Retention {
        max_count: Some(1),
        max_age: None,
    };
    let pruned = prune(store, &doc, keep_one, 10).await.expect("prune");
    assert_eq!(pruned.removed.len(), 2);
    assert_eq!(pruned.kept, 1);
    assert_eq!(
        store.list(&doc).await.expect("list"),
        [versions[2].meta.clone()]
    );
    assert!(
        !store
            .remove(&doc, &versions[0].meta.id)
            .await
            .expect("remove")
    );

    let r = |minute, updates| ActivityRecord {
        minute,
        identity: "ada|x".into(),
        updates,
        bytes: updates * 10,
    };
    store
        .record_activity(&doc, &[r(1, 1), r(5, 2)])
        .await
        .expect("record");
    store
        .record_activity(&doc, &[r(5, 3)])
        .await
        .expect("record");
    assert_eq!(
        store.activity(&doc).await.expect("activity"),
        [r(1, 1), r(5, 5)]
    );
    assert_eq!(store.prune_activity(&doc, 5).await.expect("prune"), 1);
    assert_eq!(store.activity(&doc).await.expect("activity"), [r(5, 5)]);
}

#[tokio::test]
async fn memory_backend_keeps_versions_and_activity() {
    exercise(&MemoryVersions::new()).await;
}

#[tokio::test]
async fn file_backend_keeps_versions_and_activity() {
    let dir = tempfile::tempdir().expect("tempdir");
    exercise(&FsVersions::open(dir.path()).expect("open")).await;
    // A damaged file is skipped by listings, reported by reads.
    let store = FsVersions::open(dir.path()).expect("open");
    let doc = DocName::parse("team/notes").expect("name");
    let id = store.list(&doc).await.expect("list")[0].id.clone();
    let path = dir
        .path()
        .join("versions")
        .join(chorus_store::naming::stem(&doc))
        .join(format!("{id}.version"));
    let mut bytes = std::fs::read(&path).expect("read");
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    std::fs::write(&path, bytes).expect("write");
    assert!(store.get(&doc, &id).await.is_err());
}

#[tokio::test]
async fn redis_backend_keeps_versions_and_activity() {
    let conn = redis().await;
    exercise(&RedisVersions::new(conn.clone())).await;
    redis_cleanup(&conn).await;
}

#[cfg(feature = "s3")]
#[tokio::test]
async fn s3_backend_keeps_versions_and_activity() {
    use std::sync::Arc;

    use crate::helpers::MotoServer;

    let moto = MotoServer::start();
    moto.create_bucket("versions").await;
    let store = chorus_store::versions::S3Versions::with_object_store(
        Arc::new(moto.client("versions")),
        "chorus",
    )
    .expect("store");
    exercise(&store).await;
}

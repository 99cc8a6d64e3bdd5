//! What every `SnapshotStore` backend must do, and what the shared ones must do with several
//! writers: no save may erase what another node saved.

use std::sync::Arc;

use bytes::Bytes;
use chorus_store::{FsStore, MemoryStore, RedisStore, SnapshotStore, StoreError};

use crate::helpers::{Editor, doc_name, redis, redis_cleanup, redis_peer, text_of, unique};

/// Save, load, list, delete; refusal of bytes that are not a Yjs update (shared backends only).
async fn contract(store: &dyn SnapshotStore, merges: bool) {
    let doc = doc_name(&unique("team/notes"));
    let long = doc_name(&format!("{}{}", unique("long"), "ü/".repeat(150)));
    assert_eq!(store.load(&doc).await.expect("load missing"), None);
    let editor = Editor::new(1);
    editor.type_text("one");
    store.save(&doc, editor.state()).await.expect("save");
    assert_eq!(store.load(&doc).await.expect("load"), Some(editor.state()));
    editor.type_text(" two");
    store.save(&doc, editor.state()).await.expect("save again");
    let loaded = store.load(&doc).await.expect("load").expect("present");
    assert_eq!(text_of([loaded.as_ref()]), "one two");
    store.save(&long, editor.state()).await.expect("save long");

    let listed: Vec<_> = store
        .list()
        .await
        .expect("list")
        .into_iter()
        .filter(|d| *d == doc || *d == long)
        .collect();
    let mut expected = vec![doc.clone(), long.clone()];
    expected.sort();
    assert_eq!(listed, expected);

    if merges {
        let refused = store.save(&doc, Bytes::from_static(b"\xff\xff\xff")).await;
        assert!(
            matches!(refused, Err(StoreError::Rejected { .. })),
            "{refused:?}"
        );
        let kept = store.load(&doc).await.expect("load").expect("present");
        assert_eq!(
            text_of([kept.as_ref()]),
            "one two",
            "a refused save changes nothing"
        );
    }

    store.delete(&doc).await.expect("delete");
    store.delete(&doc).await.expect("deleting twice is fine");
    assert_eq!(store.load(&doc).await.expect("load"), None);
    store.delete(&long).await.expect("delete long");
}

/// Several nodes edit the same document from a common base and save their whole state, over
/// and over, at the same time. With last-writer-wins the stored snapshot would hold the last
/// writer's edits only; merging without a compare-and-swap would still lose a save now and then
/// (two read-merge-writes interleaving). Four writers make such interleavings frequent.
async fn concurrent_writers_keep_every_edit(stores: Vec<Arc<dyn SnapshotStore>>) {
    const ROUNDS: u64 = 25;
    let doc = doc_name(&unique("shared"));
    let base = Editor::new(100);
    base.type_text("base ");
    stores[0].save(&doc, base.state()).await.expect("save base");

    let nodes: Vec<_> = (1..)
        .zip(&stores)
        .map(|(client, store)| {
            let (store, doc, base) = (Arc::clone(store), doc.clone(), base.state());
            tokio::spawn(async move {
                let editor = Editor::new(client);
                editor.apply(&base);
                for round in 0..ROUNDS {
                    editor.type_text(&format!("[{client}:{round}]"));
                    store.save(&doc, editor.state()).await.expect("save");
                }
            })
        })
        .collect();
    for node in nodes {
        node.await.expect("node");
    }

    for store in &stores {
        let stored = store.load(&doc).await.expect("load").expect("present");
        let text = text_of([stored.as_ref()]);
        assert!(text.starts_with("base "), "{text}");
        for client in 1..=stores.len() {
            for round in 0..ROUNDS {
                let edit = format!("[{client}:{round}]");
                assert!(text.contains(&edit), "{edit} is missing from {text}");
            }
        }
    }
}

#[tokio::test]
async fn memory_store_keeps_the_contract() {
    contract(&MemoryStore::new(), false).await;
}

#[tokio::test]
async fn fs_store_keeps_the_contract() {
    let dir = tempfile::tempdir().expect("temp dir");
    contract(&FsStore::open(dir.path()).expect("open"), true).await;
}

#[tokio::test]
async fn redis_store_keeps_the_contract() {
    let conn = redis().await;
    contract(&RedisStore::new(conn.clone()), true).await;
    redis_cleanup(&conn).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fs_stores_on_one_directory_keep_every_nodes_edits() {
    let dir = tempfile::tempdir().expect("temp dir");
    let stores = (0..4)
        .map(|_| Arc::new(FsStore::open(dir.path()).expect("open")) as Arc<dyn SnapshotStore>)
        .collect();
    concurrent_writers_keep_every_edit(stores).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redis_stores_on_one_prefix_keep_every_nodes_edits() {
    let conn = redis().await;
    let mut stores: Vec<Arc<dyn SnapshotStore>> = vec![Arc::new(RedisStore::new(conn.clone()))];
    for _ in 1..4 {
        stores.push(Arc::new(RedisStore::new(redis_peer(&conn).await)));
    }
    concurrent_writers_keep_every_edit(stores).await;
    redis_cleanup(&conn).await;
}

#[tokio::test]
async fn a_corrupt_redis_snapshot_names_its_key_and_is_kept_aside_by_the_next_save() {
    let conn = redis().await;
    let store = RedisStore::new(conn.clone());
    let doc = doc_name("damaged");
    let editor = Editor::new(1);
    editor.type_text("old");
    store.save(&doc, editor.state()).await.expect("save");
    let key = store.key_of(&doc);
    let mut manager = conn.manager();
    let mut frame: Vec<u8> = redis::cmd("HGET")
        .arg(&key)
        .arg("d")
        .query_async(&mut manager)
        .await
        .expect("HGET");
    let last = frame.len() - 5;
    frame[last] ^= 0x40;
    let _: i64 = redis::cmd("HSET")
        .arg(&key)
        .arg("d")
        .arg(&frame)
        .query_async(&mut manager)
        .await
        .expect("HSET");

    let error = store.load(&doc).await.expect_err("corrupt");
    assert!(
        matches!(&error, StoreError::Corrupt { location, .. } if location.contains(&key)),
        "{error:?}"
    );

    let fresh = Editor::new(2);
    fresh.type_text("new");
    store
        .save(&doc, fresh.state())
        .await
        .expect("save over damage");
    let loaded = store.load(&doc).await.expect("load").expect("present");
    assert_eq!(text_of([loaded.as_ref()]), "new");
    let aside: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{key}.corrupt-*"))
        .query_async(&mut manager)
        .await
        .expect("KEYS");
    assert_eq!(aside.len(), 1, "the damaged snapshot was kept aside");
    let kept: Vec<u8> = redis::cmd("HGET")
        .arg(&aside[0])
        .arg("d")
        .query_async(&mut manager)
        .await
        .expect("HGET");
    assert_eq!(kept, frame, "kept byte for byte");
    redis_cleanup(&conn).await;
}

#[cfg(feature = "s3")]
mod s3 {
    use super::*;
    use crate::helpers::MotoServer;
    use chorus_store::s3::object_store::path::Path;
    use chorus_store::s3::object_store::{ObjectStore, ObjectStoreExt, PutPayload};

    #[tokio::test]
    async fn s3_store_keeps_the_contract() {
        let moto = MotoServer::start();
        moto.create_bucket("contract").await;
        contract(&moto.store("contract", "chorus/docs"), true).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn s3_stores_on_one_bucket_keep_every_nodes_edits() {
        let moto = MotoServer::start();
        moto.create_bucket("shared").await;
        let stores = (0..4)
            .map(|_| Arc::new(moto.store("shared", "chorus")) as Arc<dyn SnapshotStore>)
            .collect();
        concurrent_writers_keep_every_edit(stores).await;
    }

    #[tokio::test]
    async fn a_corrupt_s3_snapshot_names_its_object_and_is_kept_aside_by_the_next_save() {
        let moto = MotoServer::start();
        moto.create_bucket("damaged").await;
        let store = moto.store("damaged", "chorus");
        let doc = doc_name("d");
        let editor = Editor::new(1);
        editor.type_text("old");
        store.save(&doc, editor.state()).await.expect("save");

        let path = store.path_of(&doc);
        let raw = moto_client(&moto, "damaged");
        let mut bytes = raw
            .get(&path)
            .await
            .expect("get")
            .bytes()
            .await
            .expect("bytes")
            .to_vec();
        let last = bytes.len() - 5;
        bytes[last] ^= 0x40;
        raw.put(&path, PutPayload::from(bytes.clone()))
            .await
            .expect("damage");

        let error = store.load(&doc).await.expect_err("corrupt");
        assert!(
            matches!(&error, StoreError::Corrupt { location, .. } if location.contains("chorus/d.snap")),
            "{error:?}"
        );
        let fresh = Editor::new(2);
        fresh.type_text("new");
        store
            .save(&doc, fresh.state())
            .await
            .expect("save over damage");
        let loaded = store.load(&doc).await.expect("load").expect("present");
        assert_eq!(text_of([loaded.as_ref()]), "new");

        let objects: Vec<Path> = futures_util::TryStreamExt::try_collect::<Vec<_>>(
            raw.list(Some(&Path::from("chorus"))),
        )
        .await
        .expect("list")
        .into_iter()
        .map(|o| o.location)
        .filter(|p| p.as_ref().contains("d.snap.corrupt-"))
        .collect();
        assert_eq!(objects.len(), 1, "the damaged snapshot was kept aside");
        let kept = raw
            .get(&objects[0])
            .await
            .expect("get")
            .bytes()
            .await
            .expect("bytes");
        assert_eq!(kept.as_ref(), bytes.as_slice(), "kept byte for byte");
    }

    fn moto_client(moto: &MotoServer, bucket: &str) -> impl ObjectStore {
        chorus_store::s3::object_store::aws::AmazonS3Builder::new()
            .with_endpoint(&moto.endpoint)
            .with_allow_http(true)
            .with_region("us-east-1")
            .with_bucket_name(bucket)
            .with_access_key_id("test")
            .with_secret_access_key("test")
            .build()
            .expect("S3 client")
    }
}

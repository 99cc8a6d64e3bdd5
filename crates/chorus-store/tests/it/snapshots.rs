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

#[cfg(feature = "s3")]
mod s3 {
    use super::*;
    use crate::helpers::MotoServer;

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
}

//! One policy for a damaged stored snapshot, whatever the backend: a load reports it and leaves
//! it; the next save keeps it aside (never overwriting an earlier copy), never merges it, and
//! saves the new snapshot.

use async_trait::async_trait;
use chorus_protocol::DocName;
use chorus_store::{FsStore, RedisStore, SnapshotStore, StoreError, snapshot_file};

use crate::helpers::{Editor, doc_name, redis, redis_cleanup, text_of};

/// Raw access to where a backend keeps one document's snapshot, behind the store's back.
#[async_trait]
trait Raw: Sync {
    /// What a [`StoreError::Corrupt`] about it names: the file, key or object.
    fn name(&self) -> String;
    /// The stored bytes.
    async fn get(&self) -> Vec<u8>;
    /// Replaces the stored bytes.
    async fn put(&self, bytes: &[u8]);
    /// Every copy kept aside, in no particular order.
    async fn kept(&self) -> Vec<Vec<u8>>;
}

async fn load_text(store: &dyn SnapshotStore, doc: &DocName) -> String {
    let loaded = store.load(doc).await.expect("load").expect("present");
    text_of([loaded.as_ref()])
}

fn sorted(mut copies: Vec<Vec<u8>>) -> Vec<Vec<u8>> {
    copies.sort();
    copies
}

async fn damaged_snapshots_are_kept_aside(store: &dyn SnapshotStore, doc: &DocName, raw: &dyn Raw) {
    let old = Editor::with_text(1, "old");
    store.save(doc, old.state()).await.expect("save");

    // A flipped bit: the checksum fails.
    let mut flipped = raw.get().await;
    let last = flipped.len() - 5;
    flipped[last] ^= 0x40;
    raw.put(&flipped).await;
    let error = store.load(doc).await.expect_err("damaged");
    assert!(
        matches!(&error, StoreError::Corrupt { location, .. } if location.contains(&raw.name())),
        "{error:?}"
    );
    assert_eq!(
        raw.get().await,
        flipped,
        "a load leaves the damage as it is"
    );
    store
        .save(doc, Editor::with_text(2, "new").state())
        .await
        .expect("save over damage");
    assert_eq!(load_text(store, doc).await, "new");
    assert_eq!(
        raw.kept().await,
        vec![flipped.clone()],
        "kept byte for byte"
    );

    // A good checksum around bytes that are no Yjs update: damaged all the same.
    let junk = snapshot_file::encode(doc.as_str(), b"\xff\xff\xff").to_vec();
    raw.put(&junk).await;
    store
        .save(doc, Editor::with_text(3, "newer").state())
        .await
        .expect("save over junk");
    assert_eq!(
        load_text(store, doc).await,
        "newer",
        "nothing merged from damage"
    );
    assert_eq!(
        sorted(raw.kept().await),
        sorted(vec![flipped.clone(), junk.clone()]),
        "the earlier copy is still there"
    );

    // A save that is refused keeps nothing aside and leaves the damage in place.
    raw.put(&flipped).await;
    let refused = store
        .save(doc, bytes::Bytes::from_static(b"\xff\xff\xff"))
        .await;
    assert!(
        matches!(refused, Err(StoreError::Rejected { .. })),
        "{refused:?}"
    );
    assert_eq!(raw.get().await, flipped);
    assert_eq!(raw.kept().await.len(), 2);
}

struct FsRaw {
    path: std::path::PathBuf,
}

#[async_trait]
impl Raw for FsRaw {
    fn name(&self) -> String {
        self.path.display().to_string()
    }

    async fn get(&self) -> Vec<u8> {
        std::fs::read(&self.path).expect("read snapshot file")
    }

    async fn put(&self, bytes: &[u8]) {
        std::fs::write(&self.path, bytes).expect("write snapshot file");
    }

    async fn kept(&self) -> Vec<Vec<u8>> {
        let name = self.path.file_name().expect("file name").to_string_lossy();
        let aside = format!("{name}.corrupt-");
        let dir = self.path.parent().expect("directory");
        std::fs::read_dir(dir)
            .expect("list")
            .filter_map(Result::ok)
            .filter(|e| e.file_name().to_string_lossy().starts_with(&aside))
            .map(|e| std::fs::read(e.path()).expect("read kept copy"))
            .collect()
    }
}

#[tokio::test]
async fn fs_store_keeps_a_damaged_snapshot_aside() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = FsStore::open(dir.path()).expect("open");
    let doc = doc_name("damaged");
    let raw = FsRaw {
        path: store.path_of(&doc),
    };
    damaged_snapshots_are_kept_aside(&store, &doc, &raw).await;
}

struct RedisRaw {
    conn: redis::aio::ConnectionManager,
    key: String,
}

#[async_trait]
impl Raw for RedisRaw {
    fn name(&self) -> String {
        self.key.clone()
    }

    async fn get(&self) -> Vec<u8> {
        redis::cmd("HGET")
            .arg(&self.key)
            .arg("d")
            .query_async(&mut self.conn.clone())
            .await
            .expect("HGET")
    }

    async fn put(&self, bytes: &[u8]) {
        let _: i64 = redis::cmd("HSET")
            .arg(&self.key)
            .arg("d")
            .arg(bytes)
            .query_async(&mut self.conn.clone())
            .await
            .expect("HSET");
    }

    async fn kept(&self) -> Vec<Vec<u8>> {
        let keys: Vec<String> = redis::cmd("KEYS")
            .arg(format!("{}.corrupt-*", self.key))
            .query_async(&mut self.conn.clone())
            .await
            .expect("KEYS");
        let mut kept = Vec::new();
        for key in keys {
            kept.push(
                redis::cmd("HGET")
                    .arg(&key)
                    .arg("d")
                    .query_async(&mut self.conn.clone())
                    .await
                    .expect("HGET"),
            );
        }
        kept
    }
}

#[tokio::test]
async fn redis_store_keeps_a_damaged_snapshot_aside() {
    let conn = redis().await;
    let store = RedisStore::new(conn.clone());
    let doc = doc_name("damaged");
    let raw = RedisRaw {
        conn: conn.manager(),
        key: store.key_of(&doc),
    };
    damaged_snapshots_are_kept_aside(&store, &doc, &raw).await;
    redis_cleanup(&conn).await;
}

#[cfg(feature = "s3")]
mod s3 {
    use chorus_store::s3::object_store::path::Path;
    use chorus_store::s3::object_store::{ObjectStore, ObjectStoreExt, PutPayload};
    use futures_util::TryStreamExt;

    use super::*;
    use crate::helpers::MotoServer;

    struct S3Raw<S> {
        client: S,
        path: Path,
    }

    #[async_trait]
    impl<S: ObjectStore> Raw for S3Raw<S> {
        fn name(&self) -> String {
            self.path.to_string()
        }

        async fn get(&self) -> Vec<u8> {
            let object = self.client.get(&self.path).await.expect("get");
            object.bytes().await.expect("bytes").to_vec()
        }

        async fn put(&self, bytes: &[u8]) {
            self.client
                .put(&self.path, PutPayload::from(bytes.to_vec()))
                .await
                .expect("put");
        }

        async fn kept(&self) -> Vec<Vec<u8>> {
            let aside = format!("{}.corrupt-", self.path.filename().expect("file name"));
            let objects: Vec<_> = self.client.list(None).try_collect().await.expect("list");
            let mut kept = Vec::new();
            for object in objects {
                if object
                    .location
                    .filename()
                    .is_some_and(|f| f.starts_with(&aside))
                {
                    let copy = self.client.get(&object.location).await.expect("get");
                    kept.push(copy.bytes().await.expect("bytes").to_vec());
                }
            }
            kept
        }
    }

    #[tokio::test]
    async fn s3_store_keeps_a_damaged_snapshot_aside() {
        let moto = MotoServer::start();
        moto.create_bucket("damaged").await;
        let store = moto.store("damaged", "chorus");
        let doc = doc_name("d");
        let raw = S3Raw {
            client: moto.client("damaged"),
            path: store.path_of(&doc),
        };
        damaged_snapshots_are_kept_aside(&store, &doc, &raw).await;
    }
}

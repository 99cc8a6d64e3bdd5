//! Shared test helpers: Yjs documents, a real Redis, a real S3 server (moto).

use bytes::Bytes;
use chorus_protocol::DocName;
use chorus_store::redis::RedisConnection;
use chorus_store::{FsLog, FsStore, FsyncPolicy};
use yrs::updates::decoder::Decode;
use yrs::{Doc, GetString, ReadTxn, StateVector, Text, Transact, Update};

pub fn doc_name(name: &str) -> DocName {
    DocName::parse(name).expect("valid test document name")
}

/// A unique name, so that tests sharing a backend never meet.
pub fn unique(prefix: &str) -> String {
    format!("{prefix}-{:016x}", fastrand::u64(..))
}

/// A client editing the text `t` of one document.
pub struct Editor {
    pub doc: Doc,
}

impl Editor {
    pub fn new(client_id: u64) -> Self {
        Self {
            doc: Doc::with_client_id(client_id),
        }
    }

    /// A client whose document already holds `text`.
    pub fn with_text(client_id: u64, text: &str) -> Self {
        let editor = Self::new(client_id);
        editor.type_text(text);
        editor
    }

    /// Appends `text` and returns the update that carries just this edit.
    pub fn type_text(&self, text: &str) -> Bytes {
        let t = self.doc.get_or_insert_text("t");
        let mut txn = self.doc.transact_mut();
        t.push(&mut txn, text);
        Bytes::from(txn.encode_update_v1())
    }

    /// The whole document as one update: what a room saves as its snapshot.
    pub fn state(&self) -> Bytes {
        Bytes::from(
            self.doc
                .transact()
                .encode_state_as_update_v1(&StateVector::default()),
        )
    }

    pub fn apply(&self, update: &[u8]) {
        let update = Update::decode_v1(update).expect("a Yjs update");
        self.doc
            .transact_mut()
            .apply_update(update)
            .expect("applies");
    }

    pub fn text(&self) -> String {
        let t = self.doc.get_or_insert_text("t");
        t.get_string(&self.doc.transact())
    }
}

/// The text of `t` in a document built from `updates`.
pub fn text_of<'a>(updates: impl IntoIterator<Item = &'a [u8]>) -> String {
    let reader = Editor::new(u64::from(u32::MAX));
    for update in updates {
        reader.apply(update);
    }
    reader.text()
}

/// A file snapshot store and a file update log side by side in a fresh temporary directory
/// (removed when the first value is dropped).
pub fn fs_backends() -> (tempfile::TempDir, FsStore, FsLog) {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = FsStore::open(dir.path()).expect("open store");
    let log = FsLog::open(dir.path(), FsyncPolicy::Always).expect("open log");
    (dir, store, log)
}

/// The Redis the tests use: `CHORUS_TEST_REDIS_URL`, or the default local port.
pub fn redis_url() -> String {
    std::env::var("CHORUS_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned())
}

/// A connection under a fresh `test-<random>:` prefix. Fails (never skips) without Redis.
pub async fn redis() -> RedisConnection {
    let url = redis_url();
    match RedisConnection::connect(&url, format!("{}:", unique("test"))).await {
        Ok(conn) => conn,
        Err(e) => panic!(
            "these tests need a Redis server at {url} ({e}: {}). Start one with \
             `redis-server --port 6379 --save '' --appendonly no --daemonize yes` \
             (Debian: apt-get install redis-server), or point CHORUS_TEST_REDIS_URL at one.",
            std::error::Error::source(&e).map_or_else(String::new, ToString::to_string)
        ),
    }
}

/// A second connection to the same Redis and prefix: another node.
pub async fn redis_peer(conn: &RedisConnection) -> RedisConnection {
    let prefix = conn.keys().prefix().to_owned();
    RedisConnection::connect(&redis_url(), prefix)
        .await
        .expect("second Redis connection")
}

/// Removes every key under the connection's prefix.
pub async fn redis_cleanup(conn: &RedisConnection) {
    let mut manager = conn.manager();
    let pattern = format!("{}*", conn.keys().prefix());
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(&pattern)
        .query_async(&mut manager)
        .await
        .expect("KEYS");
    if !keys.is_empty() {
        let _: i64 = redis::cmd("DEL")
            .arg(&keys)
            .query_async(&mut manager)
            .await
            .expect("DEL");
    }
}

#[cfg(feature = "s3")]
pub use moto::MotoServer;

#[cfg(feature = "s3")]
mod moto {
    use std::io::{BufRead, BufReader};
    use std::process::{Child, Command, Stdio};
    use std::sync::Arc;
    use std::sync::mpsc;
    use std::time::Duration;

    use chorus_store::S3Store;
    use chorus_store::s3::object_store::aws::{AmazonS3, AmazonS3Builder, S3ConditionalPut};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A `moto_server` (the S3 API of the Python `moto` package) on a free loopback port,
    /// killed when dropped.
    pub struct MotoServer {
        child: Child,
        pub endpoint: String,
    }

    impl MotoServer {
        /// Starts `moto_server` (or `$CHORUS_TEST_MOTO`). Fails with install instructions if
        /// it is missing.
        pub fn start() -> Self {
            let program =
                std::env::var("CHORUS_TEST_MOTO").unwrap_or_else(|_| "moto_server".to_owned());
            let mut child = match Command::new(&program)
                .args(["-H", "127.0.0.1", "-p", "0"])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
            {
                Ok(child) => child,
                Err(e) => panic!(
                    "the S3 tests need moto's S3 server ({program}: {e}). Install it with \
                     `pip install 'moto[server]'`, or point CHORUS_TEST_MOTO at moto_server."
                ),
            };
            let Some(stderr) = child.stderr.take() else {
                panic!("moto_server's stderr is piped");
            };
            // Werkzeug prints "Running on http://127.0.0.1:PORT" on stderr, then one line per
            // request: keep draining it so the server never blocks on a full pipe.
            let (port_tx, port_rx) = mpsc::channel();
            std::thread::spawn(move || {
                let mut port_tx = Some(port_tx);
                for line in BufReader::new(stderr).lines() {
                    let Ok(line) = line else { break };
                    if let Some(rest) = line.split("Running on http://127.0.0.1:").nth(1)
                        && let Some(tx) = port_tx.take()
                    {
                        let port: String = rest.chars().take_while(char::is_ascii_digit).collect();
                        let _ = tx.send(port);
                    }
                }
            });
            let port = match port_rx.recv_timeout(Duration::from_secs(60)) {
                Ok(port) => port,
                Err(e) => {
                    let _ = child.kill();
                    panic!("moto_server did not report its port: {e}");
                }
            };
            Self {
                child,
                endpoint: format!("http://127.0.0.1:{port}"),
            }
        }

        /// Creates a bucket (moto accepts unsigned requests).
        pub async fn create_bucket(&self, bucket: &str) {
            let addr = self.endpoint.trim_start_matches("http://").to_owned();
            let mut stream = tokio::net::TcpStream::connect(&addr)
                .await
                .expect("connect to moto");
            let request = format!(
                "PUT /{bucket} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            );
            stream.write_all(request.as_bytes()).await.expect("send");
            let mut response = String::new();
            stream
                .read_to_string(&mut response)
                .await
                .expect("response");
            assert!(
                response.starts_with("HTTP/1.1 200"),
                "creating bucket {bucket}: {response}"
            );
        }

        /// A store on `bucket` under `prefix`, as one node would open it.
        pub fn store(&self, bucket: &str, prefix: &str) -> S3Store {
            S3Store::with_object_store(Arc::new(self.client(bucket)), prefix).expect("store")
        }

        /// A plain S3 client on `bucket`, to look behind a store's back.
        pub fn client(&self, bucket: &str) -> AmazonS3 {
            AmazonS3Builder::new()
                .with_endpoint(&self.endpoint)
                .with_allow_http(true)
                .with_region("us-east-1")
                .with_bucket_name(bucket)
                .with_access_key_id("test")
                .with_secret_access_key("test")
                .with_conditional_put(S3ConditionalPut::ETagMatch)
                .build()
                .expect("S3 client")
        }
    }

    impl Drop for MotoServer {
        fn drop(&mut self) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

//! Redis backends, for pods without disks: [`RedisStore`] (snapshots) and [`RedisLog`] (update
//! logs). Durability is Redis' own (AOF or RDB, as the operator configured it).
//!
//! # Several nodes, one document
//! Saving a snapshot is read-merge-write under an optimistic compare-and-swap: each snapshot
//! hash carries a random version token; a Lua script writes the merged snapshot only if the token
//! is still the one that was read, and the save starts over (re-read, re-merge) when it is not.
//! A Lua compare-and-swap rather than `WATCH`/`MULTI` because `WATCH` needs a dedicated
//! connection, while scripts run on the shared multiplexed one; random tokens rather than a
//! counter so that a delete-and-recreate can never bring an old version back (ABA). The loop
//! itself, and what happens to a damaged stored snapshot, are the ones every shared backend
//! runs (the crate's `cas` module); this module only supplies the reads and writes.
//!
//! Key names are described in [`keys`].

pub mod keys;
mod log;

use std::sync::LazyLock;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use chorus_protocol::DocName;
use redis::Script;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};

use crate::cas::{self, KeptAside};
use crate::naming::{self, Stem};
use crate::{SnapshotStore, StoreError, snapshot_file};

pub use keys::Keys;
pub use log::RedisLog;

/// How long a command may take before the connection is considered broken.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long connecting may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Reconnection attempts per failed command; a down Redis then fails the call quickly instead of
/// stalling a room for minutes.
const CONNECT_RETRIES: usize = 2;

/// Keys scanned per `SCAN` round trip when listing.
const SCAN_COUNT: usize = 1000;

/// Writes the snapshot if its version token is still the one read.
/// KEYS: snapshot. ARGV: expected token ('' = absent), framed snapshot, new token.
const CAS_SAVE: &str = r"
local v = redis.call('HGET', KEYS[1], 'v')
if v == false then v = '' end
if v ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'd', ARGV[2], 'v', ARGV[3])
return 1
";

/// Moves a damaged snapshot aside if its version token is still the one read; never replaces an
/// existing key. KEYS: snapshot, aside key. ARGV: expected token. Returns 1 (moved), 0 (changed
/// meanwhile), -1 (aside key taken).
const CAS_MOVE_ASIDE: &str = r"
local v = redis.call('HGET', KEYS[1], 'v')
if v == false then v = '' end
if v ~= ARGV[1] then return 0 end
if redis.call('RENAMENX', KEYS[1], KEYS[2]) == 0 then return -1 end
return 1
";

static CAS_SAVE_SCRIPT: LazyLock<Script> = LazyLock::new(|| Script::new(CAS_SAVE));
static CAS_MOVE_ASIDE_SCRIPT: LazyLock<Script> = LazyLock::new(|| Script::new(CAS_MOVE_ASIDE));

/// A connection shared by the Redis backends, with the key prefix they use.
#[derive(Clone)]
pub struct RedisConnection {
    conn: ConnectionManager,
    keys: Keys,
}

impl std::fmt::Debug for RedisConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisConnection")
            .field("keys", &self.keys)
            .finish_non_exhaustive()
    }
}

impl RedisConnection {
    /// Connects to `url` (`redis://[user:password@]host:port[/db]`; `rediss://` is refused: the
    /// crate is built without TLS) and uses keys under `prefix`.
    ///
    /// # Errors
    /// [`StoreError::Backend`] if the URL is invalid or Redis cannot be reached; the message
    /// shows the URL without its password.
    pub async fn connect(url: &str, prefix: impl Into<String>) -> Result<Self, StoreError> {
        let client = redis::Client::open(url)
            .map_err(|e| StoreError::backend("parsing Redis URL", redact_url(url), e))?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(CONNECT_TIMEOUT))
            .set_response_timeout(Some(RESPONSE_TIMEOUT))
            .set_number_of_retries(CONNECT_RETRIES);
        let conn = ConnectionManager::new_with_config(client, config)
            .await
            .map_err(|e| StoreError::backend("connecting to Redis at", redact_url(url), e))?;
        Ok(Self::with_manager(conn, prefix))
    }

    /// Uses an existing connection (the server's relay connection, say).
    pub fn with_manager(conn: ConnectionManager, prefix: impl Into<String>) -> Self {
        Self {
            conn,
            keys: Keys::new(prefix),
        }
    }

    /// Key names under this connection's prefix.
    pub fn keys(&self) -> &Keys {
        &self.keys
    }

    /// The underlying connection (a cheap clone; all clones share one multiplexed socket).
    pub fn manager(&self) -> ConnectionManager {
        self.conn.clone()
    }

    /// Every key matching `pattern`.
    async fn scan(&self, pattern: &str) -> Result<Vec<String>, StoreError> {
        let mut conn = self.manager();
        let mut cursor: u64 = 0;
        let mut found = Vec::new();
        loop {
            let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(pattern)
                .arg("COUNT")
                .arg(SCAN_COUNT)
                .query_async(&mut conn)
                .await
                .map_err(|e| StoreError::backend("listing keys", pattern, e))?;
            found.extend(keys);
            if next == 0 {
                return Ok(found);
            }
            cursor = next;
        }
    }

    /// The documents whose keys end in `suffix`; hashed stems are resolved by `name_of`.
    async fn list_docs<F, Fut>(&self, suffix: &str, name_of: F) -> Result<Vec<DocName>, StoreError>
    where
        F: Fn(String) -> Fut,
        Fut: std::future::Future<Output = Result<Option<String>, StoreError>>,
    {
        let mut names = Vec::new();
        for key in self.scan(&self.keys.pattern(suffix)).await? {
            match self.keys.parse(&key, suffix) {
                Stem::Name(name) => names.push(name),
                Stem::Foreign => {}
                Stem::Hashed => match name_of(key.clone()).await? {
                    Some(name) => match DocName::parse(name) {
                        Ok(name) => names.push(name),
                        Err(e) => tracing::warn!(%key, reason = %e, "skipping unreadable key"),
                    },
                    None => tracing::warn!(%key, "skipping unreadable key"),
                },
            }
        }
        names.sort();
        names.dedup();
        Ok(names)
    }
}

/// Shows where a Redis URL points without the password it may contain.
pub(crate) fn redact_url(url: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => match rest.rsplit_once('@') {
            Some((_, host)) => format!("{scheme}://***@{host}"),
            None => url.to_owned(),
        },
        None => "<invalid URL>".to_owned(),
    }
}

/// A fresh random version token.
fn token() -> String {
    format!("{:016x}{:016x}", fastrand::u64(..), fastrand::u64(..))
}

/// Snapshots in Redis hashes; see the module docs.
#[derive(Debug, Clone)]
pub struct RedisStore {
    redis: RedisConnection,
}

impl RedisStore {
    /// Connects to `url` and keeps snapshots under `prefix`.
    ///
    /// # Errors
    /// See [`RedisConnection::connect`].
    pub async fn connect(url: &str, prefix: impl Into<String>) -> Result<Self, StoreError> {
        Ok(Self::new(RedisConnection::connect(url, prefix).await?))
    }

    /// Uses an existing connection.
    pub fn new(redis: RedisConnection) -> Self {
        Self { redis }
    }

    /// The key that holds the snapshot of `doc`.
    pub fn key_of(&self, doc: &DocName) -> String {
        self.redis.keys.of(doc, keys::SNAP)
    }

    fn slot(&self, doc: &DocName) -> RedisSlot<'_> {
        RedisSlot {
            redis: &self.redis,
            key: self.key_of(doc),
        }
    }
}

/// The snapshot hash of one document, for the compare-and-swap save ([`cas`]).
struct RedisSlot<'a> {
    redis: &'a RedisConnection,
    key: String,
}

#[async_trait]
impl cas::Slot for RedisSlot<'_> {
    /// The random token in the hash's `v` field.
    type Version = String;

    fn location(&self) -> String {
        location(&self.key)
    }

    async fn read(&self) -> Result<Option<(Bytes, String)>, StoreError> {
        let (data, version): (Option<Vec<u8>>, Option<String>) = redis::cmd("HMGET")
            .arg(&self.key)
            .arg("d")
            .arg("v")
            .query_async(&mut self.redis.manager())
            .await
            .map_err(|e| StoreError::backend("reading snapshot", &self.key, e))?;
        if data.is_none() && version.is_none() {
            return Ok(None);
        }
        // A hash without its data field is damaged like a truncated frame.
        let frame = data.map(Bytes::from).unwrap_or_default();
        Ok(Some((frame, version.unwrap_or_default())))
    }

    async fn write(&self, frame: Bytes, expected: Option<&String>) -> Result<bool, StoreError> {
        let written: i64 = CAS_SAVE_SCRIPT
            .key(&self.key)
            .arg(expected.map_or("", String::as_str))
            .arg(frame.as_ref())
            .arg(token())
            .invoke_async(&mut self.redis.manager())
            .await
            .map_err(|e| StoreError::backend("saving snapshot", &self.key, e))?;
        Ok(written == 1)
    }

    /// Renames the hash aside: the next write then creates a new one.
    async fn keep_aside(
        &self,
        _stored: Bytes,
        version: String,
    ) -> Result<KeptAside<String>, StoreError> {
        let millis = naming::unix_millis();
        for attempt in 0..100 {
            let aside = naming::corrupt_name(&self.key, millis, attempt);
            let moved: i64 = CAS_MOVE_ASIDE_SCRIPT
                .key(&self.key)
                .key(&aside)
                .arg(&version)
                .invoke_async(&mut self.redis.manager())
                .await
                .map_err(|e| StoreError::backend("keeping damaged snapshot aside", &self.key, e))?;
            match moved {
                1 => {
                    return Ok(KeptAside::At {
                        at: location(&aside),
                        expect: None,
                    });
                }
                0 => return Ok(KeptAside::Changed),
                _ => continue,
            }
        }
        Err(StoreError::backend(
            "keeping damaged snapshot aside",
            &self.key,
            std::io::Error::other("every aside key name is taken"),
        ))
    }
}

fn location(key: &str) -> String {
    format!("Redis key {key}")
}

#[async_trait]
impl SnapshotStore for RedisStore {
    async fn load(&self, doc: &DocName) -> Result<Option<Bytes>, StoreError> {
        cas::load(&self.slot(doc), doc).await
    }

    async fn save(&self, doc: &DocName, snapshot: Bytes) -> Result<(), StoreError> {
        cas::save(&self.slot(doc), doc, &snapshot).await
    }

    async fn delete(&self, doc: &DocName) -> Result<(), StoreError> {
        let key = self.key_of(doc);
        let _: i64 = redis::cmd("DEL")
            .arg(&key)
            .query_async(&mut self.redis.manager())
            .await
            .map_err(|e| StoreError::backend("deleting snapshot", &key, e))?;
        Ok(())
    }

    async fn list(&self) -> Result<Vec<DocName>, StoreError> {
        self.redis
            .list_docs(keys::SNAP, |key| async move {
                let frame: Option<Vec<u8>> = redis::cmd("HGET")
                    .arg(&key)
                    .arg("d")
                    .query_async(&mut self.redis.manager())
                    .await
                    .map_err(|e| StoreError::backend("reading snapshot", &key, e))?;
                Ok(frame.and_then(|f| snapshot_file::decode_name(&f).ok()))
            })
            .await
    }
}

//! [`RedisLog`]: one Redis stream per document.
//!
//! A Lua script appends a batch atomically: it takes the next sequence numbers from the
//! document's meta hash and adds one stream entry per update with the id `<seq>-0`, so ids are
//! the sequence numbers and truncation is a single `XTRIM … MINID`. Each entry carries the
//! CRC-32 of its update, checked on read: Redis does not corrupt data, but a bad restore or a
//! stray writer could, and a damaged record must not reach yrs. Damaged entries are reported,
//! the stream is copied aside as it was (`…:log.corrupt-<ms>`), and they are removed from the
//! live stream.

use std::sync::LazyLock;

use async_trait::async_trait;
use bytes::Bytes;
use chorus_protocol::DocName;
use redis::{Script, Value};

use super::{RedisConnection, keys};
use crate::{StoreError, UpdateLog, naming};

/// Entries fetched per `XRANGE` round trip.
const READ_PAGE: usize = 1000;

/// Appends a batch. KEYS: stream, meta. ARGV: document name, then (update, crc) pairs.
/// Returns the last sequence number.
const APPEND: &str = r"
local seq = tonumber(redis.call('HGET', KEYS[2], 'n') or '0')
for i = 2, #ARGV, 2 do
  seq = seq + 1
  redis.call('XADD', KEYS[1], string.format('%d-0', seq), 'u', ARGV[i], 'c', ARGV[i + 1])
end
redis.call('HSET', KEYS[2], 'n', string.format('%d', seq), 'name', ARGV[1])
return seq
";

static APPEND_SCRIPT: LazyLock<Script> = LazyLock::new(|| Script::new(APPEND));

/// Update logs in Redis streams; see the module docs.
#[derive(Debug, Clone)]
pub struct RedisLog {
    redis: RedisConnection,
}

/// One entry as stored.
struct Entry {
    id: String,
    seq: Option<u64>,
    update: Option<Vec<u8>>,
    crc: Option<Vec<u8>>,
}

impl Entry {
    /// The record, if the entry is intact.
    fn record(&self) -> Option<(u64, Bytes)> {
        let seq = self.seq?;
        let update = self.update.as_ref()?;
        let crc = u32::from_le_bytes(self.crc.as_deref()?.try_into().ok()?);
        (crc32fast::hash(update) == crc).then(|| (seq, Bytes::copy_from_slice(update)))
    }
}

impl RedisLog {
    /// Connects to `url` and keeps logs under `prefix`.
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

    /// The stream that holds the log of `doc`.
    pub fn key_of(&self, doc: &DocName) -> String {
        self.redis.keys.of(doc, keys::LOG)
    }

    fn meta_key_of(&self, doc: &DocName) -> String {
        self.redis.keys.of(doc, keys::META)
    }

    async fn entries(&self, key: &str) -> Result<Vec<Entry>, StoreError> {
        let mut entries = Vec::new();
        let mut start = "-".to_owned();
        loop {
            let page: Value = redis::cmd("XRANGE")
                .arg(key)
                .arg(&start)
                .arg("+")
                .arg("COUNT")
                .arg(READ_PAGE)
                .query_async(&mut self.redis.manager())
                .await
                .map_err(|e| StoreError::backend("reading update log", key, e))?;
            let page = parse_entries(page).ok_or_else(|| StoreError::Corrupt {
                location: format!("Redis key {key}"),
                reason: "XRANGE returned an unexpected shape".to_owned(),
            })?;
            let full = page.len() == READ_PAGE;
            if let Some(last) = page.last() {
                start = format!("({}", last.id);
            }
            entries.extend(page);
            if !full {
                return Ok(entries);
            }
        }
    }

    /// Copies the stream aside, then removes the damaged entries from it.
    async fn quarantine(&self, key: &str, damaged: &[String]) -> Result<(), StoreError> {
        let millis = naming::unix_millis();
        let mut kept_at = None;
        for attempt in 0..100 {
            let aside = naming::corrupt_name(key, millis, attempt);
            let copied: i64 = redis::cmd("COPY")
                .arg(key)
                .arg(&aside)
                .query_async(&mut self.redis.manager())
                .await
                .map_err(|e| StoreError::backend("keeping damaged update log aside", key, e))?;
            if copied == 1 {
                kept_at = Some(aside);
                break;
            }
        }
        let Some(kept_at) = kept_at else {
            return Err(StoreError::backend(
                "keeping damaged update log aside",
                key,
                std::io::Error::other("every aside key name is taken"),
            ));
        };
        let _: i64 = redis::cmd("XDEL")
            .arg(key)
            .arg(damaged)
            .query_async(&mut self.redis.manager())
            .await
            .map_err(|e| StoreError::backend("removing damaged update log entries", key, e))?;
        tracing::warn!(
            %key,
            %kept_at,
            skipped_entries = ?damaged,
            "update log has damaged entries: skipped them and kept a copy of the stream aside"
        );
        Ok(())
    }
}

/// Reads an `XRANGE` reply: `[[id, [field, value, …]], …]`.
fn parse_entries(reply: Value) -> Option<Vec<Entry>> {
    let Value::Array(items) = reply else {
        return None;
    };
    items
        .into_iter()
        .map(|item| {
            let Value::Array(mut pair) = item else {
                return None;
            };
            if pair.len() != 2 {
                return None;
            }
            let fields = pair.pop()?;
            let id = match pair.pop()? {
                Value::BulkString(b) => String::from_utf8(b).ok()?,
                Value::SimpleString(s) => s,
                _ => return None,
            };
            let fields = match fields {
                Value::Array(f) => f,
                Value::Map(m) => m.into_iter().flat_map(|(k, v)| [k, v]).collect(),
                _ => return None,
            };
            let mut entry = Entry {
                seq: id
                    .strip_suffix("-0")
                    .and_then(|s| s.parse().ok())
                    .filter(|&s| s > 0),
                id,
                update: None,
                crc: None,
            };
            let mut fields = fields.into_iter();
            while let (Some(name), Some(value)) = (fields.next(), fields.next()) {
                let (Value::BulkString(name), Value::BulkString(value)) = (name, value) else {
                    continue;
                };
                match name.as_slice() {
                    b"u" => entry.update = Some(value),
                    b"c" => entry.crc = Some(value),
                    _ => {}
                }
            }
            Some(entry)
        })
        .collect()
}

#[async_trait]
impl UpdateLog for RedisLog {
    async fn append(&self, doc: &DocName, updates: &[Bytes]) -> Result<u64, StoreError> {
        let key = self.key_of(doc);
        let mut invocation = APPEND_SCRIPT.key(&key);
        invocation.key(self.meta_key_of(doc)).arg(doc.as_str());
        for update in updates {
            invocation
                .arg(update.as_ref())
                .arg(crc32fast::hash(update).to_le_bytes().as_slice());
        }
        let seq: u64 = invocation
            .invoke_async(&mut self.redis.manager())
            .await
            .map_err(|e| StoreError::backend("appending to update log", &key, e))?;
        Ok(seq)
    }

    async fn read(&self, doc: &DocName) -> Result<Vec<(u64, Bytes)>, StoreError> {
        let key = self.key_of(doc);
        let entries = self.entries(&key).await?;
        let mut records = Vec::with_capacity(entries.len());
        let mut damaged = Vec::new();
        for entry in entries {
            match entry.record() {
                Some(record) => records.push(record),
                None => damaged.push(entry.id),
            }
        }
        if !damaged.is_empty() {
            self.quarantine(&key, &damaged).await?;
        }
        Ok(records)
    }

    async fn truncate(&self, doc: &DocName, through: u64) -> Result<(), StoreError> {
        let key = self.key_of(doc);
        let _: i64 = redis::cmd("XTRIM")
            .arg(&key)
            .arg("MINID")
            .arg(format!("{}-0", through.saturating_add(1)))
            .query_async(&mut self.redis.manager())
            .await
            .map_err(|e| StoreError::backend("truncating update log", &key, e))?;
        Ok(())
    }

    async fn delete(&self, doc: &DocName) -> Result<(), StoreError> {
        let key = self.key_of(doc);
        let _: i64 = redis::cmd("DEL")
            .arg(&key)
            .arg(self.meta_key_of(doc))
            .query_async(&mut self.redis.manager())
            .await
            .map_err(|e| StoreError::backend("deleting update log", &key, e))?;
        Ok(())
    }

    async fn list(&self) -> Result<Vec<DocName>, StoreError> {
        self.redis
            .list_docs(keys::META, |key| async move {
                redis::cmd("HGET")
                    .arg(&key)
                    .arg("name")
                    .query_async::<Option<String>>(&mut self.redis.manager())
                    .await
                    .map_err(|e| StoreError::backend("reading update log", &key, e))
            })
            .await
    }
}

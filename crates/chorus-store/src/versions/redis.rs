//! [`RedisVersions`]: version history in Redis, beside the document's other keys (see
//! [`keys`](crate::redis::keys)). A version is written to both of its hashes in one
//! `MULTI`; activity is `HINCRBY` on counters, so nodes recording the same minute add up
//! inside Redis.

use async_trait::async_trait;
use chorus_protocol::DocName;
use redis::AsyncCommands;

use super::format::{decode_version, encode_version};
use super::{ActivityRecord, Version, VersionId, VersionMeta, VersionStore, merge_activity};
use crate::StoreError;
use crate::redis::RedisConnection;
use crate::redis::keys::{ACTIVITY, VERSION_META, VERSIONS};

/// Versions in Redis hashes.
#[derive(Debug, Clone)]
pub struct RedisVersions {
    redis: RedisConnection,
}

impl RedisVersions {
    /// Versions over an open connection (and its key prefix).
    pub fn new(redis: RedisConnection) -> Self {
        Self { redis }
    }

    fn key(&self, doc: &DocName, suffix: &str) -> String {
        self.redis.keys().of(doc, suffix)
    }
}

fn backend(action: &'static str, key: &str) -> impl FnOnce(redis::RedisError) -> StoreError {
    move |e| StoreError::backend(action, key, e)
}

#[async_trait]
impl VersionStore for RedisVersions {
    async fn put(&self, doc: &DocName, version: &Version) -> Result<(), StoreError> {
        let (meta_key, data_key) = (self.key(doc, VERSION_META), self.key(doc, VERSIONS));
        // Plain strings and numbers: serialising cannot fail.
        let meta = serde_json::to_string(&version.meta).unwrap_or_default();
        let id = version.meta.id.as_str();
        let () = redis::pipe()
            .atomic()
            .hset(&data_key, id, encode_version(version))
            .ignore()
            .hset(&meta_key, id, meta)
            .ignore()
            .query_async(&mut self.redis.manager())
            .await
            .map_err(backend("writing version", &data_key))?;
        Ok(())
    }

    async fn list(&self, doc: &DocName) -> Result<Vec<VersionMeta>, StoreError> {
        let key = self.key(doc, VERSION_META);
        let all: Vec<(String, String)> = self
            .redis
            .manager()
            .hgetall(&key)
            .await
            .map_err(backend("listing versions", &key))?;
        let mut metas = Vec::with_capacity(all.len());
        for (id, meta) in all {
            match serde_json::from_str::<VersionMeta>(&meta) {
                Ok(meta) => metas.push(meta),
                Err(error) => tracing::warn!(%key, %id, %error, "skipping unreadable version"),
            }
        }
        metas.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(metas)
    }

    async fn get(&self, doc: &DocName, id: &VersionId) -> Result<Option<Version>, StoreError> {
        let key = self.key(doc, VERSIONS);
        let bytes: Option<Vec<u8>> = self
            .redis
            .manager()
            .hget(&key, id.as_str())
            .await
            .map_err(backend("reading version", &key))?;
        bytes
            .map(|bytes| decode_version(&bytes, &format!("{key} {id}")))
            .transpose()
    }

    async fn remove(&self, doc: &DocName, id: &VersionId) -> Result<bool, StoreError> {
        let (meta_key, data_key) = (self.key(doc, VERSION_META), self.key(doc, VERSIONS));
        let (removed, _): (i64, i64) = redis::pipe()
            .atomic()
            .hdel(&meta_key, id.as_str())
            .hdel(&data_key, id.as_str())
            .query_async(&mut self.redis.manager())
            .await
            .map_err(backend("removing version", &meta_key))?;
        Ok(removed > 0)
    }

    async fn record_activity(
        &self,
        doc: &DocName,
        records: &[ActivityRecord],
    ) -> Result<(), StoreError> {
        if records.is_empty() {
            return Ok(());
        }
        let key = self.key(doc, ACTIVITY);
        let mut pipe = redis::pipe();
        for r in records {
            let field = format!("{}|{}", r.minute, r.identity);
            pipe.hincr(&key, format!("{field}|n"), r.updates).ignore();
            pipe.hincr(&key, format!("{field}|b"), r.bytes).ignore();
        }
        let () = pipe
            .query_async(&mut self.redis.manager())
            .await
            .map_err(backend("recording activity", &key))?;
        Ok(())
    }

    async fn activity(&self, doc: &DocName) -> Result<Vec<ActivityRecord>, StoreError> {
        let key = self.key(doc, ACTIVITY);
        let all: Vec<(String, u64)> = self
            .redis
            .manager()
            .hgetall(&key)
            .await
            .map_err(backend("reading activity", &key))?;
        Ok(merge_activity(all.into_iter().filter_map(|(field, n)| {
            let (minute, rest) = field.split_once('|')?;
            let (identity, what) = rest.rsplit_once('|')?;
            let minute = minute.parse().ok()?;
            let (updates, bytes) = match what {
                "n" => (n, 0),
                "b" => (0, n),
                _ => return None,
            };
            Some(ActivityRecord {
                minute,
                identity: identity.to_owned(),
                updates,
                bytes,
            })
        })))
    }

    async fn prune_activity(&self, doc: &DocName, minute: u64) -> Result<usize, StoreError> {
        let key = self.key(doc, ACTIVITY);
        let fields: Vec<String> = self
            .redis
            .manager()
            .hkeys(&key)
            .await
            .map_err(backend("pruning activity", &key))?;
        let old: Vec<&String> = fields
            .iter()
            .filter(|f| {
                f.split_once('|')
                    .and_then(|(m, _)| m.parse::<u64>().ok())
                    .is_some_and(|m| m < minute)
            })
            .collect();
        if old.is_empty() {
            return Ok(0);
        }
        let _: i64 = self
            .redis
            .manager()
            .hdel(&key, &old)
            .await
            .map_err(backend("pruning activity", &key))?;
        // Two counters per record.
        Ok(old.len() / 2)
    }
}

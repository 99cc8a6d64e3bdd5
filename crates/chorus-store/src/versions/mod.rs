//! Version history: named, immutable points in a document's life ([`Version`]) and its activity
//! timeline ([`ActivityRecord`]), kept by every backend behind one small trait,
//! [`VersionStore`], beside [`SnapshotStore`](crate::SnapshotStore).
//!
//! A version holds the whole state (a Yjs v1 update) and its state vector, so it can be shown,
//! compared or restored without the update log. The activity timeline is compact by
//! construction: one record per (minute, identity) with the number of updates and their bytes;
//! records written for the same minute and identity (by several nodes, or by one node in
//! several flushes) add up when read.
//!
//! # Layout
//! - this file: the types, the trait, [`Retention`] and [`prune`].
//! - `format`: the checksummed byte format of one version (files, Redis values, S3 objects).
//! - `memory`, `redis`: two backends; the files one is [`crate::fs::FsVersions`]; `s3` with the
//!   cargo feature.

pub(crate) mod format;
mod memory;
mod redis;
#[cfg(feature = "s3")]
mod s3;

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use chorus_protocol::DocName;
use serde::{Deserialize, Serialize};

use crate::StoreError;

pub use crate::fs::FsVersions;
pub use format::{decode_version, encode_version};
pub use memory::MemoryVersions;
pub use redis::RedisVersions;
#[cfg(feature = "s3")]
pub use s3::S3Versions;

/// Longest version id accepted from outside (the ids this crate makes are 22 bytes).
const MAX_ID_LEN: usize = 40;

/// A version's id: `<unix ms, 13 digits>-<8 hex digits>`, so ids sort by creation time and two
/// nodes creating versions in the same millisecond do not collide. Ids read from requests go
/// through [`VersionId::parse`], which admits only ASCII digits, letters and `-`: an id becomes
/// a file name or a key, never a path.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct VersionId(String);

/// Why a string is not a [`VersionId`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a version id: expected 1 to {MAX_ID_LEN} ASCII letters, digits or '-'")]
pub struct BadVersionId;

impl VersionId {
    /// A fresh id for a version created at `created_ms`.
    pub fn new(created_ms: u64) -> Self {
        Self(format!("{created_ms:013}-{:08x}", fastrand::u32(..)))
    }

    /// Checks an id that came from a request or the command line.
    ///
    /// # Errors
    /// [`BadVersionId`] for anything that could not be an id (empty, too long, other bytes).
    pub fn parse(id: impl Into<String>) -> Result<Self, BadVersionId> {
        let id = id.into();
        let fits = !id.is_empty()
            && id.len() <= MAX_ID_LEN
            && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
        if fits {
            Ok(Self(id))
        } else {
            Err(BadVersionId)
        }
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for VersionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Why a version was made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum VersionKind {
    /// On the `--version-interval` while the document was edited.
    Auto,
    /// Asked for (the HTTP API or the CLI).
    Requested,
    /// Recorded right after a restore.
    Restored,
}

/// What describes a version, without its state: what a listing shows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VersionMeta {
    /// Unique within the document.
    pub id: VersionId,
    /// The document (kept so a stored version names its document even under a hashed key).
    pub doc: String,
    /// When it was made, milliseconds since the Unix epoch.
    pub created_ms: u64,
    /// Why it was made.
    pub kind: VersionKind,
    /// A name a person gave it, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// For [`VersionKind::Restored`]: the version that was restored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restored_from: Option<VersionId>,
    /// Identities that edited the document since the previous version, sorted.
    pub authors: Vec<String>,
    /// Size of the state, bytes.
    pub state_bytes: u64,
}

/// One version: its description, the whole document as a Yjs v1 update, and its state vector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Version {
    /// What describes it.
    pub meta: VersionMeta,
    /// The whole document as a Yjs v1 update (`Y.applyUpdate` reads it).
    pub state: Bytes,
    /// Its state vector (v1 encoding).
    pub state_vector: Bytes,
}

/// Edits by one identity in one minute.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActivityRecord {
    /// The minute, as minutes since the Unix epoch.
    pub minute: u64,
    /// Who: a token's `sub`, what the auth callback or the `authenticate` hook named, or
    /// `anonymous`.
    pub identity: String,
    /// Accepted updates.
    pub updates: u64,
    /// Their size, bytes.
    pub bytes: u64,
}

/// Adds records with the same minute and identity together, sorted by minute then identity.
pub fn merge_activity(records: impl IntoIterator<Item = ActivityRecord>) -> Vec<ActivityRecord> {
    let mut merged: BTreeMap<(u64, String), (u64, u64)> = BTreeMap::new();
    for record in records {
        let entry = merged.entry((record.minute, record.identity)).or_default();
        entry.0 = entry.0.saturating_add(record.updates);
        entry.1 = entry.1.saturating_add(record.bytes);
    }
    merged
        .into_iter()
        .map(|((minute, identity), (updates, bytes))| ActivityRecord {
            minute,
            identity,
            updates,
            bytes,
        })
        .collect()
}

/// Where versions and activity are kept: one per server, shared by its rooms.
///
/// Versions are immutable: [`VersionStore::put`] never replaces one (ids are unique), so several
/// nodes writing versions of one document need no coordination.
#[async_trait]
pub trait VersionStore: Send + Sync + 'static {
    /// Stores a new version.
    ///
    /// # Errors
    /// [`StoreError::Io`] or [`StoreError::Backend`] if the backend fails; nothing is then
    /// listed under the id.
    async fn put(&self, doc: &DocName, version: &Version) -> Result<(), StoreError>;

    /// Every version of `doc`, oldest first.
    ///
    /// # Errors
    /// The backend's error. A damaged stored version is skipped with a warning, not an error.
    async fn list(&self, doc: &DocName) -> Result<Vec<VersionMeta>, StoreError>;

    /// One version, or `None` if there is no such id.
    ///
    /// # Errors
    /// The backend's error; [`StoreError::Corrupt`] if the stored bytes fail their checksum.
    async fn get(&self, doc: &DocName, id: &VersionId) -> Result<Option<Version>, StoreError>;

    /// Removes one version; false if there was none.
    ///
    /// # Errors
    /// The backend's error.
    async fn remove(&self, doc: &DocName, id: &VersionId) -> Result<bool, StoreError>;

    /// Adds activity records; they add up with what is stored for the same minute and identity.
    ///
    /// # Errors
    /// The backend's error.
    async fn record_activity(
        &self,
        doc: &DocName,
        records: &[ActivityRecord],
    ) -> Result<(), StoreError>;

    /// The activity of `doc`, merged per minute and identity, oldest first.
    ///
    /// # Errors
    /// The backend's error.
    async fn activity(&self, doc: &DocName) -> Result<Vec<ActivityRecord>, StoreError>;

    /// Drops the activity of minutes before `minute`; returns how many (minute, identity)
    /// records went.
    ///
    /// # Errors
    /// The backend's error.
    async fn prune_activity(&self, doc: &DocName, minute: u64) -> Result<usize, StoreError>;
}

/// How many versions to keep and for how long. The newest version is always kept, so a
/// document that has versions keeps at least one.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Retention {
    /// Keep at most this many (the newest).
    pub max_count: Option<usize>,
    /// Drop versions older than this.
    pub max_age: Option<Duration>,
}

/// Why a string is not a [`Retention`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "expected `none`, a count (`50`), an age (`30d`) or both (`50,30d`), got {input:?}: {reason}"
)]
pub struct ParseRetentionError {
    input: String,
    reason: String,
}

impl FromStr for Retention {
    type Err = ParseRetentionError;

    /// `none`, `50`, `30d`, `50,30d` (either order).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let fail = |reason: String| ParseRetentionError {
            input: s.to_owned(),
            reason,
        };
        let mut retention = Self::default();
        if s.trim().eq_ignore_ascii_case("none") {
            return Ok(retention);
        }
        for part in s.split(',').map(str::trim) {
            if let Ok(count) = part.parse::<usize>() {
                if count == 0 {
                    return Err(fail("a count must be at least 1".into()));
                }
                if retention.max_count.replace(count).is_some() {
                    return Err(fail("two counts".into()));
                }
            } else {
                let age = humantime::parse_duration(part).map_err(|e| fail(e.to_string()))?;
                if age.is_zero() {
                    return Err(fail("an age must be above zero".into()));
                }
                if retention.max_age.replace(age).is_some() {
                    return Err(fail("two ages".into()));
                }
            }
        }
        Ok(retention)
    }
}

impl fmt::Display for Retention {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.max_count, self.max_age) {
            (None, None) => f.write_str("none"),
            (Some(n), None) => write!(f, "{n}"),
            (None, Some(age)) => write!(f, "{}", humantime::format_duration(age)),
            (Some(n), Some(age)) => write!(f, "{n},{}", humantime::format_duration(age)),
        }
    }
}

impl Retention {
    /// Which of `versions` (oldest first) this policy drops at `now_ms`: beyond the count, or
    /// older than the age; never the newest.
    pub fn expired<'a>(&self, versions: &'a [VersionMeta], now_ms: u64) -> Vec<&'a VersionMeta> {
        let Some((_newest, older)) = versions.split_last() else {
            return Vec::new();
        };
        let over_count = self
            .max_count
            .map_or(0, |max| versions.len().saturating_sub(max));
        let cutoff = self
            .max_age
            .map(|age| now_ms.saturating_sub(u64::try_from(age.as_millis()).unwrap_or(u64::MAX)));
        older
            .iter()
            .enumerate()
            .filter(|(i, v)| *i < over_count || cutoff.is_some_and(|cut| v.created_ms < cut))
            .map(|(_, v)| v)
            .collect()
    }
}

/// What [`prune`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Pruned {
    /// The versions removed, oldest first.
    pub removed: Vec<VersionMeta>,
    /// Versions left.
    pub kept: usize,
    /// Activity records (minute, identity) removed: those older than the age limit.
    pub activity_removed: usize,
}

/// Applies `retention` to `doc` at `now_ms` and reports what went. Activity older than the age
/// limit goes too (without an age limit, activity is kept: it is small, one record per minute
/// and identity).
///
/// # Errors
/// The backend's error; what was removed before it stays removed.
pub async fn prune(
    store: &dyn VersionStore,
    doc: &DocName,
    retention: Retention,
    now_ms: u64,
) -> Result<Pruned, StoreError> {
    let versions = store.list(doc).await?;
    let expired: Vec<VersionMeta> = retention
        .expired(&versions, now_ms)
        .into_iter()
        .cloned()
        .collect();
    for version in &expired {
        store.remove(doc, &version.id).await?;
    }
    let mut activity_removed = 0;
    if let Some(age) = retention.max_age {
        let cut_ms = now_ms.saturating_sub(u64::try_from(age.as_millis()).unwrap_or(u64::MAX));
        activity_removed = store.prune_activity(doc, cut_ms / 60_000).await?;
    }
    Ok(Pruned {
        kept: versions.len() - expired.len(),
        removed: expired,
        activity_removed,
    })
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    u64::try_from(crate::naming::unix_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests;

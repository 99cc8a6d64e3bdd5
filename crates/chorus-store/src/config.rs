//! Choosing backends: [`StoreConfig`] and [`open`], the one call a server makes at startup.
//!
//! ```no_run
//! # async fn demo() -> Result<(), chorus_store::StoreError> {
//! use chorus_store::{FsyncPolicy, StoreConfig};
//! let (snapshots, log) = chorus_store::open(&StoreConfig::fs("/var/lib/chorus", FsyncPolicy::Always)).await?;
//! # Ok(()) }
//! ```

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use crate::redis::{RedisConnection, redact_url};
use crate::{
    FsLog, FsStore, FsVersions, MemoryLog, MemoryStore, MemoryVersions, RedisLog, RedisStore,
    RedisVersions, SnapshotStore, StoreError, UpdateLog, VersionStore,
};

/// When an append to a file log is durable.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum FsyncPolicy {
    /// Every append is durable before it returns: nothing acknowledged is ever lost. Appends
    /// to all documents that arrive together share one fsync of a write-ahead log (group
    /// commit across documents); the document files are written and fsynced about once a
    /// second, from memory.
    #[default]
    Always,
    /// Appends return once written to the write-ahead log; a checkpoint at least this often
    /// writes and fsyncs the document files (like Redis' `appendfsync everysec`). A process
    /// crash loses nothing, a power cut up to one interval.
    Interval(Duration),
}

/// Why a string is not an [`FsyncPolicy`].
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ParseFsyncPolicyError {
    /// An interval of zero (checkpoints would spin).
    #[error("the fsync interval must be above zero")]
    Zero,
    /// Neither `always` nor an interval.
    #[error("expected `always` or an interval like `1s`, got {input:?}: {reason}")]
    Invalid {
        /// What was given.
        input: String,
        /// Why it is not an interval.
        reason: humantime::DurationError,
    },
}

impl FromStr for FsyncPolicy {
    type Err = ParseFsyncPolicyError;

    /// `always`, or an interval such as `1s` or `200ms`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.eq_ignore_ascii_case("always") {
            return Ok(Self::Always);
        }
        match humantime::parse_duration(s) {
            Ok(every) if every.is_zero() => Err(ParseFsyncPolicyError::Zero),
            Ok(every) => Ok(Self::Interval(every)),
            Err(reason) => Err(ParseFsyncPolicyError::Invalid {
                input: s.to_owned(),
                reason,
            }),
        }
    }
}

impl fmt::Display for FsyncPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Always => f.write_str("always"),
            Self::Interval(every) => write!(f, "{}", humantime::format_duration(*every)),
        }
    }
}

/// Where snapshots go and where update logs go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreConfig {
    /// The snapshot backend.
    pub snapshots: SnapshotBackend,
    /// The update log backend.
    pub log: LogBackend,
}

impl StoreConfig {
    /// Snapshots and logs side by side in one directory: the embedded default.
    pub fn fs(dir: impl Into<PathBuf>, fsync: FsyncPolicy) -> Self {
        let dir = dir.into();
        Self {
            snapshots: SnapshotBackend::Fs { dir: dir.clone() },
            log: LogBackend::Fs { dir, fsync },
        }
    }

    /// Everything in memory: tests and throwaway servers.
    pub fn memory() -> Self {
        Self {
            snapshots: SnapshotBackend::Memory,
            log: LogBackend::Memory,
        }
    }
}

/// A snapshot backend.
#[derive(Clone, PartialEq, Eq)]
pub enum SnapshotBackend {
    /// [`FsStore`] in `dir`.
    Fs {
        /// The data directory.
        dir: PathBuf,
    },
    /// [`MemoryStore`].
    Memory,
    /// [`RedisStore`].
    Redis {
        /// `redis://[user:password@]host:port[/db]`; never logged.
        url: String,
        /// Prepended to every key, e.g. `chorus:`.
        prefix: String,
    },
    /// `S3Store` (needs the cargo feature `s3`).
    S3(S3Config),
}

/// An update log backend.
#[derive(Clone, PartialEq, Eq)]
pub enum LogBackend {
    /// [`FsLog`] in `dir` (usually the snapshot directory).
    Fs {
        /// The data directory.
        dir: PathBuf,
        /// When appends are durable.
        fsync: FsyncPolicy,
    },
    /// [`MemoryLog`].
    Memory,
    /// [`RedisLog`]; durability is Redis' own.
    Redis {
        /// `redis://[user:password@]host:port[/db]`; never logged.
        url: String,
        /// Prepended to every key, e.g. `chorus:`.
        prefix: String,
    },
}

/// Where S3 snapshots go. Credentials are not part of it: they come from the `AWS_*`
/// environment variables (or instance metadata), so they never sit in a config file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Config {
    /// Bucket name.
    pub bucket: String,
    /// Folder inside the bucket, e.g. `chorus` (may be empty).
    pub prefix: String,
    /// Endpoint for S3-compatible stores, e.g. `http://127.0.0.1:9000`; `None` for AWS.
    pub endpoint: Option<String>,
    /// Region; `None` takes `AWS_REGION` or `us-east-1`.
    pub region: Option<String>,
    /// Whether a plain-HTTP endpoint is acceptable (local MinIO or test servers).
    pub allow_http: bool,
}

impl fmt::Debug for SnapshotBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Fs { dir } => f.debug_struct("Fs").field("dir", dir).finish(),
            Self::Memory => f.write_str("Memory"),
            Self::Redis { url, prefix } => debug_redis(f, url, prefix),
            Self::S3(config) => f.debug_tuple("S3").field(config).finish(),
        }
    }
}

impl fmt::Debug for LogBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Fs { dir, fsync } => f
                .debug_struct("Fs")
                .field("dir", dir)
                .field("fsync", fsync)
                .finish(),
            Self::Memory => f.write_str("Memory"),
            Self::Redis { url, prefix } => debug_redis(f, url, prefix),
        }
    }
}

/// A Redis backend, its password hidden.
fn debug_redis(f: &mut fmt::Formatter<'_>, url: &str, prefix: &str) -> fmt::Result {
    f.debug_struct("Redis")
        .field("url", &redact_url(url))
        .field("prefix", &prefix)
        .finish()
}

/// A snapshot store and an update log, ready to share between rooms.
pub type Backends = (Arc<dyn SnapshotStore>, Arc<dyn UpdateLog>);

/// Opens the backends `config` describes. Fails fast: directories are created and probed,
/// Redis is connected (once, shared, when both sides use the same URL and prefix).
///
/// # Errors
/// [`StoreError::Io`] for an unusable directory, [`StoreError::Backend`] for an unreachable
/// Redis, [`StoreError::Config`] for an S3 configuration that cannot work or a binary built
/// without the `s3` feature.
pub async fn open(config: &StoreConfig) -> Result<Backends, StoreError> {
    let mut redis: Option<(String, String, RedisConnection)> = None;
    let mut connect =
        async |url: &String, prefix: &String| -> Result<RedisConnection, StoreError> {
            if let Some((u, p, conn)) = &redis
                && u == url
                && p == prefix
            {
                return Ok(conn.clone());
            }
            let conn = RedisConnection::connect(url, prefix.clone()).await?;
            redis = Some((url.clone(), prefix.clone(), conn.clone()));
            Ok(conn)
        };
    let snapshots: Arc<dyn SnapshotStore> = match &config.snapshots {
        SnapshotBackend::Fs { dir } => Arc::new(FsStore::open(dir)?),
        SnapshotBackend::Memory => Arc::new(MemoryStore::new()),
        SnapshotBackend::Redis { url, prefix } => {
            Arc::new(RedisStore::new(connect(url, prefix).await?))
        }
        SnapshotBackend::S3(s3) => open_s3(s3)?,
    };
    let log: Arc<dyn UpdateLog> = match &config.log {
        LogBackend::Fs { dir, fsync } => Arc::new(FsLog::open(dir, *fsync)?),
        LogBackend::Memory => Arc::new(MemoryLog::new()),
        LogBackend::Redis { url, prefix } => Arc::new(RedisLog::new(connect(url, prefix).await?)),
    };
    Ok((snapshots, log))
}

/// Opens the version store that goes with `config`'s snapshots: versions live where snapshots
/// do (files in the same directory, the same Redis, the same bucket).
///
/// # Errors
/// As [`open`].
pub async fn open_versions(config: &StoreConfig) -> Result<Arc<dyn VersionStore>, StoreError> {
    Ok(match &config.snapshots {
        SnapshotBackend::Fs { dir } => Arc::new(FsVersions::open(dir)?),
        SnapshotBackend::Memory => Arc::new(MemoryVersions::new()),
        SnapshotBackend::Redis { url, prefix } => Arc::new(RedisVersions::new(
            RedisConnection::connect(url, prefix.clone()).await?,
        )),
        SnapshotBackend::S3(s3) => open_s3_versions(s3)?,
    })
}

#[cfg(feature = "s3")]
fn open_s3_versions(config: &S3Config) -> Result<Arc<dyn VersionStore>, StoreError> {
    Ok(Arc::new(crate::versions::S3Versions::new(config)?))
}

#[cfg(not(feature = "s3"))]
fn open_s3_versions(config: &S3Config) -> Result<Arc<dyn VersionStore>, StoreError> {
    // Fails with the same message as opening the snapshots.
    open_s3(config).map(|_| -> Arc<dyn VersionStore> { Arc::new(MemoryVersions::new()) })
}

#[cfg(feature = "s3")]
fn open_s3(config: &S3Config) -> Result<Arc<dyn SnapshotStore>, StoreError> {
    Ok(Arc::new(crate::S3Store::new(config)?))
}

#[cfg(not(feature = "s3"))]
fn open_s3(_config: &S3Config) -> Result<Arc<dyn SnapshotStore>, StoreError> {
    Err(StoreError::Config(
        "this binary was built without S3 support (cargo feature `s3` of chorus-store)".to_owned(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_fsync_policies() {
        assert_eq!("always".parse(), Ok(FsyncPolicy::Always));
        assert_eq!(
            "1s".parse(),
            Ok(FsyncPolicy::Interval(Duration::from_secs(1)))
        );
        assert_eq!(
            "250ms".parse(),
            Ok(FsyncPolicy::Interval(Duration::from_millis(250)))
        );
        assert!("0s".parse::<FsyncPolicy>().is_err());
        assert!("sometimes".parse::<FsyncPolicy>().is_err());
        assert_eq!(
            FsyncPolicy::Interval(Duration::from_secs(1)).to_string(),
            "1s"
        );
    }

    #[test]
    fn debug_output_hides_redis_passwords() {
        let config = StoreConfig {
            snapshots: SnapshotBackend::Redis {
                url: "redis://user:hunter2@cache:6379/0".to_owned(),
                prefix: "chorus:".to_owned(),
            },
            log: LogBackend::Redis {
                url: "redis://:hunter2@cache:6379".to_owned(),
                prefix: "chorus:".to_owned(),
            },
        };
        let shown = format!("{config:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("cache:6379"), "{shown}");
    }
}

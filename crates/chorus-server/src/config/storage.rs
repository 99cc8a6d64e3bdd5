//! Where snapshots and the update log are kept, and how often snapshots compact the log.

use std::path::PathBuf;
use std::time::Duration;

use chorus_store::{FsyncPolicy, LogBackend, S3Config, SnapshotBackend, StoreConfig};
use clap::{Args, ValueEnum};

use super::{ConfigError, setting};

/// Where document snapshots are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum StoreKind {
    /// Files in `--data-dir` (the embedded default).
    Fs,
    /// Redis (`--store-redis-url`): for pods without disks.
    Redis,
    /// S3-compatible object storage (`--s3-*`); needs a build with the `s3` feature.
    S3,
    /// Memory only: everything is lost at exit.
    Memory,
}

/// Where the update log (every accepted update, until a snapshot covers it) is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogKind {
    /// Files in `--data-dir`.
    Fs,
    /// Redis streams (`--store-redis-url`).
    Redis,
    /// Memory only.
    Memory,
}

/// Snapshots and the update log.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Storage")]
pub struct StorageConfig {
    /// Directory where document snapshots are kept (created if missing).
    #[arg(long, env = "CHORUS_DATA_DIR", default_value = "./data")]
    pub data_dir: PathBuf,

    /// Where snapshots are kept.
    #[arg(long, env = "CHORUS_STORE", value_enum, default_value = "fs")]
    pub store: StoreKind,

    /// Where the update log is kept (default: Redis with `--store redis`, memory with
    /// `--store memory`, files otherwise).
    #[arg(long, env = "CHORUS_UPDATE_LOG", value_enum)]
    pub update_log: Option<LogKind>,

    /// When update-log appends are durable: `always` (fsync before an update is relayed; updates
    /// arriving meanwhile share the fsync) or an interval such as `1s` (a crash of the process
    /// loses nothing, a power cut up to one interval).
    #[arg(long, env = "CHORUS_FSYNC", default_value = "always")]
    pub fsync: FsyncPolicy,

    /// Redis for `--store redis` / `--update-log redis` (default: `--redis-url`).
    #[arg(long, env = "CHORUS_STORE_REDIS_URL")]
    pub store_redis_url: Option<String>,

    /// Prefix of the keys the Redis store writes.
    #[arg(long, env = "CHORUS_STORE_PREFIX", default_value = "chorus:")]
    pub store_prefix: String,

    /// S3 bucket for `--store s3` (credentials from the AWS_* environment variables).
    #[arg(long, env = "CHORUS_S3_BUCKET")]
    pub s3_bucket: Option<String>,

    /// Folder inside the bucket.
    #[arg(long, env = "CHORUS_S3_PREFIX", default_value = "chorus")]
    pub s3_prefix: String,

    /// Endpoint of an S3-compatible store (MinIO, ...); AWS when unset.
    #[arg(long, env = "CHORUS_S3_ENDPOINT")]
    pub s3_endpoint: Option<String>,

    /// S3 region (default: AWS_REGION, or us-east-1).
    #[arg(long, env = "CHORUS_S3_REGION")]
    pub s3_region: Option<String>,

    /// Allow a plain-HTTP S3 endpoint (local test servers).
    #[arg(long, env = "CHORUS_S3_ALLOW_HTTP")]
    pub s3_allow_http: bool,

    /// How long after a change a room snapshots its document; changes arriving meanwhile
    /// join the same snapshot. Every change is already durable in the update log, so snapshots
    /// only compact it: a long interval saves work on busy rooms and costs only log replay at load.
    #[arg(long, env = "CHORUS_SNAPSHOT_INTERVAL", default_value = "30s", value_parser = humantime::parse_duration)]
    pub snapshot_interval: Duration,
}

impl StorageConfig {
    /// The store backends these settings select; `redis_url` is the scale-out Redis, the
    /// store's fallback.
    ///
    /// # Errors
    /// [`ConfigError`] naming the missing setting and how to give it.
    pub fn store_config(&self, redis_url: Option<&str>) -> Result<StoreConfig, ConfigError> {
        self.backends(redis_url).map_err(|problem| ConfigError {
            problems: vec![problem],
        })
    }

    fn backends(&self, redis_url: Option<&str>) -> Result<StoreConfig, String> {
        let redis = || {
            self.store_redis_url
                .clone()
                .or_else(|| redis_url.map(str::to_owned))
                .ok_or_else(|| {
                    format!(
                        "--store redis / --update-log redis need {} or {}",
                        setting("store-redis-url"),
                        setting("redis-url")
                    )
                })
        };
        let snapshots = match self.store {
            StoreKind::Fs => SnapshotBackend::Fs {
                dir: self.data_dir.clone(),
            },
            StoreKind::Memory => SnapshotBackend::Memory,
            StoreKind::Redis => SnapshotBackend::Redis {
                url: redis()?,
                prefix: self.store_prefix.clone(),
            },
            StoreKind::S3 => SnapshotBackend::S3(S3Config {
                bucket: self.s3_bucket.clone().ok_or_else(|| {
                    format!(
                        "--store s3 needs {}, the bucket's name",
                        setting("s3-bucket")
                    )
                })?,
                prefix: self.s3_prefix.clone(),
                endpoint: self.s3_endpoint.clone(),
                region: self.s3_region.clone(),
                allow_http: self.s3_allow_http,
            }),
        };
        let log_kind = self.update_log.unwrap_or(match self.store {
            StoreKind::Redis => LogKind::Redis,
            StoreKind::Memory => LogKind::Memory,
            StoreKind::Fs | StoreKind::S3 => LogKind::Fs,
        });
        let log = match log_kind {
            LogKind::Fs => LogBackend::Fs {
                dir: self.data_dir.clone(),
                fsync: self.fsync,
            },
            LogKind::Memory => LogBackend::Memory,
            LogKind::Redis => LogBackend::Redis {
                url: redis()?,
                prefix: self.store_prefix.clone(),
            },
        };
        Ok(StoreConfig { snapshots, log })
    }

    pub(super) fn check(&self, redis_url: Option<&str>, problems: &mut Vec<String>) {
        if self.snapshot_interval.is_zero() {
            problems.push(format!(
                "{} must be non-zero, e.g. 2s",
                setting("snapshot-interval")
            ));
        }
        if let Err(problem) = self.backends(redis_url) {
            problems.push(problem);
        }
    }
}

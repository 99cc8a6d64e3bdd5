//! Server configuration: every setting is a `chorus serve` flag with a `CHORUS_*` environment
//! variable and a default, so `chorus serve` alone runs a working single-node server.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use chorus_store::{FsyncPolicy, LogBackend, S3Config, SnapshotBackend, StoreConfig};
use clap::{Args, ValueEnum};

/// Smallest outbox: a joiner gets sync step 1, awareness and the answer to its step 1 at once.
const MIN_OUTBOX_CAPACITY: usize = 8;

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

/// A secret setting: kept out of `Debug` output and logs.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(pub String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl std::str::FromStr for Secret {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Self(s.to_owned()))
    }
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines, coloured on a terminal.
    Text,
    /// One JSON object per line, for log collectors.
    Json,
}

/// Everything `chorus serve` can be told.
#[derive(Debug, Clone, Args)]
pub struct Config {
    /// Address and port to listen on (port 0 picks a free one).
    #[arg(long, env = "CHORUS_LISTEN", default_value = "127.0.0.1:1234")]
    pub listen: SocketAddr,

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

    /// HS256 secret for client tokens (`?token=`). With neither this nor --auth-public-key the
    /// server is open to anyone who can reach it.
    #[arg(long, env = "CHORUS_AUTH_SECRET", hide_env_values = true)]
    pub auth_secret: Option<Secret>,

    /// Bearer key for the HTTP API under /api/v1 (servers only; never give it to browsers).
    /// Without it the API is off.
    #[arg(long, env = "CHORUS_API_KEY", hide_env_values = true)]
    pub api_key: Option<Secret>,

    /// PEM public key (RSA for RS256, P-256 EC for ES256) that client tokens are signed for.
    #[arg(long, env = "CHORUS_AUTH_PUBLIC_KEY")]
    pub auth_public_key: Option<PathBuf>,

    /// Ask this URL whether a connection may open a document (instead of signed tokens): it is
    /// posted `{"doc", "token"}` and answers `{"access": "write"|"read"|"deny"}`.
    #[arg(long, env = "CHORUS_AUTH_CALLBACK_URL")]
    pub auth_callback_url: Option<reqwest::Url>,

    /// How long an answer of the auth callback is reused for the same token and document.
    #[arg(long, env = "CHORUS_AUTH_CALLBACK_CACHE", default_value = "10s", value_parser = humantime::parse_duration)]
    pub auth_callback_cache: Duration,

    /// Time limit of one auth-callback request; past it the connection gets 503.
    #[arg(long, env = "CHORUS_AUTH_CALLBACK_TIMEOUT", default_value = "5s", value_parser = humantime::parse_duration)]
    pub auth_callback_timeout: Duration,

    /// POST a JSON notice here when a document changes (debounced by --change-debounce).
    #[arg(long, env = "CHORUS_WEBHOOK_URL")]
    pub webhook_url: Option<reqwest::Url>,

    /// Key of the webhook's `X-Chorus-Signature: sha256=<HMAC-SHA256 of the body>` header.
    #[arg(long, env = "CHORUS_WEBHOOK_SECRET", hide_env_values = true)]
    pub webhook_secret: Option<Secret>,

    /// Put the document's content (as JSON) in each webhook notice.
    #[arg(long, env = "CHORUS_WEBHOOK_INCLUDE_CONTENT")]
    pub webhook_include_content: bool,

    /// Attempts per webhook notice, the first included; retries back off exponentially.
    #[arg(long, env = "CHORUS_WEBHOOK_MAX_ATTEMPTS", default_value_t = 8)]
    pub webhook_max_attempts: u32,

    /// Time limit of one webhook request.
    #[arg(long, env = "CHORUS_WEBHOOK_TIMEOUT", default_value = "10s", value_parser = humantime::parse_duration)]
    pub webhook_timeout: Duration,

    /// Quiet time after a change before webhooks and change hooks hear of it; a document edited
    /// without pause is announced at least every five times this.
    #[arg(long, env = "CHORUS_CHANGE_DEBOUNCE", default_value = "2s", value_parser = humantime::parse_duration)]
    pub change_debounce: Duration,

    /// Origins allowed to open WebSockets, comma-separated (e.g. https://app.example.com);
    /// others get 403, against cross-site WebSocket hijacking. Empty: any origin.
    #[arg(long, env = "CHORUS_ALLOWED_ORIGINS", value_delimiter = ',')]
    pub allowed_origins: Vec<String>,

    /// Connections this node accepts; beyond it new ones get HTTP 503.
    #[arg(long, env = "CHORUS_MAX_CONNECTIONS", default_value_t = 100_000)]
    pub max_connections: usize,

    /// Connections one room accepts; beyond it new ones are closed with 1013.
    #[arg(long, env = "CHORUS_MAX_CONNECTIONS_PER_ROOM", default_value_t = 2_000)]
    pub max_connections_per_room: usize,

    /// Messages per second one connection may send (bursts of twice that); a faster client is
    /// slowed down: its socket is not read until it is back under the rate.
    // 1,000 rather than the 200 of when going over closed the connection (#15): the limit now
    // only shares the server out, it no longer has to catch abuse. What bounds it is the readers:
    // each message becomes a frame in every other connection's outbox (--outbox-capacity, 1,024
    // frames, then 1013). Measured with a reader in the writer's own process, so reading nothing
    // during the writer's one-second loop of 10,240 inserts: at 1,000 (bursts of 2,000) the
    // outbox and the socket buffers absorbed it; at 2,000 the reader was closed with 1013. The
    // loop then takes about 8 s instead of 50 s, well inside the 30 s after which a y-websocket
    // client that hears nothing drops its connection.
    #[arg(long, env = "CHORUS_MAX_MESSAGES_PER_SECOND", default_value_t = 1_000)]
    pub max_messages_per_second: u32,

    /// Bytes per second one connection may send (bursts up to --max-message-bytes); a faster
    /// client is slowed down: its socket is not read until it is back under the rate.
    // Unchanged by #15: a 10 MiB document typed in pieces fits in the burst, and an outbox is
    // counted in frames, which the message rate bounds.
    #[arg(long, env = "CHORUS_MAX_BYTES_PER_SECOND", default_value_t = 4 * 1024 * 1024)]
    pub max_bytes_per_second: u64,

    /// Serve the files of this directory at `/` (e.g. the built web demo, `web-demo/dist`).
    #[arg(long, env = "CHORUS_STATIC_DIR")]
    pub static_dir: Option<PathBuf>,

    /// Log format.
    #[arg(long, env = "CHORUS_LOG_FORMAT", value_enum, default_value = "text")]
    pub log_format: LogFormat,

    /// How long after a change a room snapshots its document; changes arriving meanwhile
    /// join the same snapshot. Every change is already durable in the update log, so snapshots
    /// only compact it: a long interval saves work on busy rooms and costs only log replay at load.
    #[arg(long, env = "CHORUS_SNAPSHOT_INTERVAL", default_value = "30s", value_parser = humantime::parse_duration)]
    pub snapshot_interval: Duration,

    /// How long a room with no connections stays in memory before it is saved and unloaded.
    #[arg(long, env = "CHORUS_ROOM_IDLE_TIMEOUT", default_value = "30s", value_parser = humantime::parse_duration)]
    pub room_idle_timeout: Duration,

    /// Largest WebSocket message accepted, in bytes; bigger ones close the connection (1009).
    #[arg(long, env = "CHORUS_MAX_MESSAGE_BYTES", default_value_t = 16 * 1024 * 1024)]
    pub max_message_bytes: usize,

    /// Largest size, in bytes (Yjs v1 encoding), clients may grow one document to; an update
    /// past it is refused and its sender closed with 1008.
    #[arg(long, env = "CHORUS_MAX_DOCUMENT_BYTES", default_value_t = 64 * 1024 * 1024)]
    pub max_document_bytes: usize,

    /// Most distinct client ids that may write to one document (every browser session is a new
    /// one; fake ones make yrs slow down for everybody); beyond: close 1008.
    #[arg(long, env = "CHORUS_MAX_DOCUMENT_CLIENTS", default_value_t = 65_536)]
    pub max_document_clients: usize,

    /// Most client ids new to a document that one connection may bring (a reconnecting
    /// client's offline edits name a few; a client inventing ids to fill the document's quota
    /// names thousands); beyond: close 1008.
    #[arg(
        long,
        env = "CHORUS_MAX_CLIENTS_PER_CONNECTION",
        default_value_t = chorus_protocol::update::DEFAULT_MAX_CLIENTS
    )]
    pub max_clients_per_connection: usize,

    /// Most structs and delete ranges one document keeps waiting for missing dependencies
    /// (an update adding more is dropped and its sender closed with 1008), and most updates
    /// one connection may have held back until the clocks they follow arrive.
    #[arg(long, env = "CHORUS_MAX_PENDING_STRUCTS", default_value_t = 10_000)]
    pub max_pending_structs: usize,

    /// Directory where refused updates are kept for analysis, each with the last messages its
    /// connection sent (off by default). Every connection then keeps its last 64 messages
    /// (at most 4 MiB) in memory.
    #[arg(long, env = "CHORUS_QUARANTINE_DIR")]
    pub quarantine_dir: Option<PathBuf>,

    /// Most refusals kept in `--quarantine-dir` (what is already there counts); later ones are
    /// only logged and counted.
    #[arg(long, env = "CHORUS_QUARANTINE_MAX", default_value_t = 100)]
    pub quarantine_max: usize,

    /// Messages queued for one connection before it counts as too slow and is disconnected
    /// (it resynchronises when it reconnects).
    #[arg(long, env = "CHORUS_OUTBOX_CAPACITY", default_value_t = 1024)]
    pub outbox_capacity: usize,

    /// How often each connection is pinged.
    #[arg(long, env = "CHORUS_PING_INTERVAL", default_value = "15s", value_parser = humantime::parse_duration)]
    pub ping_interval: Duration,

    /// A connection from which nothing (not even a pong) arrives for this long is dropped.
    #[arg(long, env = "CHORUS_PEER_TIMEOUT", default_value = "30s", value_parser = humantime::parse_duration)]
    pub peer_timeout: Duration,

    /// Awareness (presence) states not renewed for this long are removed; clients renew every 15 s.
    #[arg(long, env = "CHORUS_AWARENESS_TIMEOUT", default_value = "30s", value_parser = humantime::parse_duration)]
    pub awareness_timeout: Duration,

    /// Redis URL for scale-out (e.g. redis://127.0.0.1:6379): nodes sharing it serve rooms
    /// together. Without it the server runs as a single node.
    #[arg(long, env = "CHORUS_REDIS_URL")]
    pub redis_url: Option<String>,

    /// Treat --redis-url as a comma-separated list of Redis Cluster seed nodes and relay through
    /// sharded pub/sub, so room channels spread over the cluster's shards.
    #[arg(long, env = "CHORUS_REDIS_CLUSTER")]
    pub redis_cluster: bool,

    /// Prefix of the Redis channel names, so several deployments can share one Redis.
    #[arg(long, env = "CHORUS_REDIS_PREFIX", default_value = "chorus")]
    pub redis_prefix: String,

    /// How often nodes sharing a room re-exchange state vectors, repairing anything pub/sub lost.
    #[arg(long, env = "CHORUS_RELAY_RESYNC_INTERVAL", default_value = "30s", value_parser = humantime::parse_duration)]
    pub relay_resync_interval: Duration,

    /// A node not heard from for this long is considered dead; its clients' presence is removed.
    #[arg(long, env = "CHORUS_NODE_TIMEOUT", default_value = "10s", value_parser = humantime::parse_duration)]
    pub node_timeout: Duration,

    /// How long shutdown waits for rooms to flush and connections to close.
    #[arg(long, env = "CHORUS_SHUTDOWN_TIMEOUT", default_value = "10s", value_parser = humantime::parse_duration)]
    pub shutdown_timeout: Duration,
}

impl Config {
    /// The store backends these settings select.
    ///
    /// # Errors
    /// A message naming the missing setting.
    pub fn store_config(&self) -> Result<StoreConfig, String> {
        let redis = || {
            self.store_redis_url
                .clone()
                .or_else(|| self.redis_url.clone())
                .ok_or_else(|| {
                    "--store redis / --update-log redis need --store-redis-url \
                     (CHORUS_STORE_REDIS_URL) or --redis-url"
                        .to_owned()
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
                bucket: self
                    .s3_bucket
                    .clone()
                    .ok_or("--store s3 needs --s3-bucket (CHORUS_S3_BUCKET)")?,
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

    /// Checks the settings together and lists every problem, each naming the setting and the fix.
    ///
    /// # Errors
    /// One message per problem, joined by newlines.
    pub fn validate(&self) -> Result<(), String> {
        let mut problems = Vec::new();
        if self.outbox_capacity < MIN_OUTBOX_CAPACITY {
            problems.push(format!(
                "--outbox-capacity (CHORUS_OUTBOX_CAPACITY) must be at least {MIN_OUTBOX_CAPACITY}: \
                 a joining client is sent several messages at once"
            ));
        }
        if self.max_message_bytes < 1024 {
            problems.push(
                "--max-message-bytes (CHORUS_MAX_MESSAGE_BYTES) must be at least 1024; clients send \
                 whole offline edits in one message"
                    .to_owned(),
            );
        }
        if self.ping_interval.is_zero() || self.ping_interval >= self.peer_timeout {
            problems.push(format!(
                "--ping-interval ({}) must be non-zero and shorter than --peer-timeout ({}), or live \
                 peers are dropped between pings",
                humantime::format_duration(self.ping_interval),
                humantime::format_duration(self.peer_timeout)
            ));
        }
        if self.snapshot_interval.is_zero() {
            problems.push(
                "--snapshot-interval (CHORUS_SNAPSHOT_INTERVAL) must be non-zero, e.g. 2s"
                    .to_owned(),
            );
        }
        if self.awareness_timeout < Duration::from_secs(1) {
            problems.push(
                "--awareness-timeout (CHORUS_AWARENESS_TIMEOUT) must be at least 1s".to_owned(),
            );
        }
        if self.node_timeout < Duration::from_secs(1) {
            problems.push("--node-timeout (CHORUS_NODE_TIMEOUT) must be at least 1s".to_owned());
        }
        if self.relay_resync_interval.is_zero() {
            problems.push(
                "--relay-resync-interval (CHORUS_RELAY_RESYNC_INTERVAL) must be non-zero, e.g. 30s"
                    .to_owned(),
            );
        }
        if let Some(urls) = &self.redis_url
            && !urls.split(',').map(str::trim).all(|url| {
                url.starts_with("redis://")
                    || url.starts_with("rediss://")
                    || url.starts_with("redis+unix://")
            })
        {
            problems.push(
                "--redis-url (CHORUS_REDIS_URL) must start with redis:// (e.g. redis://127.0.0.1:6379)"
                    .to_owned(),
            );
        }
        if self.redis_cluster && self.redis_url.is_none() {
            problems.push(
                "--redis-cluster needs --redis-url (CHORUS_REDIS_URL) with the cluster's seed nodes, \
                 e.g. redis://10.0.0.1:6379,redis://10.0.0.2:6379"
                    .to_owned(),
            );
        }
        if self.max_connections == 0 || self.max_connections_per_room == 0 {
            problems.push(
                "--max-connections and --max-connections-per-room must be at least 1".to_owned(),
            );
        }
        if self.max_messages_per_second == 0 || self.max_bytes_per_second == 0 {
            problems.push(
                "--max-messages-per-second and --max-bytes-per-second must be at least 1"
                    .to_owned(),
            );
        }
        if self.auth_secret.is_some() && self.auth_public_key.is_some() {
            problems.push(
                "--auth-secret and --auth-public-key are exclusive: tokens use one algorithm"
                    .to_owned(),
            );
        }
        if self.auth_secret.as_ref().is_some_and(|s| s.0.len() < 32) {
            problems.push(
                "--auth-secret (CHORUS_AUTH_SECRET) must be at least 32 bytes; generate one with \
                 `openssl rand -hex 32`"
                    .to_owned(),
            );
        }
        if self.auth_callback_url.is_some()
            && (self.auth_secret.is_some() || self.auth_public_key.is_some())
        {
            problems.push(
                "--auth-callback-url cannot be combined with --auth-secret / --auth-public-key: \
                 choose signed tokens or the callback"
                    .to_owned(),
            );
        }
        for (flag, url) in [
            (
                "--auth-callback-url (CHORUS_AUTH_CALLBACK_URL)",
                &self.auth_callback_url,
            ),
            ("--webhook-url (CHORUS_WEBHOOK_URL)", &self.webhook_url),
        ] {
            if let Some(url) = url
                && !matches!(url.scheme(), "http" | "https")
            {
                problems.push(format!(
                    "{flag} must be an http:// or https:// URL, not {url}"
                ));
            }
        }
        if self.webhook_url.is_some() && self.webhook_max_attempts == 0 {
            problems.push(
                "--webhook-max-attempts (CHORUS_WEBHOOK_MAX_ATTEMPTS) must be at least 1"
                    .to_owned(),
            );
        }
        if self.webhook_secret.is_some() && self.webhook_url.is_none() {
            problems.push(
                "--webhook-secret is set but --webhook-url (CHORUS_WEBHOOK_URL) is not: set the \
                 URL notices go to"
                    .to_owned(),
            );
        }
        if self.change_debounce.is_zero() {
            problems.push(
                "--change-debounce (CHORUS_CHANGE_DEBOUNCE) must be non-zero, e.g. 2s".to_owned(),
            );
        }
        if let Err(problem) = self.store_config() {
            problems.push(problem);
        }
        if let Some(dir) = &self.static_dir
            && !dir.is_dir()
        {
            problems.push(format!(
                "--static-dir (CHORUS_STATIC_DIR) {} is not a directory; build the demo first \
                 (cd web-demo && npm ci && npm run build) or drop the flag",
                dir.display()
            ));
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems.join("\n"))
        }
    }

    /// A configuration for tests and embedding: defaults, listening on a free loopback port.
    pub fn local(data_dir: impl Into<PathBuf>) -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            data_dir: data_dir.into(),
            static_dir: None,
            max_connections: 100_000,
            max_connections_per_room: 2_000,
            max_messages_per_second: 1_000,
            max_bytes_per_second: 4 * 1024 * 1024,
            auth_secret: None,
            api_key: None,
            auth_public_key: None,
            auth_callback_url: None,
            auth_callback_cache: Duration::from_secs(10),
            auth_callback_timeout: Duration::from_secs(5),
            webhook_url: None,
            webhook_secret: None,
            webhook_include_content: false,
            webhook_max_attempts: 8,
            webhook_timeout: Duration::from_secs(10),
            change_debounce: Duration::from_secs(2),
            allowed_origins: Vec::new(),
            store: StoreKind::Fs,
            update_log: None,
            fsync: FsyncPolicy::Always,
            store_redis_url: None,
            store_prefix: "chorus:".to_owned(),
            s3_bucket: None,
            s3_prefix: "chorus".to_owned(),
            s3_endpoint: None,
            s3_region: None,
            s3_allow_http: false,
            log_format: LogFormat::Text,
            snapshot_interval: Duration::from_secs(30),
            room_idle_timeout: Duration::from_secs(30),
            max_message_bytes: 16 * 1024 * 1024,
            max_document_bytes: 64 * 1024 * 1024,
            max_document_clients: 65_536,
            max_clients_per_connection: chorus_protocol::update::DEFAULT_MAX_CLIENTS,
            max_pending_structs: 10_000,
            quarantine_dir: None,
            quarantine_max: 100,
            outbox_capacity: 1024,
            ping_interval: Duration::from_secs(15),
            peer_timeout: Duration::from_secs(30),
            awareness_timeout: Duration::from_secs(30),
            redis_url: None,
            redis_cluster: false,
            redis_prefix: "chorus".to_owned(),
            relay_resync_interval: Duration::from_secs(30),
            node_timeout: Duration::from_secs(10),
            shutdown_timeout: Duration::from_secs(10),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_problems_are_all_listed() {
        assert_eq!(Config::local("./data").validate(), Ok(()));
        let mut config = Config::local("./data");
        config.outbox_capacity = 0;
        config.ping_interval = Duration::from_secs(60);
        let problems = config.validate().expect_err("two problems");
        assert!(problems.contains("--outbox-capacity"), "{problems}");
        assert!(problems.contains("--ping-interval"), "{problems}");
    }
}

//! Several nodes serving the same rooms through Redis pub/sub.

use std::time::Duration;

use clap::Args;

use super::setting;
use crate::relay::RelaySettings;

/// The relay between nodes.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Scale-out")]
pub struct ScaleOutConfig {
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
}

impl ScaleOutConfig {
    /// What the relay needs, or `None` for a single node (no `--redis-url`).
    pub fn relay_settings(&self) -> Option<RelaySettings> {
        self.redis_url.as_ref().map(|url| RelaySettings {
            url: url.clone(),
            cluster: self.redis_cluster,
            prefix: self.redis_prefix.clone(),
            // Five heartbeats per timeout: one lost heartbeat never declares a live node dead.
            heartbeat_interval: self.node_timeout / 5,
            node_timeout: self.node_timeout,
        })
    }

    pub(super) fn check(&self, problems: &mut Vec<String>) {
        if self.node_timeout < Duration::from_secs(1) {
            problems.push(format!("{} must be at least 1s", setting("node-timeout")));
        }
        if self.relay_resync_interval.is_zero() {
            problems.push(format!(
                "{} must be non-zero, e.g. 30s",
                setting("relay-resync-interval")
            ));
        }
        if let Some(urls) = &self.redis_url
            && !urls.split(',').map(str::trim).all(|url| {
                url.starts_with("redis://")
                    || url.starts_with("rediss://")
                    || url.starts_with("redis+unix://")
            })
        {
            problems.push(format!(
                "{} must start with redis:// (e.g. redis://127.0.0.1:6379)",
                setting("redis-url")
            ));
        }
        if self.redis_cluster && self.redis_url.is_none() {
            problems.push(format!(
                "{} needs {} with the cluster's seed nodes, \
                 e.g. redis://10.0.0.1:6379,redis://10.0.0.2:6379",
                setting("redis-cluster"),
                setting("redis-url")
            ));
        }
    }
}

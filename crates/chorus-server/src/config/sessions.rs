//! How long connections, presence and idle rooms live.

use std::time::Duration;

use clap::Args;

use super::setting;

/// Liveness of connections, presence states and rooms.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Connections and rooms")]
pub struct SessionConfig {
    /// How often each connection is pinged.
    #[arg(long, env = "CHORUS_PING_INTERVAL", default_value = "15s", value_parser = humantime::parse_duration)]
    pub ping_interval: Duration,

    /// A connection from which nothing (not even a pong) arrives for this long is dropped.
    #[arg(long, env = "CHORUS_PEER_TIMEOUT", default_value = "30s", value_parser = humantime::parse_duration)]
    pub peer_timeout: Duration,

    /// Awareness (presence) states not renewed for this long are removed; clients renew every 15 s.
    #[arg(long, env = "CHORUS_AWARENESS_TIMEOUT", default_value = "30s", value_parser = humantime::parse_duration)]
    pub awareness_timeout: Duration,

    /// How long a room with no connections stays in memory before it is saved and unloaded.
    #[arg(long, env = "CHORUS_ROOM_IDLE_TIMEOUT", default_value = "30s", value_parser = humantime::parse_duration)]
    pub room_idle_timeout: Duration,
}

impl SessionConfig {
    pub(super) fn check(&self, problems: &mut Vec<String>) {
        if self.ping_interval.is_zero() || self.ping_interval >= self.peer_timeout {
            problems.push(format!(
                "{} is {} but must be non-zero and shorter than {}, {} now, or live peers are \
                 dropped between pings",
                setting("ping-interval"),
                humantime::format_duration(self.ping_interval),
                setting("peer-timeout"),
                humantime::format_duration(self.peer_timeout)
            ));
        }
        if self.awareness_timeout < Duration::from_secs(1) {
            problems.push(format!(
                "{} must be at least 1s",
                setting("awareness-timeout")
            ));
        }
    }
}

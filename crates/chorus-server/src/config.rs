//! Server configuration: every setting is a `chorus serve` flag with a `CHORUS_*` environment
//! variable and a default, so `chorus serve` alone runs a working single-node server.
//!
//! The settings come in groups by concern, one struct each, and `chorus serve --help` lists
//! them under one heading each: [`ServerConfig`], [`StorageConfig`], [`ScaleOutConfig`],
//! [`AuthConfig`], [`LimitsConfig`], [`WebhookConfig`], [`SessionConfig`],
//! [`OperationsConfig`], [`HistoryConfig`]. Each group checks its own settings; [`Config::validate`] lists every
//! problem at once, each naming the flag, its environment variable and the fix.

use std::net::SocketAddr;
use std::path::PathBuf;

use chorus_store::StoreConfig;
use clap::{Args, FromArgMatches, Parser};

mod auth;
mod history;
mod limits;
mod operations;
mod scale_out;
mod server;
mod sessions;
mod storage;
#[cfg(test)]
mod tests;
mod webhooks;

pub use auth::{AuthConfig, Secret};
pub use history::HistoryConfig;
pub use limits::LimitsConfig;
pub use operations::{LogFormat, OperationsConfig};
pub use scale_out::ScaleOutConfig;
pub use server::ServerConfig;
pub use sessions::SessionConfig;
pub use storage::{LogKind, StorageConfig, StoreKind};
pub use webhooks::WebhookConfig;

use crate::room::RoomSettings;

/// Everything `chorus serve` can be told, by concern.
#[derive(Debug, Clone, Parser)]
pub struct Config {
    /// Listening and static files.
    #[command(flatten)]
    pub server: ServerConfig,
    /// Snapshots and the update log.
    #[command(flatten)]
    pub storage: StorageConfig,
    /// Several nodes through Redis.
    #[command(flatten)]
    pub scale_out: ScaleOutConfig,
    /// Who may connect.
    #[command(flatten)]
    pub auth: AuthConfig,
    /// Connections, rates and sizes.
    #[command(flatten)]
    pub limits: LimitsConfig,
    /// Change notices.
    #[command(flatten)]
    pub webhooks: WebhookConfig,
    /// Liveness of connections, presence and rooms.
    #[command(flatten)]
    pub sessions: SessionConfig,
    /// Logs, quarantine, draining and shutdown.
    #[command(flatten)]
    pub operations: OperationsConfig,
    /// Versions and their retention.
    #[command(flatten)]
    pub history: HistoryConfig,
}

macro_rules! group_defaults {
    ($($group:ty),* $(,)?) => {$(
        impl Default for $group {
            /// The `chorus serve` defaults, whatever the environment says.
            fn default() -> Self {
                defaults()
            }
        }
    )*};
}

group_defaults!(
    ServerConfig,
    StorageConfig,
    ScaleOutConfig,
    AuthConfig,
    LimitsConfig,
    WebhookConfig,
    SessionConfig,
    OperationsConfig,
    HistoryConfig,
);

impl Default for Config {
    /// The `chorus serve` defaults, whatever the environment says.
    fn default() -> Self {
        defaults()
    }
}

/// A group's settings as `chorus serve` with no flags would have them, ignoring `CHORUS_*`
/// variables: the defaults are written once, in the `#[arg]` attributes.
fn defaults<T: Args + FromArgMatches>() -> T {
    let command = T::augment_args(clap::Command::new("chorus")).mut_args(|arg| arg.env(None));
    // The defaults are literals of this crate, and `every_default_parses` in the tests proves
    // they parse; a failure here is a bug in this file, not a bad input.
    #[allow(clippy::expect_used)]
    command
        .try_get_matches_from(["chorus"])
        .and_then(|matches| T::from_arg_matches(&matches))
        .expect("the built-in defaults parse")
}

/// How a problem names a setting: its flag and its environment variable, which are derived
/// from each other for every setting.
fn setting(flag: &str) -> String {
    format!(
        "--{flag} (CHORUS_{})",
        flag.to_ascii_uppercase().replace('-', "_")
    )
}

/// The problem with a URL setting that is not http(s).
fn check_http_url(flag: &str, url: Option<&reqwest::Url>, problems: &mut Vec<String>) {
    if let Some(url) = url
        && !matches!(url.scheme(), "http" | "https")
    {
        problems.push(format!(
            "{} must be an http:// or https:// URL, not {url}",
            setting(flag)
        ));
    }
}

/// Settings that cannot work, alone or together: one line per problem, each naming the setting
/// (flag and environment variable) and the fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid configuration:\n{}", .problems.join("\n"))]
pub struct ConfigError {
    /// The problems, one sentence each.
    pub problems: Vec<String>,
}

impl Config {
    /// The store backends these settings select.
    ///
    /// # Errors
    /// [`ConfigError`] naming the missing setting.
    pub fn store_config(&self) -> Result<StoreConfig, ConfigError> {
        self.storage
            .store_config(self.scale_out.redis_url.as_deref())
    }

    /// How rooms behave: timings from several groups, limits from [`LimitsConfig`].
    pub fn room_settings(&self) -> RoomSettings {
        RoomSettings {
            snapshot_interval: self.storage.snapshot_interval,
            idle_timeout: self.sessions.room_idle_timeout,
            awareness_timeout: self.sessions.awareness_timeout,
            relay_resync_interval: self.scale_out.relay_resync_interval,
            max_peers: self.limits.max_connections_per_room,
            change_debounce: self.webhooks.change_debounce,
            doc_limits: self.limits.doc_limits(),
            held_limits: self.limits.held_limits(),
        }
    }

    /// Checks the settings together and lists every problem, each naming the setting (flag and
    /// environment variable) and the fix.
    ///
    /// # Errors
    /// [`ConfigError`] with one message per problem.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let mut problems = Vec::new();
        self.server.check(&mut problems);
        self.storage
            .check(self.scale_out.redis_url.as_deref(), &mut problems);
        self.scale_out.check(&mut problems);
        self.auth.check(&mut problems);
        self.limits.check(&mut problems);
        self.webhooks.check(&mut problems);
        self.sessions.check(&mut problems);
        self.history.check(&mut problems);
        if problems.is_empty() {
            Ok(())
        } else {
            Err(ConfigError { problems })
        }
    }

    /// A configuration for tests and embedding: defaults, listening on a free loopback port.
    pub fn local(data_dir: impl Into<PathBuf>) -> Self {
        let mut config = Self::default();
        config.server.listen = SocketAddr::from(([127, 0, 0, 1], 0));
        config.storage.data_dir = data_dir.into();
        config
    }
}

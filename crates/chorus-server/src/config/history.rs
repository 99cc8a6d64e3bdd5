//! Version history: how often versions are made while a document is edited, and how long they
//! are kept.

use std::time::Duration;

use chorus_store::Retention;
use clap::Args;

use super::setting;

/// Shortest automatic version interval: below it, versions would cost more than the edits.
const MIN_VERSION_INTERVAL: Duration = Duration::from_secs(1);

/// Version history.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "History")]
pub struct HistoryConfig {
    /// How often a version is recorded while a document is being edited: the first edit after
    /// a version starts the clock, and a document nobody edits gets none. `0s` turns automatic
    /// versions off (versions on request and after a restore are still made).
    #[arg(long, env = "CHORUS_VERSION_INTERVAL", default_value = "10m", value_parser = humantime::parse_duration)]
    pub version_interval: Duration,

    /// Which versions are kept: a count (`500`: the newest 500), an age (`90d`), both
    /// (`500,90d`: a version goes when either says so) or `none` (keep all). The newest version
    /// is always kept. Applied after each new version, and by `chorus doc versions prune`;
    /// every removal is logged.
    #[arg(long, env = "CHORUS_VERSION_RETENTION", default_value = "500,90d")]
    pub version_retention: Retention,
}

impl HistoryConfig {
    /// The automatic interval, `None` when turned off.
    pub fn auto_interval(&self) -> Option<Duration> {
        (!self.version_interval.is_zero()).then_some(self.version_interval)
    }

    pub(super) fn check(&self, problems: &mut Vec<String>) {
        if !self.version_interval.is_zero() && self.version_interval < MIN_VERSION_INTERVAL {
            problems.push(format!(
                "{} is {}; it must be at least {} (or 0s to turn automatic versions off)",
                setting("version-interval"),
                humantime::format_duration(self.version_interval),
                humantime::format_duration(MIN_VERSION_INTERVAL),
            ));
        }
    }
}

//! Running the server: logs, refused-update quarantine, draining and shutdown.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, ValueEnum};

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines, coloured on a terminal.
    Text,
    /// One JSON object per line, for log collectors.
    Json,
}

/// Logs, quarantine, draining and shutdown.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Operations")]
pub struct OperationsConfig {
    /// Log format.
    #[arg(long, env = "CHORUS_LOG_FORMAT", value_enum, default_value = "text")]
    pub log_format: LogFormat,

    /// Directory where refused updates are kept for analysis, each with the last messages its
    /// connection sent (off by default). Every connection then keeps its last 64 messages
    /// (at most 4 MiB) in memory.
    #[arg(long, env = "CHORUS_QUARANTINE_DIR")]
    pub quarantine_dir: Option<PathBuf>,

    /// Most refusals kept in `--quarantine-dir` (what is already there counts); later ones are
    /// only logged and counted.
    #[arg(long, env = "CHORUS_QUARANTINE_MAX", default_value_t = 100)]
    pub quarantine_max: usize,

    /// On SIGTERM or Ctrl-C, answer /readyz with 503 for this long before closing the listener,
    /// so load balancers stop routing here first; connections keep working meanwhile.
    #[arg(long, env = "CHORUS_DRAIN_DELAY", default_value = "0s", value_parser = humantime::parse_duration)]
    pub drain_delay: Duration,

    /// How long shutdown waits for rooms to flush and connections to close.
    #[arg(long, env = "CHORUS_SHUTDOWN_TIMEOUT", default_value = "10s", value_parser = humantime::parse_duration)]
    pub shutdown_timeout: Duration,
}

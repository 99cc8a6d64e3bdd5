//! The command line. Durations take humantime syntax (`500ms`, `10s`, `2m`).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};
use serde::Serialize;

use crate::{idle, join, ramp, run, scenario, soak};

/// Load generator for Chorus and other y-websocket servers.
#[derive(Debug, Parser)]
#[command(name = "chorus-loadtest", version, about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands. Each accepts its flags more than once, the last one winning, so a scenario
/// file's values can be overridden on the command line.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// R rooms × U users: typists send real yrs updates, users send presence; measures delivery.
    #[command(args_override_self = true)]
    Run(RunArgs),
    /// Repeats `run` with a rising update rate until p99 latency passes a limit.
    #[command(args_override_self = true)]
    Ramp(RampArgs),
    /// Opens N connections, completes the handshake, holds them; memory per connection.
    #[command(args_override_self = true)]
    Idle(IdleArgs),
    /// Seeds a large document, then measures how long new clients take to sync it.
    #[command(args_override_self = true)]
    Join(JoinArgs),
    /// Churn against one server for a long time (default 1 h), sampling its memory, descriptors,
    /// rooms and connections; pass/fail on leaks.
    #[command(args_override_self = true)]
    Soak(SoakArgs),
    /// Runs the steps of a scenario file (see `loadtest/scenarios/`).
    Scenario(ScenarioArgs),
}

/// Runs a command and returns the process exit code.
///
/// # Errors
/// Whatever the command fails with.
pub async fn execute(command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Scenario(args) => scenario::command(args).await,
        other => execute_step(other).await,
    }
}

/// Runs one command that is not a scenario (the steps of a scenario).
///
/// # Errors
/// Whatever the command fails with, or `command` is itself a scenario.
pub async fn execute_step(command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Run(args) => run::command(args).await,
        Command::Ramp(args) => ramp::command(args).await,
        Command::Idle(args) => idle::command(args).await,
        Command::Join(args) => join::command(args).await,
        Command::Soak(args) => soak::command(args).await,
        Command::Scenario(_) => anyhow::bail!("a scenario step cannot run another scenario"),
    }
}

fn duration(s: &str) -> Result<Duration, humantime::DurationError> {
    humantime::parse_duration(s)
}

/// The wire protocol the simulated users speak.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Protocol {
    /// `WebsocketProvider`'s: one document per socket, its name in the URL path.
    #[default]
    YWebsocket,
    /// `@hocuspocus/provider`'s: the document named in every frame, a token message before
    /// sync, and a sync status answering each update (its latency is reported as "ack").
    Hocuspocus,
}

/// The protocol flags of `run`, `idle` and `join`.
#[derive(Debug, Clone, Args)]
pub struct ProtocolArgs {
    /// The protocol every client speaks.
    #[arg(long, value_enum, default_value_t = Protocol::YWebsocket)]
    pub protocol: Protocol,
    /// Hocuspocus only: the token each client sends before syncing (a server without
    /// authentication takes any, the empty one included).
    #[arg(long, default_value = "")]
    pub token: String,
}

/// How `--url` reads, per protocol (shared by `run`, `idle` and `join`).
const URL_HELP: &str = "Server endpoint. y-websocket: the document name is appended to it, \
    e.g. `ws://127.0.0.1:8080/ws`. Hocuspocus: the socket URL as the provider takes it, used \
    as is, e.g. `ws://127.0.0.1:8080/hocuspocus` for Chorus or `ws://127.0.0.1:8080` for \
    `@hocuspocus/server`. Repeat for several nodes.";

/// Flags of `run` (and of each `ramp` stage).
#[derive(Debug, Clone, Args)]
pub struct RunArgs {
    /// Server endpoint(s); the users of every room are spread over them.
    #[arg(long = "url", required = true, long_help = URL_HELP)]
    pub urls: Vec<String>,
    /// The protocol.
    #[command(flatten)]
    pub wire: ProtocolArgs,
    /// Number of rooms (documents).
    #[arg(long, default_value_t = 1)]
    pub rooms: usize,
    /// Users per room.
    #[arg(long, default_value_t = 10)]
    pub users: usize,
    /// Users per room that type.
    #[arg(long, default_value_t = 1)]
    pub typists: usize,
    /// Updates per second per typist.
    #[arg(long, default_value_t = 10.0)]
    pub rate: f64,
    /// Characters each update inserts.
    #[arg(long, default_value_t = 1)]
    pub update_chars: usize,
    /// Updates a typist sends on each tick, one after another in one write, the way a script
    /// that inserts in a loop does (a server may merge them into one). `--rate` counts ticks.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=256))]
    pub burst: u32,
    /// Presence (awareness) updates per second per presence user; 0 disables presence.
    #[arg(long, default_value_t = 0.0)]
    pub presence_rate: f64,
    /// Users per room that send presence (default: all of them, when --presence-rate > 0).
    #[arg(long)]
    pub presence_users: Option<usize>,
    /// Connections are opened evenly over this period; the load starts when all are in.
    #[arg(long, value_parser = duration, default_value = "0s")]
    pub ramp_up: Duration,
    /// Load before measuring (latency of updates sent in it is not counted).
    #[arg(long, value_parser = duration, default_value = "2s")]
    pub warmup: Duration,
    /// Measured load.
    #[arg(long, value_parser = duration, default_value = "10s")]
    pub duration: Duration,
    /// After the load, how long to wait for outstanding deliveries before counting them lost.
    #[arg(long, value_parser = duration, default_value = "5s")]
    pub drain_timeout: Duration,
    /// Per connection, from TCP connect to the server's step 2.
    #[arg(long, value_parser = duration, default_value = "10s")]
    pub handshake_timeout: Duration,
    /// Handshakes in flight at once.
    #[arg(long, default_value_t = 256)]
    pub connect_concurrency: usize,
    /// Document names are `<prefix>-<room>`; default: `lt-<random>`, fresh rooms every run.
    #[arg(long)]
    pub doc_prefix: Option<String>,
    /// Every user keeps a yrs document and applies what it receives; after the run all
    /// documents of a room must be equal and every update delivered exactly once to every
    /// other user of its room (exit code 2 otherwise). Costs the generator CPU.
    #[arg(long)]
    pub verify: bool,
    /// Print the report as JSON on stdout.
    #[arg(long)]
    pub json: bool,
    /// Write a latency-over-time chart (SVG) here.
    #[arg(long)]
    pub chart: Option<PathBuf>,
    /// Server process(es) to sample CPU and memory of (same machine only).
    #[arg(long = "server-pid")]
    pub server_pids: Vec<u32>,
    /// No live progress line (it is also hidden when stderr is not a terminal).
    #[arg(long)]
    pub no_progress: bool,
}

/// Flags of `ramp`.
#[derive(Debug, Clone, Args)]
pub struct RampArgs {
    /// The stage settings; `--rate` is the first stage's rate.
    #[command(flatten)]
    pub run: RunArgs,
    /// Each stage multiplies the rate by this.
    #[arg(long, default_value_t = 1.5)]
    pub factor: f64,
    /// Stop once p99 delivery latency passes this.
    #[arg(long, value_parser = duration, default_value = "50ms")]
    pub p99_limit: Duration,
    /// Stop after this many stages at most.
    #[arg(long, default_value_t = 12)]
    pub max_stages: usize,
}

/// Flags of `idle`.
#[derive(Debug, Clone, Args)]
pub struct IdleArgs {
    /// Server endpoint(s); connections are spread over them.
    #[arg(long = "url", required = true, long_help = URL_HELP)]
    pub urls: Vec<String>,
    /// The protocol.
    #[command(flatten)]
    pub wire: ProtocolArgs,
    /// Connections to open.
    #[arg(long)]
    pub connections: usize,
    /// Connections per room.
    #[arg(long, default_value_t = 10)]
    pub users_per_room: usize,
    /// Handshakes in flight at once.
    #[arg(long, default_value_t = 256)]
    pub connect_concurrency: usize,
    /// Per connection, from TCP connect to the server's step 2.
    #[arg(long, value_parser = duration, default_value = "30s")]
    pub handshake_timeout: Duration,
    /// Wait after the last handshake before reading the server's memory.
    #[arg(long, value_parser = duration, default_value = "2s")]
    pub settle: Duration,
    /// Keep the connections open this long after measuring (they answer pings meanwhile).
    #[arg(long, value_parser = duration, default_value = "0s")]
    pub hold: Duration,
    /// Server process to read `VmRSS` of, before and after.
    #[arg(long)]
    pub server_pid: Option<u32>,
    /// Document names are `<prefix>-<room>`.
    #[arg(long)]
    pub doc_prefix: Option<String>,
    /// Print the report as JSON on stdout.
    #[arg(long)]
    pub json: bool,
    /// No live progress line.
    #[arg(long)]
    pub no_progress: bool,
}

/// Flags of `join`.
#[derive(Debug, Clone, Args)]
pub struct JoinArgs {
    /// Server endpoint(s); the seeder uses the first, joiners are spread over all.
    #[arg(long = "url", required = true, long_help = URL_HELP)]
    pub urls: Vec<String>,
    /// The protocol.
    #[command(flatten)]
    pub wire: ProtocolArgs,
    /// Size of the document's text, in MiB.
    #[arg(long, default_value_t = 10.0)]
    pub doc_size_mib: f64,
    /// Text per seeding update, in KiB (keep the frames under the server's message limit).
    #[arg(long, default_value_t = 512)]
    pub chunk_kib: usize,
    /// Clients that join after seeding.
    #[arg(long, default_value_t = 20)]
    pub joiners: usize,
    /// Joiners connect all at once instead of one after another.
    #[arg(long)]
    pub concurrent: bool,
    /// Per joiner, from TCP connect to the document being applied.
    #[arg(long, value_parser = duration, default_value = "120s")]
    pub handshake_timeout: Duration,
    /// How long the server may take to hold the whole seeded document.
    #[arg(long, value_parser = duration, default_value = "120s")]
    pub seed_timeout: Duration,
    /// Server process to sample memory of (peak during the joins).
    #[arg(long)]
    pub server_pid: Option<u32>,
    /// Document name (default: a fresh random one).
    #[arg(long)]
    pub doc: Option<String>,
    /// Print the report as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

/// Flags of `soak`.
#[derive(Debug, Clone, Args)]
pub struct SoakArgs {
    /// Server endpoint, e.g. `ws://127.0.0.1:8080/ws`.
    #[arg(long)]
    pub url: String,
    /// How long the churn runs.
    #[arg(long, value_parser = duration, default_value = "1h")]
    pub duration: Duration,
    /// Churn at the start that is not judged (caches, allocator arenas and pools fill up).
    #[arg(long, value_parser = duration, default_value = "5m")]
    pub warmup: Duration,
    /// Room slots; each slot's room closes after --room-life and the slot opens the next.
    #[arg(long, default_value_t = 20)]
    pub rooms: usize,
    /// Clients coming and going in each room slot.
    #[arg(long, default_value_t = 5)]
    pub users_per_room: usize,
    /// Of those, how many type while connected.
    #[arg(long, default_value_t = 1)]
    pub typists: usize,
    /// Updates per second per typing client.
    #[arg(long, default_value_t = 2.0)]
    pub rate: f64,
    /// Characters each update appends.
    #[arg(long, default_value_t = 16)]
    pub update_chars: usize,
    /// Presence (awareness) states per second per client; 0 turns presence off.
    #[arg(long, default_value_t = 1.0)]
    pub presence_rate: f64,
    /// Mean time a client stays (each visit lasts 50 % to 150 % of it).
    #[arg(long, value_parser = duration, default_value = "20s")]
    pub visit: Duration,
    /// How long a room has clients before they all leave and the slot moves on.
    #[arg(long, value_parser = duration, default_value = "90s")]
    pub room_life: Duration,
    /// Names a slot cycles through: a name comes back after the server unloaded it, so the
    /// room is loaded again and its document keeps growing.
    #[arg(long, default_value_t = 3)]
    pub names_per_room: usize,
    /// Time between samples.
    #[arg(long, value_parser = duration, default_value = "5s")]
    pub sample_every: Duration,
    /// After the clients left, how long to wait for the server to let go (longer than its
    /// --room-idle-timeout).
    #[arg(long, value_parser = duration, default_value = "2m")]
    pub settle: Duration,
    /// Server process to read RSS and open descriptors of (same machine).
    #[arg(long)]
    pub server_pid: Option<u32>,
    /// Prometheus endpoint with `chorus_rooms` and `chorus_connections` (default: /metrics on
    /// the --url's host and port).
    #[arg(long)]
    pub metrics_url: Option<String>,
    /// RSS growth after the warm-up that fails the soak, percent.
    #[arg(long, default_value_t = 5.0)]
    pub rss_growth_limit: f64,
    /// Descriptors above the baseline still accepted once the clients left.
    #[arg(long, default_value_t = 0)]
    pub fd_slack: u64,
    /// Per visit, from TCP connect to the server's step 2.
    #[arg(long, value_parser = duration, default_value = "10s")]
    pub handshake_timeout: Duration,
    /// Document names are `<prefix>-<slot>-<n>`; default: `soak-<random>`.
    #[arg(long)]
    pub doc_prefix: Option<String>,
    /// Where to write the samples (CSV).
    #[arg(long, default_value = "soak.csv")]
    pub csv: PathBuf,
    /// Where to write the chart (SVG).
    #[arg(long, default_value = "soak.svg")]
    pub chart: PathBuf,
    /// Print the report as JSON on stdout.
    #[arg(long)]
    pub json: bool,
    /// No live progress line.
    #[arg(long)]
    pub no_progress: bool,
}

/// Flags of `scenario`.
#[derive(Debug, Clone, Args)]
pub struct ScenarioArgs {
    /// The scenario file (TOML).
    pub file: PathBuf,
    /// Server endpoint(s), passed to every step.
    #[arg(long = "url")]
    pub urls: Vec<String>,
    /// Server process, passed to every step.
    #[arg(long)]
    pub server_pid: Option<u32>,
    /// Print each step's command line instead of running it.
    #[arg(long)]
    pub dry_run: bool,
    /// Extra flags appended to every step (after `--`), overriding the file.
    #[arg(last = true)]
    pub extra: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn later_flags_override_earlier_ones() {
        let cli = Cli::try_parse_from([
            "chorus-loadtest",
            "run",
            "--url",
            "ws://a/ws",
            "--rooms",
            "100",
            "--verify",
            "--rooms",
            "2",
            "--url",
            "ws://b/ws",
            "--duration",
            "1s",
            "--verify",
        ])
        .expect("parses");
        let Command::Run(args) = cli.command else {
            panic!("not run");
        };
        assert_eq!(args.rooms, 2);
        assert_eq!(args.urls, ["ws://a/ws", "ws://b/ws"]);
        assert_eq!(args.duration, Duration::from_secs(1));
        assert!(args.verify);
    }

    #[test]
    fn the_cli_is_well_formed() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}

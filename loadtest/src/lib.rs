//! `chorus-loadtest`: a load generator for Chorus and any other y-websocket or Hocuspocus server,
//! plus a bare relay yardstick to compare it against.
//!
//! Every simulated user is a real WebSocket client speaking the y-websocket protocol (or, with
//! `--protocol hocuspocus`, `@hocuspocus/provider`'s) through `chorus-protocol`; typists produce
//! real yrs updates from their own documents. Delivery latency is matched per update by the
//! `(client, clock)` of its first struct, which the receivers read from the update header
//! without decoding the rest, so the generator stays light.
//!
//! # Layout
//! - [`cli`]: the command line (`run`, `ramp`, `idle`, `join`, `soak`, `scenario`).
//! - [`scenario`]: scenario files (TOML) turned into command lines.
//! - [`client`]: one y-websocket or Hocuspocus connection and its handshake (tungstenite;
//!   `idle`, `join`).
//! - [`framing`]: how a client frames its messages for the protocol it speaks.
//! - [`wire`]: WebSocket frames read in place over a plain socket (the users of `run`, `soak`).
//! - [`incoming`]: a y-websocket or Hocuspocus message seen in place, without allocating.
//! - [`streaming`]: a joiner that checks a large step 2 as it streams in, without holding it.
//! - [`update_id`]: the `(client, clock)` of an update's first struct.
//! - [`ledger`]: what each sender sent and when; what each receiver got, for loss and duplicates.
//! - [`recorder`]: latency histograms, overall and per second.
//! - [`user`]: one simulated user of a `run`.
//! - [`run`], [`ramp`], [`idle`], [`join`], [`soak`]: the commands.
//! - [`shards`]: one single-threaded runtime per core for the users of a `run`.
//! - [`report`]: report types, text rendering and percentile summaries.
//! - [`chart`]: the latency-over-time SVG chart.
//! - [`progress`]: the live progress line.
//! - [`procfs`]: CPU time and memory from `/proc`, and the file-descriptor limit.
//! - [`relay`]: the bare relay yardstick (binary `bare-relay`).

pub mod chart;
pub mod cli;
pub mod client;
pub mod framing;
pub mod idle;
pub mod incoming;
pub mod join;
pub mod ledger;
pub mod procfs;
pub mod progress;
pub mod ramp;
pub mod recorder;
pub mod relay;
pub mod report;
pub mod run;
pub mod scenario;
pub mod shards;
pub mod soak;
pub mod streaming;
pub mod update_id;
pub mod user;
pub mod wire;

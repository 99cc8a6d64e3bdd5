//! The Chorus collaboration server as a library: a y-websocket endpoint that standard Yjs clients
//! use unchanged, one actor per document, snapshots in a [`chorus_store::SnapshotStore`].
//!
//! ```text
//! browser ─ws─▶ connection task ─RoomCmd─▶ room actor ─▶ SnapshotStore
//!                 (decode frames)            (yrs doc, awareness, fan-out)
//! ```
//!
//! # Layout
//! - [`config`]: [`Config`], every setting with its flag, env var and default.
//! - [`api`]: the HTTP API for servers under `/api/v1`.
//! - [`app`]: [`Application`]: binds, serves the router, shuts down gracefully.
//! - [`auth`]: tokens: who may read or write which document.
//! - [`ws`]: the WebSocket endpoint, one reader and one writer per connection.
//! - [`conn`]: connection ids, outboxes and close signals.
//! - [`room`]: the room actor, its handle and registry, document and awareness state.
//! - [`relay`]: scale-out through Redis pub/sub.
//! - [`limits`]: per-connection rates and presence rules.
//! - [`metrics`]: Prometheus metrics.
//! - [`export`]: a document's content as JSON.
//! - [`error`]: HTTP errors.
//! - [`telemetry`], [`shutdown`]: logging and signals.

pub mod api;
pub mod app;
pub mod auth;
pub mod config;
pub mod conn;
pub mod error;
pub mod export;
pub mod limits;
pub mod metrics;
pub mod relay;
pub mod room;
pub mod shutdown;
pub mod telemetry;
pub mod ws;

pub use app::Application;
pub use config::{Config, LogFormat};

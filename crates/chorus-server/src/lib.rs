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
//! - [`embed`]: [`Chorus`], the server as a part of another axum application.
//! - [`hooks`]: [`Hooks`], how that application takes part (auth, load, change, store...).
//! - [`app`]: [`Application`]: a standalone server: binds, serves, shuts down gracefully.
//! - [`auth`]: tokens: who may read or write which document.
//! - [`auth_callback`]: asking the application's backend instead.
//! - [`webhook`]: signed change notices to a URL.
//! - [`ws`]: the WebSocket endpoint, one task per connection.
//! - [`hocuspocus`]: the Hocuspocus endpoint, many documents per socket.
//! - `handshake`: the WebSocket opening handshake over hyper's upgrade.
//! - [`conn`]: connection ids, outboxes and close signals.
//! - [`room`]: the room actor, its handle and registry, document and awareness state.
//! - [`relay`]: scale-out through Redis pub/sub.
//! - [`limits`]: per-connection rates and presence rules.
//! - [`metrics`]: Prometheus metrics.
//! - [`export`]: a document's content as JSON.
//! - [`error`]: HTTP errors.
//! - [`telemetry`], [`shutdown`]: logging and signals.

#![warn(missing_docs)]

mod access;
pub mod api;
pub mod app;
pub mod auth;
pub mod auth_callback;
pub mod burst;
mod changes;
pub mod config;
pub mod conn;
pub mod embed;
pub mod error;
pub mod export;
mod handshake;
pub mod history;
pub mod hocuspocus;
pub mod hooks;
pub mod limits;
pub mod metrics;
pub mod quarantine;
pub mod relay;
pub mod room;
pub mod shutdown;
pub mod telemetry;
pub mod webhook;
pub mod ws;

pub use app::Application;
pub use config::{Config, LogFormat};
pub use embed::{Chorus, ChorusBuilder};
pub use hooks::Hooks;

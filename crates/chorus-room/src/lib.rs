//! One Chorus room without I/O: the yrs document, presence, held updates and every decision a
//! room makes. A call comes in (a client's message, another node's update, a deadline, an
//! append that completed); [`Effect`]s come out as values: frames to send, log appends, relay
//! publishes, snapshots to save, connections to close. The server's room task
//! (`chorus-server/src/room/actor.rs`), the tests and the fuzz targets all drive this same
//! [`RoomCore`]; none of them decides anything a room decides.
//!
//! # One update, from socket to peers, log and relay
//!
//! 1. **Frame** (`chorus-server/src/ws/connection.rs`, `check`, on the connection's task): the
//!    WebSocket message is decoded by [`chorus_protocol::Message::decode`]; lib0 framing lives
//!    in `chorus-protocol` only. Back-to-back updates of one connection are merged into one
//!    (`chorus-server/src/burst.rs`) and handed to the room in order (`room/handle.rs`,
//!    `Mailbox`, which waits when the room's inbox is full).
//! 2. **First validation pass** (same place): [`chorus_protocol::validate_update_v1`] checks the
//!    update on its own: well-formed, within the connection's size and count limits, no bytes
//!    that no Yjs or yrs encoder writes (`chorus-protocol/RULES.md`). It runs before the room
//!    so that malformed input costs only its own connection's task, in parallel across
//!    connections, and never queues in a room.
//! 3. **Into the room** ([`RoomCore::receive`]): a read-only peer gets permission-denied and
//!    nothing else happens.
//! 4. **Second validation pass, against the document** ([`doc::client`]): rules that need the
//!    document (type depth from the root, origins the document lacks, client ids new to the
//!    document, the document's size and pending structs). This is the only other pass: the
//!    first cannot know the document, the second must not repeat the first's work on bytes it
//!    already rejected. What follows a hole in the clocks is held per connection
//!    ([`held`]) and re-enters here once the clocks arrive.
//! 5. **Apply** ([`RoomDoc`]): yrs applies the update under `catch_unwind`; its observer frames
//!    the delta once, as a [`chorus_protocol::SyncFrame`] whose payload shares the frame's
//!    bytes.
//! 6. **Write ahead** (`write_ahead`): the payload is appended to the update log
//!    ([`Effect::Append`], group commit; the server's room task polls the append beside its
//!    commands, `chorus-server/src/room/actor.rs`, `start_append`); the frame waits for it.
//! 7. **Fan out** ([`RoomCore::appended`]): once durable, the same frame goes to every other
//!    connection ([`Effect::Broadcast`], into their outboxes: `room/actor/effects.rs`; each
//!    connection's task wakes for its outbox only, not its socket: `ws/socket_wake.rs`) and the
//!    same payload to the other nodes ([`Effect::Publish`], `chorus-server/src/relay/`), and
//!    durable acknowledgements asked for meanwhile ([`RoomCore::when_durable`]: Hocuspocus's
//!    sync status, Chorus's opt-in for y-websocket) go to their connections. The
//!    room is marked dirty; a snapshot ([`Effect::Save`]) follows `snapshot_interval` later
//!    and lets the log drop what it covers (`chorus_store::ops::save_compacted`).
//!
//! Updates from other nodes ([`RoomCore::remote`]) skip steps 1-4 (they passed them on their
//! node) and are not published again; server writes ([`RoomCore::write`]) skip 1-4 too and go
//! to every connection.
//!
//! # Layout
//! - [`room`]: [`RoomCore`], its relay side, deadlines and lifecycle.
//! - [`doc`]: the yrs document behind the few operations a room needs, panic-contained.
//! - [`held`]: client updates waiting for the clocks they build on.
//! - [`presence`]: the awareness table.
//! - `write_ahead`: what waits for the update log.
//! - [`effect`]: what the room asks its driver to do.
//! - [`activity`]: who edited how much, counted as updates are accepted.
//! - [`settings`], [`ids`], [`close_code`]: the room's settings, who is who, close codes.

#![warn(missing_docs)]

pub mod activity;
pub mod close_code;
pub mod doc;
pub mod effect;
#[cfg(feature = "fault-injection")]
pub mod fault;
pub mod held;
pub mod ids;
pub mod presence;
pub mod room;
pub mod settings;
mod write_ahead;

pub use activity::{Activity, Tally};
pub use doc::{DocError, DocLimits, RoomDoc};
pub use effect::{Counted, Effect, Publish, Snapshot, WriteRefused};
pub use held::HeldLimits;
pub use ids::{ConnId, Identity, NodeId};
pub use room::relay::Remote;
pub use room::{LoadError, RoomCore, Wake};
pub use settings::{RoomSettings, Surroundings};

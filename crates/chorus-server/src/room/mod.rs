//! Rooms: one task per loaded document, driving a [`chorus_room::RoomCore`].
//!
//! # Layout
//! - `actor`: the room task, a tokio driver: commands, deadlines, background writes.
//! - [`handle`]: [`RoomHandle`], the cloneable way in, and the commands it sends.
//! - [`registry`]: [`Rooms`], the one map of rooms: it finds or starts the room of a document,
//!   and delivers the relay's messages.
//!
//! What a room decides (the document, presence, held updates, write-ahead, deadlines) lives in
//! the `chorus-room` crate, re-exported here where the server's API names it.

mod actor;
pub mod handle;
pub mod registry;

pub(crate) use actor::versions as actor_versions;
pub use chorus_room::{DocLimits, RoomSettings, doc, held, presence};
pub use handle::{DeleteFailed, JoinRefused, RoomGone, RoomHandle};
pub use registry::Rooms;

/// Commands a room buffers. When full, connections wait to hand over their messages, which
/// pushes back on their sockets; 256 lets a burst from many clients queue without that.
pub const ROOM_INBOX_CAPACITY: usize = 256;

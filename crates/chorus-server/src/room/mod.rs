//! Rooms: one actor task per loaded document.
//!
//! # Layout
//! - [`actor`]: the room task, owner of the document and the awareness table.
//! - [`handle`]: [`RoomHandle`], the cloneable way in, and the commands it sends.
//! - [`registry`]: [`Rooms`], which finds or starts the room of a document.
//! - [`doc`]: the yrs document behind the few operations a room needs, panic-contained.
//! - `durable`: write-ahead to the update log with group commit.
//! - [`held`]: client updates waiting for the clocks they build on.
//! - [`presence`]: the awareness table.

pub mod actor;
pub mod doc;
mod durable;
pub mod handle;
pub mod held;
pub mod presence;
pub mod registry;

pub use actor::RoomSettings;
pub use doc::DocLimits;
pub use handle::{JoinRefused, RoomGone, RoomHandle};
pub use registry::Rooms;

/// Commands a room buffers. When full, connections wait to hand over their messages, which
/// pushes back on their sockets; 256 lets a burst from many clients queue without that.
pub const ROOM_INBOX_CAPACITY: usize = 256;

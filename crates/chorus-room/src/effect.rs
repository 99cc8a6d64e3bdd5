//! What a room asks its driver to do: every side effect of a decision, as a value.

use std::borrow::Cow;

use bytes::Bytes;

use crate::ids::ConnId;

/// One thing the driver must do for the room, in the order the room emitted them.
#[derive(Debug, PartialEq)]
pub enum Effect<R> {
    /// Queue `frame` on one connection's outbox. If the outbox is full or gone, tell the room
    /// ([`RoomCore::unreachable`](crate::RoomCore::unreachable)).
    Send {
        /// The connection.
        conn: ConnId,
        /// A whole y-websocket message.
        frame: Bytes,
    },
    /// Queue the same `frame` on every connection but `except` (shared bytes, not copies).
    Broadcast {
        /// A whole y-websocket message.
        frame: Bytes,
        /// The connection the change came from, which already has it.
        except: Option<ConnId>,
    },
    /// Close a connection with an RFC 6455 code. The room has already forgotten it.
    Close {
        /// The connection.
        conn: ConnId,
        /// See [`close_code`](crate::close_code).
        code: u16,
        /// Short reason for the close frame (at most 123 bytes on the wire).
        reason: Cow<'static, str>,
    },
    /// Append these Yjs v1 updates to the document's update log as one batch, then report
    /// with [`RoomCore::appended`](crate::RoomCore::appended). The room emits one at a time.
    Append(Vec<Bytes>),
    /// Publish to the other nodes holding the room.
    Publish(Publish),
    /// Answer a server-side write ([`RoomCore::write`](crate::RoomCore::write)).
    Answer(R, Result<(), WriteRefused>),
    /// Save this snapshot, then report with
    /// [`RoomCore::snapshot_saved`](crate::RoomCore::snapshot_saved). At most one is in
    /// flight.
    Save(Snapshot),
    /// Tell change listeners the document changed; this is its whole state.
    Announce(Bytes),
    /// Count something for the operators (metrics).
    Count(Counted),
}

/// What a room tells the other nodes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Publish {
    /// A Yjs v1 update (the same bytes the log and the peers got).
    Update(Bytes),
    /// An awareness update with this node's own clients' states.
    Awareness(Bytes),
    /// This room's state vector (v1): answer with what it lacks.
    SyncRequest(Bytes),
    /// The document was deleted: drop your room without saving.
    Deleted,
}

/// A snapshot to write: the document's whole state, covering the update log through
/// `covered` (0: nothing of the log).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    /// The whole document as one Yjs v1 update.
    pub state: Bytes,
    /// Last log record the state is sure to hold; the log may be truncated through it.
    pub covered: u64,
}

/// Events worth a metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Counted {
    /// A client update was refused by this rule and its sender closed.
    Refused(&'static str),
    /// A client update (or part) is held for clocks the document lacks.
    Held,
    /// A connection was closed for falling behind.
    SlowPeer,
}

/// A server-side write the document refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct WriteRefused(pub String);

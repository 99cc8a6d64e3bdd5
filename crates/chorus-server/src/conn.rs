//! What a room knows about one connection: its id, its outbox and how to close it.

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use tokio::sync::{mpsc, watch};

/// Identifies one WebSocket connection for the lifetime of the process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnId(u64);

impl ConnId {
    /// A process-wide unique id.
    pub fn next() -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        Self(NEXT.fetch_add(1, Ordering::Relaxed))
    }
}

impl fmt::Display for ConnId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// RFC 6455 close codes Chorus sends.
pub mod close_code {
    /// The server is shutting down; the client should reconnect (to another node).
    pub const GOING_AWAY: u16 = 1001;
    /// The frame was not a binary y-websocket message.
    pub const UNSUPPORTED_DATA: u16 = 1003;
    /// The message could not be decoded or applied.
    pub const INVALID_PAYLOAD: u16 = 1007;
    /// The message broke a rule (e.g. a text frame, a read-only write).
    pub const POLICY: u16 = 1008;
    /// The message exceeded `--max-message-bytes`.
    pub const TOO_BIG: u16 = 1009;
    /// The token expired while connected (y-websocket 3.1 stops reconnecting on 4400-4499).
    pub const FORBIDDEN: u16 = 4403;
    /// The document was deleted (`DELETE /api/v1/docs/{doc}`). In the 4400-4499 range so that
    /// clients do not reconnect: one that did would upload its copy and bring the document back.
    pub const DOCUMENT_DELETED: u16 = 4404;
    /// The room failed; the client should reconnect, which reloads it.
    pub const INTERNAL_ERROR: u16 = 1011;
    /// The client fell behind or the room is busy; it resynchronises when it reconnects.
    pub const TRY_AGAIN_LATER: u16 = 1013;
}

/// Why and how a connection is to be closed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloseReason {
    /// RFC 6455 close code, see [`close_code`].
    pub code: u16,
    /// Short human-readable reason (at most 123 bytes on the wire).
    pub reason: Cow<'static, str>,
}

/// A one-shot "close this connection" signal that the room, the reader and shutdown can all
/// raise; the first reason wins and the connection's writer sends it as the close frame.
#[derive(Debug, Clone)]
pub struct CloseSignal {
    tx: Arc<watch::Sender<Option<CloseReason>>>,
}

impl Default for CloseSignal {
    fn default() -> Self {
        Self::new()
    }
}

impl CloseSignal {
    /// A signal that has not been raised.
    pub fn new() -> Self {
        Self {
            tx: Arc::new(watch::Sender::new(None)),
        }
    }

    /// Asks for the connection to be closed with `code`; ignored if a reason was already given.
    pub fn close(&self, code: u16, reason: impl Into<Cow<'static, str>>) {
        let reason = CloseReason {
            code,
            reason: reason.into(),
        };
        self.tx.send_if_modified(|current| {
            if current.is_some() {
                return false;
            }
            *current = Some(reason);
            true
        });
    }

    /// The reason given, if any.
    pub fn reason(&self) -> Option<CloseReason> {
        self.tx.borrow().clone()
    }

    /// Waits until a reason is given.
    ///
    /// # Cancel safety
    /// Cancel safe: it only observes the signal.
    pub async fn closed(&self) -> CloseReason {
        let mut rx = self.tx.subscribe();
        loop {
            if let Some(reason) = rx.borrow_and_update().clone() {
                return reason;
            }
            if rx.changed().await.is_err() {
                // Unreachable while `self` holds the sender; treat it as a shutdown.
                return CloseReason {
                    code: close_code::GOING_AWAY,
                    reason: Cow::Borrowed("closing"),
                };
            }
        }
    }
}

/// A connection as a room sees it.
#[derive(Debug, Clone)]
pub struct Peer {
    /// Frames for this connection's writer; bounded by `--outbox-capacity`. When it is full the
    /// room disconnects the peer rather than wait for it or drop a frame.
    pub outbox: mpsc::Sender<Bytes>,
    /// Closes the connection.
    pub close: CloseSignal,
    /// False for read-only tokens: the room applies none of this peer's updates.
    pub can_write: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_first_reason_wins() {
        let signal = CloseSignal::new();
        assert_eq!(signal.reason(), None);
        signal.close(close_code::TRY_AGAIN_LATER, "slow");
        signal.close(close_code::GOING_AWAY, "shutdown");
        let reason = signal.closed().await;
        assert_eq!(reason.code, close_code::TRY_AGAIN_LATER);
        assert_eq!(signal.reason(), Some(reason));
    }
}

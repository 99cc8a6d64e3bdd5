//! Why a frame or payload could not be decoded.

/// A decoding failure. Every variant means the peer sent bytes no conforming client produces;
/// the server answers by closing that one connection (close code 1007).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtocolError {
    /// The input ended inside a value.
    #[error("message truncated: needed {needed} more bytes, {remaining} left")]
    UnexpectedEnd {
        /// Bytes the value announced or needed.
        needed: u64,
        /// Bytes that were left.
        remaining: usize,
    },
    /// A variable-length integer was longer than 8 bytes or above 2^53 − 1 (or above `u32::MAX`
    /// where a clock was expected).
    #[error("integer out of range")]
    VarIntTooLarge,
    /// A declared element count cannot fit in the bytes that follow it.
    #[error("{count} elements announced but only {remaining} bytes follow")]
    CountTooLarge {
        /// The declared count.
        count: u64,
        /// Bytes that were left.
        remaining: usize,
    },
    /// A string was not valid UTF-8.
    #[error("string is not valid UTF-8")]
    InvalidUtf8,
    /// The first varint of the frame is not a y-websocket message type.
    #[error("unknown message type {0}")]
    UnknownMessageType(u64),
    /// A sync message whose sub-type is not step 1, step 2 or update.
    #[error("unknown sync message type {0}")]
    UnknownSyncType(u64),
    /// An auth message whose sub-type is not permission denied or granted.
    #[error("unknown auth message type {0}")]
    UnknownAuthType(u64),
    /// Bytes left after a complete message: y-websocket sends one message per frame.
    #[error("{0} bytes after the end of the message")]
    TrailingBytes(usize),
}

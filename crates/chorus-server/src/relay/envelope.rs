//! What nodes tell each other about a room, as bincode on a Redis pub/sub channel.

use bytes::Bytes;
use serde::{Deserialize, Serialize};

/// Bumped whenever the envelope layout changes; nodes ignore envelopes of another version, so a
/// rolling upgrade degrades to "no relay between old and new" rather than to garbage.
pub const ENVELOPE_VERSION: u8 = 1;

/// Largest envelope a node will decode: bincode preallocates from length prefixes, so untrusted
/// bytes get a hard ceiling (a whole-document sync reply fits well below it).
const MAX_ENVELOPE_BYTES: usize = 256 * 1024 * 1024;

pub use chorus_room::NodeId;

/// One message between nodes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Envelope {
    /// [`ENVELOPE_VERSION`] of the sender.
    pub version: u8,
    /// The node that sent it; a node drops its own envelopes.
    pub origin: NodeId,
    /// When it was sent (Unix milliseconds), for the relay-lag metric.
    pub sent_at_ms: u64,
    /// What it says.
    pub body: Body,
}

/// The kinds of inter-node messages.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Body {
    /// A Yjs v1 update the origin accepted (or a diff answering a [`Body::SyncRequest`]).
    Update(Bytes),
    /// Awareness entries that changed on the origin (additions, renewals, removals).
    Awareness(Bytes),
    /// "This is my state vector (v1); send what I lack": sent when a node loads a room, after its
    /// Redis connection comes back, and periodically, because pub/sub may drop messages.
    SyncRequest(Bytes),
    /// The origin is alive (on the node channel, not a room's).
    Heartbeat,
    /// The document was deleted on the origin: drop the room without saving. Added last, so
    /// the other variants keep their encoding and [`ENVELOPE_VERSION`] stays; a node that
    /// predates it logs it as undecodable and ignores it.
    Deleted,
    /// A Hocuspocus stateless message for the document's clients on every node. Added after
    /// [`Body::Deleted`] for the same reason.
    Stateless(String),
}

impl Envelope {
    /// An envelope from `origin`.
    pub fn new(origin: NodeId, body: Body) -> Self {
        let sent_at_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |since| since.as_millis() as u64);
        Self {
            version: ENVELOPE_VERSION,
            origin,
            sent_at_ms,
            body,
        }
    }

    /// Encodes with bincode's standard configuration.
    pub fn encode(&self) -> Vec<u8> {
        // Encoding into a Vec cannot fail: every field is plain data.
        bincode::serde::encode_to_vec(self, bincode::config::standard()).unwrap_or_default()
    }

    /// Decodes bytes received from Redis.
    ///
    /// # Errors
    /// Malformed bytes, a size above the limit, trailing bytes or another envelope version.
    pub fn decode(bytes: &[u8]) -> Result<Self, EnvelopeError> {
        let config = bincode::config::standard().with_limit::<MAX_ENVELOPE_BYTES>();
        let (envelope, read): (Self, usize) = bincode::serde::decode_from_slice(bytes, config)?;
        if read != bytes.len() {
            return Err(EnvelopeError::Trailing(bytes.len() - read));
        }
        if envelope.version != ENVELOPE_VERSION {
            return Err(EnvelopeError::Version(envelope.version));
        }
        Ok(envelope)
    }
}

/// Why bytes from Redis are not an envelope this node reads.
#[derive(Debug, thiserror::Error)]
pub enum EnvelopeError {
    /// Not bincode of an [`Envelope`], or past the size limit.
    #[error("malformed envelope: {0}")]
    Malformed(#[from] bincode::error::DecodeError),
    /// Bytes after the envelope.
    #[error("{0} trailing bytes")]
    Trailing(usize),
    /// Another [`ENVELOPE_VERSION`]: a node of another release.
    #[error("envelope version {0}")]
    Version(u8),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_refuses_garbage() {
        let envelope = Envelope::new(NodeId(42), Body::Update(Bytes::from_static(&[0, 0])));
        assert_eq!(
            Envelope::decode(&envelope.encode()).expect("decodes"),
            envelope
        );
        let mut bytes = envelope.encode();
        bytes.push(0);
        assert!(Envelope::decode(&bytes).is_err());
        assert!(Envelope::decode(&[0xff; 3]).is_err());
        let deleted = Envelope::new(NodeId(42), Body::Deleted);
        assert_eq!(
            Envelope::decode(&deleted.encode()).expect("decodes"),
            deleted
        );
        // A 2^40-byte payload announced in a few bytes.
        assert!(Envelope::decode(&[1, 42, 0, 0, 0xfd, 0, 0, 0, 0, 0, 1, 0, 0]).is_err());
    }
}

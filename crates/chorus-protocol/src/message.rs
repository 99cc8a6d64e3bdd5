//! Top-level y-websocket messages: one message per binary WebSocket frame.
//!
//! ```text
//! frame := varUint(type) • body
//!   0 sync            varUint(syncType) • varUint8Array(payload)
//!   1 awareness       varUint8Array(awarenessUpdate)
//!   2 auth            varUint(authType) • [varString(reason) if authType = 0]
//!   3 query-awareness (empty)
//! 100 durable         varUint(id)        (a Chorus extension, see [`Message::Durable`])
//! ```
//!
//! Decoding is zero-copy: payloads are [`Bytes`] slices of the frame they came from.

use bytes::Bytes;

use crate::ProtocolError;
use crate::awareness::AwarenessUpdate;
use crate::lib0::{Decoder, var_uint_len, write_var_bytes, write_var_string, write_var_uint};
use crate::state_vector::StateVector;

/// `messageSync` in y-websocket.
pub const MSG_SYNC: u64 = 0;
/// `messageAwareness` in y-websocket.
pub const MSG_AWARENESS: u64 = 1;
/// `messageAuth` in y-websocket.
pub const MSG_AUTH: u64 = 2;
/// `messageQueryAwareness` in y-websocket.
pub const MSG_QUERY_AWARENESS: u64 = 3;

/// Chorus's durable acknowledgement for y-websocket clients ([`Message::Durable`]). Far from
/// y-protocols' own numbers, so a future y-protocols type cannot collide with it.
pub const MSG_DURABLE: u64 = 100;

/// Sync step 1: the sender's state vector.
pub const SYNC_STEP1: u64 = 0;
/// Sync step 2: the update the receiver of a step 1 is missing.
pub const SYNC_STEP2: u64 = 1;
/// An incremental document update.
pub const SYNC_UPDATE: u64 = 2;

/// `messagePermissionDenied` in y-protocols' auth.
pub const AUTH_PERMISSION_DENIED: u64 = 0;
/// yrs' `PERMISSION_GRANTED`; JavaScript clients ignore it.
pub const AUTH_PERMISSION_GRANTED: u64 = 1;

/// One decoded y-websocket message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// Document synchronisation.
    Sync(SyncMessage),
    /// Presence: an encoded awareness update.
    Awareness(AwarenessUpdate),
    /// Authorisation outcome (server to client).
    Auth(AuthMessage),
    /// A request for every awareness state the receiver knows.
    QueryAwareness,
    /// Chorus's opt-in durable acknowledgement (type 100). From a client: "tell me when
    /// everything I sent before this is stored"; the server answers with the same `id` once
    /// every update it applied before the request is in its update log (under its `--fsync`
    /// policy). Stock y-websocket clients never send it, so they never get one.
    Durable(u64),
}

/// The sync sub-protocol (message type 0).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SyncMessage {
    /// "Here is what I have": answered with a [`SyncMessage::Step2`].
    Step1(StateVector),
    /// "Here is what you are missing": a Yjs v1 update, not decoded here.
    Step2(Bytes),
    /// An incremental Yjs v1 update, not decoded here.
    Update(Bytes),
}

/// The auth sub-protocol (message type 2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthMessage {
    /// The client may not do what it tried; y-websocket only logs the reason.
    PermissionDenied {
        /// Human-readable reason.
        reason: String,
    },
    /// Sent by yrs peers; ignored by JavaScript clients.
    PermissionGranted,
}

impl Message {
    /// Decodes exactly one message from a whole frame.
    ///
    /// # Errors
    /// Any malformation, an unknown type, or bytes left over after the message
    /// ([`ProtocolError::TrailingBytes`]: y-websocket sends one message per frame).
    pub fn decode(frame: &Bytes) -> Result<Self, ProtocolError> {
        let mut decoder = Decoder::new(frame);
        let message = match decoder.read_var_uint()? {
            MSG_SYNC => {
                let sync_type = decoder.read_var_uint()?;
                let payload = decoder.read_var_bytes()?;
                let sync = match sync_type {
                    SYNC_STEP1 => SyncMessage::Step1(StateVector::decode(payload)?),
                    SYNC_STEP2 => SyncMessage::Step2(frame.slice_ref(payload)),
                    SYNC_UPDATE => SyncMessage::Update(frame.slice_ref(payload)),
                    other => return Err(ProtocolError::UnknownSyncType(other)),
                };
                Message::Sync(sync)
            }
            MSG_AWARENESS => {
                let payload = decoder.read_var_bytes()?;
                Message::Awareness(AwarenessUpdate::decode(&frame.slice_ref(payload))?)
            }
            MSG_AUTH => match decoder.read_var_uint()? {
                AUTH_PERMISSION_DENIED => Message::Auth(AuthMessage::PermissionDenied {
                    reason: decoder.read_var_string()?.to_owned(),
                }),
                AUTH_PERMISSION_GRANTED => Message::Auth(AuthMessage::PermissionGranted),
                other => return Err(ProtocolError::UnknownAuthType(other)),
            },
            MSG_QUERY_AWARENESS => Message::QueryAwareness,
            MSG_DURABLE => Message::Durable(decoder.read_var_uint()?),
            other => return Err(ProtocolError::UnknownMessageType(other)),
        };
        if !decoder.is_empty() {
            return Err(ProtocolError::TrailingBytes(decoder.remaining()));
        }
        Ok(message)
    }

    /// Encodes this message as one frame.
    pub fn encode(&self) -> Bytes {
        match self {
            Message::Sync(SyncMessage::Step1(sv)) => sync_frame(SYNC_STEP1, &sv.encode()),
            Message::Sync(SyncMessage::Step2(update)) => sync_frame(SYNC_STEP2, update),
            Message::Sync(SyncMessage::Update(update)) => sync_frame(SYNC_UPDATE, update),
            Message::Awareness(update) => awareness_frame(&update.encode()),
            Message::Auth(AuthMessage::PermissionDenied { reason }) => {
                permission_denied_frame(reason)
            }
            Message::Auth(AuthMessage::PermissionGranted) => {
                Bytes::from_static(&[MSG_AUTH as u8, AUTH_PERMISSION_GRANTED as u8])
            }
            Message::QueryAwareness => Bytes::from_static(&[MSG_QUERY_AWARENESS as u8]),
            Message::Durable(id) => durable_frame(*id),
        }
    }
}

impl From<SyncMessage> for Message {
    fn from(sync: SyncMessage) -> Self {
        Message::Sync(sync)
    }
}

/// Frames an already-encoded payload as a sync message of `sync_type`
/// ([`SYNC_STEP1`] with a v1 state vector, [`SYNC_STEP2`] or [`SYNC_UPDATE`] with a v1 update).
///
/// The server uses this directly with bytes yrs produced, so a large update is copied once.
pub fn sync_frame(sync_type: u64, payload: &[u8]) -> Bytes {
    let mut out = Vec::with_capacity(2 + var_uint_len(payload.len() as u64) + payload.len());
    write_var_uint(&mut out, MSG_SYNC);
    write_var_uint(&mut out, sync_type);
    write_var_bytes(&mut out, payload);
    out.into()
}

/// A sync message encoded once: the frame clients get and, sharing its bytes, the Yjs update it
/// carries, for the update log and the other nodes. The payload is the frame's tail, so taking
/// it needs no parsing and no copy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncFrame {
    frame: Bytes,
    payload_len: usize,
}

impl SyncFrame {
    /// Frames `payload` as a sync message of `sync_type` (see [`sync_frame`]).
    pub fn new(sync_type: u64, payload: &[u8]) -> Self {
        Self {
            frame: sync_frame(sync_type, payload),
            payload_len: payload.len(),
        }
    }

    /// The whole y-websocket frame.
    pub fn frame(&self) -> &Bytes {
        &self.frame
    }

    /// The payload: a v1 update for step 2 and update messages, a v1 state vector for step 1.
    pub fn payload(&self) -> Bytes {
        self.frame.slice(self.frame.len() - self.payload_len..)
    }
}

/// Frames an already-encoded awareness update.
pub fn awareness_frame(update: &[u8]) -> Bytes {
    let mut out = Vec::with_capacity(1 + var_uint_len(update.len() as u64) + update.len());
    write_var_uint(&mut out, MSG_AWARENESS);
    write_var_bytes(&mut out, update);
    out.into()
}

/// The durable acknowledgement `id` ([`Message::Durable`]).
pub fn durable_frame(id: u64) -> Bytes {
    let mut out = Vec::with_capacity(1 + var_uint_len(id));
    write_var_uint(&mut out, MSG_DURABLE);
    write_var_uint(&mut out, id);
    out.into()
}

/// The y-protocols permission-denied message, which y-websocket clients log.
pub fn permission_denied_frame(reason: &str) -> Bytes {
    let mut out = Vec::with_capacity(3 + reason.len());
    write_var_uint(&mut out, MSG_AUTH);
    write_var_uint(&mut out, AUTH_PERMISSION_DENIED);
    write_var_string(&mut out, reason);
    out.into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sync_frame_shares_its_payload() {
        let payload = vec![7u8; 300];
        let framed = SyncFrame::new(SYNC_UPDATE, &payload);
        assert_eq!(framed.frame(), &sync_frame(SYNC_UPDATE, &payload));
        assert_eq!(framed.payload().as_ref(), payload.as_slice());
        match Message::decode(framed.frame()) {
            Ok(Message::Sync(SyncMessage::Update(update))) => assert_eq!(update, framed.payload()),
            other => panic!("decoded as {other:?}"),
        }
    }
    use crate::awareness::AwarenessEntry;

    fn decode(bytes: &[u8]) -> Result<Message, ProtocolError> {
        Message::decode(&Bytes::copy_from_slice(bytes))
    }

    /// Byte strings from the golden transcript between y-websocket 3.1.0 and the reference server.
    #[test]
    fn golden_transcript_decodes() {
        assert_eq!(
            decode(&[0x00, 0x00, 0x03, 0x01, 0x05, 0x02]),
            Ok(Message::Sync(SyncMessage::Step1(StateVector::from_iter([
                (5, 2)
            ]))))
        );
        let client_step2 = [
            0x00, 0x01, 0x0c, 0x01, 0x01, 0x05, 0x00, 0x04, 0x01, 0x01, 0x74, 0x02, 0x61, 0x62,
            0x00,
        ];
        let Ok(Message::Sync(SyncMessage::Step2(update))) = decode(&client_step2) else {
            panic!("client step 2 did not decode");
        };
        assert_eq!(update.as_ref(), &client_step2[3..]);
        assert_eq!(
            decode(&[0x01, 0x06, 0x01, 0x05, 0x00, 0x02, 0x7b, 0x7d]),
            Ok(Message::Awareness(AwarenessUpdate {
                entries: vec![AwarenessEntry {
                    client: 5,
                    clock: 0,
                    state: Bytes::from_static(b"{}"),
                }]
            }))
        );
        assert_eq!(
            decode(&[0x02, 0x00, 0x02, b'n', b'o']),
            Ok(Message::Auth(AuthMessage::PermissionDenied {
                reason: "no".into()
            }))
        );
        assert_eq!(decode(&[0x03]), Ok(Message::QueryAwareness));
    }

    #[test]
    fn the_durable_acknowledgement_round_trips() {
        // 100 is a one-byte varint (< 128); 300 takes two.
        assert_eq!(durable_frame(300).as_ref(), [100, 0xac, 0x02]);
        assert_eq!(decode(&[100, 0xac, 0x02]), Ok(Message::Durable(300)));
        assert!(decode(&[100]).is_err(), "the id is required");
        assert_eq!(decode(&[100, 1, 0]), Err(ProtocolError::TrailingBytes(1)));
    }

    #[test]
    fn server_frames_match_the_reference_server() {
        assert_eq!(
            sync_frame(SYNC_STEP1, &[0x00]).as_ref(),
            [0x00, 0x00, 0x01, 0x00]
        );
        assert_eq!(
            sync_frame(SYNC_STEP2, &[0x00, 0x00]).as_ref(),
            [0x00, 0x01, 0x02, 0x00, 0x00]
        );
        assert_eq!(
            permission_denied_frame("denied").as_ref(),
            [0x02, 0x00, 0x06, b'd', b'e', b'n', b'i', b'e', b'd']
        );
    }

    #[test]
    fn malformed_frames_are_errors() {
        assert_eq!(
            decode(&[]),
            Err(ProtocolError::UnexpectedEnd {
                needed: 1,
                remaining: 0
            })
        );
        assert!(decode(&[0x00]).is_err());
        assert!(decode(&[0x00, 0x02, 0xff, 0xff, 0xff, 0xff, 0x0f]).is_err());
        assert_eq!(
            decode(&[0x00, 0x03, 0x00]),
            Err(ProtocolError::UnknownSyncType(3))
        );
        assert_eq!(decode(&[0x07]), Err(ProtocolError::UnknownMessageType(7)));
        assert_eq!(decode(&[0x03, 0x03]), Err(ProtocolError::TrailingBytes(1)));
        // A truncated state vector inside an otherwise well-framed step 1.
        assert!(decode(&[0x00, 0x00, 0x02, 0x02, 0x01]).is_err());
    }
}

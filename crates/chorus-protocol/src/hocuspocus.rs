//! The Hocuspocus framing (`@hocuspocus/provider` 2.x and later), with no I/O.
//!
//! ```text
//! frame := varString(address) • varUint(type) • payload
//!   0 sync              as y-websocket's sync body
//!   1 awareness         varUint8Array(awarenessUpdate)
//!   2 auth              varUint(authType) • ...
//!                         0 token            varString(token) [• varString(providerVersion), v4]
//!                         1 permission denied varString(reason)
//!                         2 authenticated     varString("readonly" | "read-write")
//!   3 query-awareness   (empty)
//!   4 sync-reply        as sync; the receiver does not answer with its own step 1
//!   5 stateless         varString(payload)
//!   6 broadcast-stateless  server-internal; never accepted from a client
//!   7 close             varString(reason)
//!   8 sync-status       varUint(1 applied | 0 refused)
//! ping := [9]   pong := [10]   (bare one-byte frames, no address)
//! ```
//!
//! The address is the document name, or `name + "\0" + sessionId` when a v4 provider uses
//! session awareness. Types 0, 1 and 3 carry exactly a y-websocket message after the address,
//! so they are decoded by [`Message::decode`] on a slice of the frame: one lib0 implementation,
//! one set of checks, whichever protocol the client speaks.

use bytes::Bytes;

use crate::ProtocolError;
use crate::lib0::{Decoder, var_uint_len, write_var_string, write_var_uint};
use crate::message::{MSG_AWARENESS, MSG_QUERY_AWARENESS, MSG_SYNC, Message};

/// Auth messages (token, permission denied, authenticated).
pub const MSG_AUTH: u64 = 2;
/// Like sync, without the receiver's own step 1 in answer.
pub const MSG_SYNC_REPLY: u64 = 4;
/// A string for the server (and, in Chorus, the document's other clients).
pub const MSG_STATELESS: u64 = 5;
/// Server-internal fan-out of a stateless message; a client sending it is refused.
pub const MSG_BROADCAST_STATELESS: u64 = 6;
/// The provider detaches from a document; from the server, the document's session ended.
pub const MSG_CLOSE: u64 = 7;
/// The server's answer to an update: 1 applied (in Chorus: durable), 0 refused.
pub const MSG_SYNC_STATUS: u64 = 8;
/// A bare one-byte ping frame, answered with [`PONG`].
pub const PING: u8 = 9;
/// A bare one-byte pong frame.
pub const PONG: u8 = 10;

/// Auth sub-type: the client's token; from the server with no body, "send a fresh token".
pub const AUTH_TOKEN: u64 = 0;
/// Auth sub-type: the server refused the token, with a reason.
pub const AUTH_PERMISSION_DENIED: u64 = 1;
/// Auth sub-type: the server accepted the token, with the scope granted.
pub const AUTH_AUTHENTICATED: u64 = 2;

/// Longest document address accepted, in bytes: a document name (at most 512 bytes) plus a
/// session id. Longer ones cannot be a document of this server.
pub const MAX_ADDRESS_BYTES: usize = 1024;

/// One decoded frame from a Hocuspocus client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Incoming {
    /// A bare ping: answer [`PONG`].
    Ping,
    /// A bare pong.
    Pong,
    /// A message for one document.
    Addressed {
        /// The document name, or `name\0sessionId`.
        address: String,
        /// What it says.
        message: HocusMessage,
    },
}

/// A message for one document on a Hocuspocus socket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HocusMessage {
    /// Sync, awareness or query-awareness: exactly a y-websocket message (a sync reply is
    /// read as sync; the server never answers a client's step 2 with a step 1 anyway).
    Y(Message),
    /// The client's token, and the provider's version (v4 sends it; v3 does not).
    Token {
        /// The token, empty when the provider has none.
        token: String,
        /// `@hocuspocus/provider`'s version, when it says.
        version: Option<String>,
    },
    /// A stateless string for the server.
    Stateless(String),
    /// A server-internal message a client may not send.
    BroadcastStateless,
    /// The provider detaches from the document.
    Close,
}

impl Incoming {
    /// Decodes one whole WebSocket frame.
    ///
    /// # Errors
    /// Any malformation, an address longer than [`MAX_ADDRESS_BYTES`], a type or auth
    /// sub-type a client does not send (sync status, auth answers), or bytes left over.
    pub fn decode(frame: &Bytes) -> Result<Self, ProtocolError> {
        match frame.as_ref() {
            [PING] => return Ok(Self::Ping),
            [PONG] => return Ok(Self::Pong),
            _ => {}
        }
        let mut decoder = Decoder::new(frame);
        let address = decoder.read_var_string()?;
        if address.len() > MAX_ADDRESS_BYTES {
            return Err(ProtocolError::CountTooLarge {
                count: address.len() as u64,
                remaining: MAX_ADDRESS_BYTES,
            });
        }
        let address = address.to_owned();
        let body_start = decoder.position();
        let message = match decoder.read_var_uint()? {
            MSG_SYNC | MSG_AWARENESS | MSG_QUERY_AWARENESS => {
                return Ok(Self::Addressed {
                    address,
                    message: HocusMessage::Y(Message::decode(&frame.slice(body_start..))?),
                });
            }
            MSG_SYNC_REPLY => {
                // Re-framed as sync: rare (no provider sends it), so the copy does not matter.
                let mut body = Vec::with_capacity(frame.len() - body_start);
                write_var_uint(&mut body, MSG_SYNC);
                body.extend_from_slice(decoder.read_rest());
                return Ok(Self::Addressed {
                    address,
                    message: HocusMessage::Y(Message::decode(&Bytes::from(body))?),
                });
            }
            MSG_AUTH => match decoder.read_var_uint()? {
                AUTH_TOKEN => {
                    let token = decoder.read_var_string()?.to_owned();
                    let version = if decoder.is_empty() {
                        None
                    } else {
                        Some(decoder.read_var_string()?.to_owned())
                    };
                    HocusMessage::Token { token, version }
                }
                other => return Err(ProtocolError::UnknownAuthType(other)),
            },
            MSG_STATELESS => HocusMessage::Stateless(decoder.read_var_string()?.to_owned()),
            MSG_BROADCAST_STATELESS => {
                // Refused whatever follows: the payload is not read.
                decoder.read_rest();
                HocusMessage::BroadcastStateless
            }
            // The provider's close message carries no reason; a reason is tolerated.
            MSG_CLOSE => {
                if !decoder.is_empty() {
                    decoder.read_var_string()?;
                }
                HocusMessage::Close
            }
            other => return Err(ProtocolError::UnknownMessageType(other)),
        };
        if !decoder.is_empty() {
            return Err(ProtocolError::TrailingBytes(decoder.remaining()));
        }
        Ok(Self::Addressed { address, message })
    }
}

/// The document name an address stands for: the part before a `\0` (v4 session awareness).
pub fn document_of(address: &str) -> &str {
    address.split_once('\0').map_or(address, |(doc, _)| doc)
}

/// Prefixes a y-websocket-shaped body (`varUint(type) • payload`) with `address`: the
/// Hocuspocus frame of the same message.
pub fn addressed(address: &str, body: &[u8]) -> Bytes {
    let mut out =
        Vec::with_capacity(var_uint_len(address.len() as u64) + address.len() + body.len());
    write_var_string(&mut out, address);
    out.extend_from_slice(body);
    out.into()
}

/// The body of a sync-status message: `applied` (durable, in Chorus) or refused.
pub fn sync_status_body(applied: bool) -> Bytes {
    Bytes::from_static(if applied {
        &[MSG_SYNC_STATUS as u8, 1]
    } else {
        &[MSG_SYNC_STATUS as u8, 0]
    })
}

/// The body of a stateless message carrying `payload`.
pub fn stateless_body(payload: &str) -> Bytes {
    let mut out = Vec::with_capacity(1 + var_uint_len(payload.len() as u64) + payload.len());
    write_var_uint(&mut out, MSG_STATELESS);
    write_var_string(&mut out, payload);
    out.into()
}

/// "Authenticated", with the scope the provider reports: `readonly` or `read-write`.
pub fn authenticated_frame(address: &str, read_only: bool) -> Bytes {
    let mut body = Vec::new();
    write_var_uint(&mut body, MSG_AUTH);
    write_var_uint(&mut body, AUTH_AUTHENTICATED);
    write_var_string(&mut body, if read_only { "readonly" } else { "read-write" });
    addressed(address, &body)
}

/// "Permission denied", with a reason the provider passes to `onAuthenticationFailed`.
pub fn permission_denied_frame(address: &str, reason: &str) -> Bytes {
    let mut body = Vec::new();
    write_var_uint(&mut body, MSG_AUTH);
    write_var_uint(&mut body, AUTH_PERMISSION_DENIED);
    write_var_string(&mut body, reason);
    addressed(address, &body)
}

/// The server ended this document's session; the provider reports a close with `reason`.
pub fn close_frame(address: &str, reason: &str) -> Bytes {
    let mut body = Vec::new();
    write_var_uint(&mut body, MSG_CLOSE);
    write_var_string(&mut body, reason);
    addressed(address, &body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SyncMessage;

    fn decode(bytes: &[u8]) -> Result<Incoming, ProtocolError> {
        Incoming::decode(&Bytes::copy_from_slice(bytes))
    }

    fn addressed_message(address: &str, message: HocusMessage) -> Incoming {
        Incoming::Addressed {
            address: address.into(),
            message,
        }
    }

    /// Bytes as `@hocuspocus/provider` 4.8.0 writes them (read from its `OutgoingMessages`).
    #[test]
    fn provider_frames_decode() {
        // Token "t" with version "4.8.0" for document "d".
        let token = [1, b'd', 2, 0, 1, b't', 5, b'4', b'.', b'8', b'.', b'0'];
        assert_eq!(
            decode(&token),
            Ok(addressed_message(
                "d",
                HocusMessage::Token {
                    token: "t".into(),
                    version: Some("4.8.0".into())
                }
            ))
        );
        // v3 sends no version.
        assert_eq!(
            decode(&[1, b'd', 2, 0, 0]),
            Ok(addressed_message(
                "d",
                HocusMessage::Token {
                    token: String::new(),
                    version: None
                }
            ))
        );
        // Sync step 1 with an empty state vector.
        assert!(matches!(
            decode(&[1, b'd', 0, 0, 1, 0]),
            Ok(Incoming::Addressed {
                message: HocusMessage::Y(Message::Sync(SyncMessage::Step1(_))),
                ..
            })
        ));
        assert_eq!(
            decode(&[1, b'd', 5, 2, b'h', b'i']),
            Ok(addressed_message("d", HocusMessage::Stateless("hi".into())))
        );
        assert_eq!(
            decode(&[1, b'd', 7]),
            Ok(addressed_message("d", HocusMessage::Close))
        );
        assert_eq!(
            decode(&[1, b'd', 3]),
            Ok(addressed_message(
                "d",
                HocusMessage::Y(Message::QueryAwareness)
            ))
        );
        assert_eq!(decode(&[PING]), Ok(Incoming::Ping));
        assert_eq!(decode(&[PONG]), Ok(Incoming::Pong));
    }

    #[test]
    fn a_sync_reply_reads_as_sync() {
        assert!(matches!(
            decode(&[1, b'd', 4, 2, 2, 0, 0]),
            Ok(Incoming::Addressed {
                message: HocusMessage::Y(Message::Sync(SyncMessage::Update(_))),
                ..
            })
        ));
    }

    #[test]
    fn session_addresses_name_their_document() {
        assert_eq!(document_of("notes\0abc"), "notes");
        assert_eq!(document_of("notes"), "notes");
    }

    #[test]
    fn broadcast_stateless_is_recognised_to_be_refused() {
        assert_eq!(
            decode(&[1, b'd', 6, 1, b'x']),
            Ok(addressed_message("d", HocusMessage::BroadcastStateless))
        );
    }

    #[test]
    fn malformed_frames_are_errors() {
        assert!(decode(&[]).is_err());
        // An address longer than the frame.
        assert!(decode(&[9, b'd']).is_err());
        assert!(decode(&[1, b'd']).is_err(), "no type");
        assert_eq!(
            decode(&[1, b'd', 8, 1]),
            Err(ProtocolError::UnknownMessageType(8)),
            "sync status is the server's"
        );
        assert_eq!(
            decode(&[1, b'd', 2, 2, 0]),
            Err(ProtocolError::UnknownAuthType(2))
        );
        assert_eq!(
            decode(&[1, b'd', 5, 1, b'x', 0]),
            Err(ProtocolError::TrailingBytes(1))
        );
        assert!(decode(&[1, 0xff, 3]).is_err(), "address not UTF-8");
        let mut long = Vec::new();
        write_var_string(&mut long, &"a".repeat(MAX_ADDRESS_BYTES + 1));
        long.push(3);
        assert!(decode(&long).is_err());
    }

    #[test]
    fn server_frames_match_the_reference_server() {
        assert_eq!(
            authenticated_frame("d", true).as_ref(),
            [
                1, b'd', 2, 2, 8, b'r', b'e', b'a', b'd', b'o', b'n', b'l', b'y'
            ]
        );
        assert_eq!(
            permission_denied_frame("d", "no").as_ref(),
            [1, b'd', 2, 1, 2, b'n', b'o']
        );
        assert_eq!(
            addressed("d", &sync_status_body(true)).as_ref(),
            [1, b'd', 8, 1]
        );
        assert_eq!(
            addressed("d", &stateless_body("hi")).as_ref(),
            [1, b'd', 5, 2, b'h', b'i']
        );
        assert_eq!(close_frame("d", "x").as_ref(), [1, b'd', 7, 1, b'x']);
    }
}

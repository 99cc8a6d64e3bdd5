//! How a simulated client puts its messages on the wire for the protocol it speaks.
//!
//! Every client builds y-websocket-shaped messages (`varUint(type) • payload`, through
//! `chorus-protocol`). A y-websocket client sends them as they are, on a socket per document
//! whose URL names the document. A Hocuspocus client (`@hocuspocus/provider`) connects to the
//! socket URL as given, sends a token message first, and prefixes every message with the
//! document name: `varString(document) • varUint(type) • payload`, where the sync, awareness
//! and query-awareness bodies are exactly y-websocket's ([`chorus_protocol::hocuspocus`]).

use anyhow::bail;
use bytes::Bytes;
use chorus_protocol::hocuspocus::{
    self as hocus, AUTH_AUTHENTICATED, AUTH_PERMISSION_DENIED, AUTH_TOKEN, MSG_AUTH, MSG_CLOSE,
    MSG_SYNC_REPLY, PING, PONG,
};
use chorus_protocol::lib0::{Decoder, write_var_string, write_var_uint};
use chorus_protocol::message::{MSG_AWARENESS, MSG_QUERY_AWARENESS, MSG_SYNC};

use crate::cli::Protocol;
use crate::client::doc_url;

/// The provider version a Hocuspocus client announces with its token when it answers bare
/// pings: v4 sends one (v3 does not), and a server may then ping it with bare ping frames.
pub const PROVIDER_VERSION: &str = "4.8.0";

/// One client's framing: its protocol, document and (Hocuspocus) token.
#[derive(Debug, Clone)]
pub struct Framing {
    protocol: Protocol,
    doc: String,
    token: String,
    /// `varString(doc)` for Hocuspocus; empty for y-websocket.
    prefix: Vec<u8>,
}

/// A frame from the server, seen by [`Framing::unwrap`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unwrapped {
    /// A y-websocket-shaped message (for Hocuspocus: the body after the address, a sync reply
    /// re-framed as sync).
    Message(Bytes),
    /// A bare Hocuspocus ping: answer with [`Framing::pong`].
    Ping,
    /// Nothing for the sync: authenticated, a sync status, stateless, a pong.
    Skip,
}

impl Framing {
    /// The framing of a client of `doc` speaking `protocol`, with `token` for a Hocuspocus
    /// server (one without authentication takes any, the empty one included).
    pub fn new(protocol: Protocol, doc: &str, token: &str) -> Self {
        let mut prefix = Vec::new();
        if protocol == Protocol::Hocuspocus {
            write_var_string(&mut prefix, doc);
        }
        Self {
            protocol,
            doc: doc.to_owned(),
            token: token.to_owned(),
            prefix,
        }
    }

    /// The protocol.
    pub fn protocol(&self) -> Protocol {
        self.protocol
    }

    /// The document.
    pub fn doc(&self) -> &str {
        &self.doc
    }

    /// What goes before every message: the address (Hocuspocus) or nothing.
    pub fn prefix(&self) -> &[u8] {
        &self.prefix
    }

    /// The socket URL for the endpoint `base`: y-websocket appends the document name, as
    /// `WebsocketProvider` does; Hocuspocus uses `base` as is, as the provider does.
    pub fn socket_url(&self, base: &str) -> String {
        match self.protocol {
            Protocol::YWebsocket => doc_url(base, &self.doc),
            Protocol::Hocuspocus => base.to_owned(),
        }
    }

    /// The frame carrying the y-websocket-shaped `body`.
    pub fn frame(&self, body: &[u8]) -> Bytes {
        if self.prefix.is_empty() {
            return Bytes::copy_from_slice(body);
        }
        let mut out = Vec::with_capacity(self.prefix.len() + body.len());
        out.extend_from_slice(&self.prefix);
        out.extend_from_slice(body);
        out.into()
    }

    /// Hocuspocus: the token message a provider sends before anything else, with `version`
    /// when it should say one (see [`PROVIDER_VERSION`]). `None` for y-websocket.
    pub fn token_frame(&self, version: Option<&str>) -> Option<Bytes> {
        if self.protocol != Protocol::Hocuspocus {
            return None;
        }
        let mut body = Vec::new();
        write_var_uint(&mut body, MSG_AUTH);
        write_var_uint(&mut body, AUTH_TOKEN);
        write_var_string(&mut body, &self.token);
        if let Some(version) = version {
            write_var_string(&mut body, version);
        }
        Some(self.frame(&body))
    }

    /// The answer to a bare ping.
    pub fn pong() -> Bytes {
        Bytes::from_static(&[PONG])
    }

    /// What a frame from the server holds for a client that syncs.
    ///
    /// # Errors
    /// A malformed Hocuspocus frame, one for another document, a permission denied or a
    /// close of our document (for y-websocket, frames pass through unchecked).
    pub fn unwrap(&self, frame: &Bytes) -> anyhow::Result<Unwrapped> {
        if self.protocol == Protocol::YWebsocket {
            return Ok(Unwrapped::Message(frame.clone()));
        }
        match frame.as_ref() {
            [PING] => return Ok(Unwrapped::Ping),
            [PONG] => return Ok(Unwrapped::Skip),
            _ => {}
        }
        let mut decoder = Decoder::new(frame);
        let address = decoder.read_var_string()?;
        if hocus::document_of(address) != self.doc {
            bail!("a frame for another document ({address:?})");
        }
        let body_at = decoder.position();
        Ok(match decoder.read_var_uint()? {
            MSG_SYNC | MSG_AWARENESS | MSG_QUERY_AWARENESS => {
                Unwrapped::Message(frame.slice(body_at..))
            }
            MSG_SYNC_REPLY => {
                let mut body = Vec::with_capacity(frame.len() - body_at);
                write_var_uint(&mut body, MSG_SYNC);
                body.extend_from_slice(decoder.read_rest());
                Unwrapped::Message(body.into())
            }
            MSG_AUTH => match decoder.read_var_uint()? {
                AUTH_PERMISSION_DENIED => {
                    bail!("permission denied: {}", decoder.read_var_string()?)
                }
                AUTH_TOKEN | AUTH_AUTHENTICATED => Unwrapped::Skip,
                other => bail!("unknown auth message type {other}"),
            },
            MSG_CLOSE => bail!("the server closed the document's session"),
            _ => Unwrapped::Skip,
        })
    }
}

#[cfg(test)]
mod tests {
    use chorus_protocol::hocuspocus::{addressed, permission_denied_frame, sync_status_body};
    use chorus_protocol::message::{SYNC_STEP1, sync_frame};

    use super::*;

    #[test]
    fn y_websocket_frames_are_the_messages() {
        let framing = Framing::new(Protocol::YWebsocket, "d", "t");
        assert_eq!(framing.socket_url("ws://h/ws"), "ws://h/ws/d");
        assert_eq!(framing.frame(&[0, 0, 1, 0]).as_ref(), [0, 0, 1, 0]);
        assert_eq!(framing.token_frame(None), None);
    }

    #[test]
    fn hocuspocus_frames_carry_the_document() {
        let framing = Framing::new(Protocol::Hocuspocus, "d", "t");
        assert_eq!(framing.socket_url("ws://h/hocuspocus"), "ws://h/hocuspocus");
        assert_eq!(framing.frame(&[0, 0, 1, 0]).as_ref(), [1, b'd', 0, 0, 1, 0]);
        // As `@hocuspocus/provider` 4.8.0 writes a token (see chorus_protocol::hocuspocus).
        assert_eq!(
            framing
                .token_frame(Some("4.8.0"))
                .expect("hocuspocus")
                .as_ref(),
            [1, b'd', 2, 0, 1, b't', 5, b'4', b'.', b'8', b'.', b'0']
        );
        let step1 = sync_frame(SYNC_STEP1, &[0]);
        assert_eq!(
            framing.unwrap(&addressed("d", &step1)).expect("ok"),
            Unwrapped::Message(step1.clone())
        );
        // A sync reply (how `@hocuspocus/server` sends its step 1) reads as sync.
        let mut reply = vec![1, b'd', 4];
        reply.extend_from_slice(&step1[1..]);
        assert_eq!(
            framing.unwrap(&Bytes::from(reply)).expect("ok"),
            Unwrapped::Message(step1)
        );
        assert_eq!(
            framing
                .unwrap(&addressed("d", &sync_status_body(true)))
                .expect("ok"),
            Unwrapped::Skip
        );
        assert_eq!(
            framing.unwrap(&Bytes::from_static(&[PING])).expect("ok"),
            Unwrapped::Ping
        );
        assert!(framing.unwrap(&permission_denied_frame("d", "no")).is_err());
        assert!(
            framing
                .unwrap(&addressed("e", &sync_status_body(true)))
                .is_err()
        );
    }
}

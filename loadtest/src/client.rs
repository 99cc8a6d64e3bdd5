//! One y-websocket (or Hocuspocus) connection: connect, run the sync handshake, send and read
//! frames.
//!
//! The handshake follows what `WebsocketProvider` does: on open it sends its sync step 1 at once
//! (it does not wait for the server's), answers the server's step 1 with a step 2, and counts as
//! synced when the server's step 2 has arrived. We also insist on the server's step 1, which
//! Chorus always sends first, so a server that skips it shows up as a failed handshake. A
//! Hocuspocus client sends its token first and frames every message for its document
//! ([`crate::framing`]); `@hocuspocus/server` sends its step 1 as a sync reply, which counts.

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use bytes::Bytes;
use chorus_protocol::message::{SYNC_STEP1, SYNC_STEP2, sync_frame};
use chorus_protocol::{Message, SyncMessage};
use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use yrs::updates::decoder::Decode;
use yrs::updates::encoder::Encode;
use yrs::{Doc, ReadTxn, StateVector, Transact};

use crate::framing::{Framing, Unwrapped};

/// A client WebSocket.
pub type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// The empty Yjs update: what a client without a document answers to a step 1.
pub const EMPTY_UPDATE: &[u8] = &[0x00, 0x00];

/// Read buffer for connections that stay idle or carry small frames. tungstenite's default
/// (128 KiB) would make the generator, not the server, the memory hog with 20,000 sockets.
const SMALL_READ_BUFFER: usize = 8 * 1024;

/// Largest frame we accept: above the biggest document a scenario joins (20 MB plus framing).
const MAX_MESSAGE_BYTES: usize = 256 * 1024 * 1024;

/// The WebSocket URL of document `doc` on the server endpoint `base` (e.g. `ws://host:port/ws`),
/// the way `WebsocketProvider` builds it: `base` without trailing `/`, then `/`, then the name.
pub fn doc_url(base: &str, doc: &str) -> String {
    format!("{}/{doc}", base.trim_end_matches('/'))
}

/// WebSocket settings for simulated clients.
pub fn ws_config() -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(SMALL_READ_BUFFER)
        .max_message_size(Some(MAX_MESSAGE_BYTES))
        .max_frame_size(Some(MAX_MESSAGE_BYTES))
}

/// A synced connection.
#[derive(Debug)]
pub struct Synced {
    /// The socket, ready for updates.
    pub ws: Ws,
    /// From starting the TCP connect to receiving the server's step 2.
    pub elapsed: Duration,
    /// From starting the TCP connect to the WebSocket upgrade completing.
    pub connect_elapsed: Duration,
    /// The server's step 2 (the document as the server had it).
    pub step2: Bytes,
    /// Messages that arrived during the handshake and are not part of it (awareness, updates),
    /// in order, for the caller to handle (y-websocket-shaped whatever the protocol).
    pub early: Vec<Bytes>,
    /// Bytes of every frame sent and received during the handshake.
    pub bytes_sent: u64,
    /// See `bytes_sent`.
    pub bytes_received: u64,
}

/// Connects to `url` and completes the sync handshake within `timeout`, framed by `framing`.
///
/// `doc` is the client's own document, if it keeps one: its state vector goes into our step 1
/// and its diff into the step 2 we answer the server with. Without one we act as an empty
/// client. The server's step 2 is not applied here; that is the caller's choice.
///
/// # Errors
/// Connect failure, a close or malformed frame before the handshake completes, or the timeout.
pub async fn connect_and_sync(
    url: &str,
    framing: &Framing,
    doc: Option<&Doc>,
    timeout: Duration,
) -> anyhow::Result<Synced> {
    let started = Instant::now();
    handshake_within(timeout, handshake(url, framing, doc, started)).await
}

/// Runs a handshake under `timeout`, which fails it with the same words everywhere.
///
/// # Errors
/// The handshake's own error, or the timeout.
pub async fn handshake_within<T>(
    timeout: Duration,
    handshake: impl Future<Output = anyhow::Result<T>>,
) -> anyhow::Result<T> {
    tokio::time::timeout(timeout, handshake)
        .await
        .with_context(|| {
            format!(
                "handshake not completed within {}",
                humantime::format_duration(timeout)
            )
        })?
}

async fn handshake(
    url: &str,
    framing: &Framing,
    doc: Option<&Doc>,
    started: Instant,
) -> anyhow::Result<Synced> {
    let (mut ws, _response) =
        tokio_tungstenite::connect_async_with_config(url, Some(ws_config()), true)
            .await
            .with_context(|| format!("connecting to {url}"))?;
    let connect_elapsed = started.elapsed();
    let mut bytes_sent = 0;
    // No provider version: these clients read only during the handshake, so they answer
    // WebSocket pings (tungstenite does) but not bare Hocuspocus ones.
    if let Some(token) = framing.token_frame(None) {
        bytes_sent += token.len() as u64;
        ws.feed(WsMessage::Binary(token))
            .await
            .context("sending the token")?;
    }
    let step1 = framing.frame(&sync_frame(SYNC_STEP1, &local_state_vector(doc)));
    bytes_sent += step1.len() as u64;
    ws.send(WsMessage::Binary(step1))
        .await
        .context("sending step 1")?;

    let mut bytes_received = 0;
    let mut early = Vec::new();
    let mut got_step1 = false;
    let mut step2 = None;
    while !(got_step1 && step2.is_some()) {
        let frame = match ws.next().await {
            Some(Ok(WsMessage::Binary(frame))) => frame,
            Some(Ok(WsMessage::Close(close))) => {
                bail!("server closed the connection during the handshake: {close:?}")
            }
            Some(Ok(_)) => continue, // pings are answered by tungstenite; text is not y-websocket
            Some(Err(e)) => return Err(e).context("reading during the handshake"),
            None => bail!("connection ended during the handshake"),
        };
        bytes_received += frame.len() as u64;
        let frame = match framing.unwrap(&frame)? {
            Unwrapped::Message(message) => message,
            Unwrapped::Ping => {
                ws.send(WsMessage::Binary(Framing::pong()))
                    .await
                    .context("sending a pong")?;
                continue;
            }
            Unwrapped::Skip => continue,
        };
        match Message::decode(&frame) {
            Ok(Message::Sync(SyncMessage::Step1(sv))) => {
                got_step1 = true;
                let reply = framing.frame(&step2_reply(doc, &sv.encode())?);
                bytes_sent += reply.len() as u64;
                ws.send(WsMessage::Binary(reply))
                    .await
                    .context("sending step 2")?;
            }
            Ok(Message::Sync(SyncMessage::Step2(update))) if step2.is_none() => {
                step2 = Some(update)
            }
            Ok(_) => early.push(frame),
            Err(e) => bail!("malformed frame from the server during the handshake: {e}"),
        }
    }
    Ok(Synced {
        ws,
        elapsed: started.elapsed(),
        connect_elapsed,
        step2: step2.unwrap_or_default(),
        early,
        bytes_sent,
        bytes_received,
    })
}

/// Our state vector, v1-encoded (`00` when we have no document).
pub fn local_state_vector(doc: Option<&Doc>) -> Vec<u8> {
    match doc {
        Some(doc) => doc.transact().state_vector().encode_v1(),
        None => vec![0x00],
    }
}

/// The step 2 frame answering a peer's step 1 whose v1 state vector is `remote_sv`.
///
/// # Errors
/// `remote_sv` does not decode (it came from `chorus-protocol`'s decoder, so it should).
pub fn step2_reply(doc: Option<&Doc>, remote_sv: &[u8]) -> anyhow::Result<Bytes> {
    let update = match doc {
        Some(doc) => {
            let sv =
                StateVector::decode_v1(remote_sv).context("decoding the server's state vector")?;
            doc.transact().encode_state_as_update_v1(&sv)
        }
        None => EMPTY_UPDATE.to_vec(),
    };
    Ok(sync_frame(SYNC_STEP2, &update))
}

/// Applies a v1 update from the server to `doc`.
///
/// # Errors
/// The update does not decode or does not integrate.
pub fn apply_update(doc: &Doc, update: &[u8]) -> anyhow::Result<()> {
    let update = yrs::Update::decode_v1(update).context("decoding an update")?;
    doc.transact_mut()
        .apply_update(update)
        .context("applying an update")?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doc_urls_match_websocket_provider() {
        assert_eq!(doc_url("ws://h:1/ws", "room-1"), "ws://h:1/ws/room-1");
        assert_eq!(doc_url("ws://h:1/ws/", "a/b"), "ws://h:1/ws/a/b");
    }

    #[test]
    fn an_empty_client_answers_with_the_empty_update() {
        let reply = step2_reply(None, &[0x00]).expect("reply");
        assert_eq!(reply.as_ref(), [0x00, 0x01, 0x02, 0x00, 0x00]);
    }
}

//! The socket's writing half: one task that sends what the socket's documents and the reader
//! queue for it, in order, batched, and the close frame last.

use bytes::Bytes;
use futures_util::SinkExt;
use futures_util::stream::SplitSink;
use tokio::sync::mpsc;
use tungstenite::Message as WsMessage;
use tungstenite::protocol::frame::CloseFrame;
use tungstenite::protocol::frame::coding::CloseCode;

use crate::conn::CloseReason;
use crate::handshake::Socket;
use crate::ws::{WRITE_BATCH, feed, truncate_reason};

/// Frames queued for one socket. When it is full, the documents' forwarders wait; their room
/// outboxes then fill and the room closes the session of a client too slow to read (1013),
/// as for a y-websocket connection.
pub(super) const SOCKET_QUEUE: usize = 256;

/// Something to write.
#[derive(Debug)]
pub(super) enum Out {
    /// A whole Hocuspocus frame.
    Frame(Bytes),
    /// A WebSocket ping (the socket's liveness check).
    Ping,
    /// The close frame; nothing is written after it.
    Close(CloseReason),
}

/// Writes until the close frame is sent, the queue's senders are gone, or a write fails.
pub(super) async fn write(mut sink: SplitSink<Socket, WsMessage>, mut queue: mpsc::Receiver<Out>) {
    while let Some(first) = queue.recv().await {
        let mut next = Some(first);
        let mut written = 0;
        while let Some(out) = next.take() {
            let result = match out {
                Out::Frame(frame) => feed(&mut sink, frame).await,
                Out::Ping => sink.feed(WsMessage::Ping(Bytes::new())).await,
                Out::Close(reason) => {
                    let frame = CloseFrame {
                        code: CloseCode::from(reason.code),
                        reason: truncate_reason(&reason.reason).into(),
                    };
                    let _ = sink.send(WsMessage::Close(Some(frame))).await;
                    return;
                }
            };
            if result.is_err() {
                return;
            }
            written += 1;
            if written < WRITE_BATCH {
                next = queue.try_recv().ok();
            }
        }
        if sink.flush().await.is_err() {
            return;
        }
    }
}

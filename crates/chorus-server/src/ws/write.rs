//! Writing to the socket: batches of the outbox's frames, large messages in fragments, and the
//! close frame.

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use tungstenite::Message as WsMessage;
use tungstenite::protocol::frame::coding::{CloseCode, Data, OpCode};
use tungstenite::protocol::frame::{CloseFrame, Frame};

use crate::conn::{CloseReason, OutboxReceiver, close_code};
use crate::handshake::Socket;
use crate::metrics;

use super::{FRAGMENT_BYTES, WRITE_BATCH};

/// Sends the close frame. Frames already queued are still delivered when the server shuts down,
/// so clients get everything the room accepted before it said goodbye.
pub(super) async fn goodbye(
    socket: &mut Socket,
    outbox: &mut OutboxReceiver,
    reason: &CloseReason,
) -> Result<(), tungstenite::Error> {
    if reason.code == close_code::GOING_AWAY {
        while let Some(frame) = outbox.try_recv() {
            feed(socket, frame).await?;
        }
    }
    socket
        .send(WsMessage::Close(Some(CloseFrame {
            code: CloseCode::from(reason.code),
            reason: truncate_reason(&reason.reason).into(),
        })))
        .await?;
    // RFC 6455 §7.1.1: the server closes TCP once the client has answered. Closing first, with
    // the client's last frames unread, makes the kernel reset the connection, and a client
    // that is still sending may then never read the close code. The caller bounds the wait.
    while let Some(Ok(frame)) = socket.next().await {
        if matches!(frame, WsMessage::Close(_)) {
            break;
        }
    }
    Ok(())
}

pub(super) async fn send_batch(
    socket: &mut Socket,
    first: Bytes,
    outbox: &mut OutboxReceiver,
) -> Result<(), tungstenite::Error> {
    let metrics = metrics::get();
    metrics.message_out(&first);
    feed(socket, first).await?;
    for _ in 1..WRITE_BATCH {
        match outbox.try_recv() {
            Some(frame) => {
                metrics.message_out(&frame);
                feed(socket, frame).await?;
            }
            None => break,
        }
    }
    socket.flush().await
}

/// Queues one binary message: as one frame, or, past [`FRAGMENT_BYTES`], as a first frame and
/// continuation frames (RFC 6455 §5.4; browsers and tungstenite reassemble them), so the write
/// buffer never holds more than about [`WRITE_BUFFER_BYTES`] + one fragment of it.
pub(crate) async fn feed<S>(socket: &mut S, mut message: Bytes) -> Result<(), tungstenite::Error>
where
    S: futures_util::Sink<WsMessage, Error = tungstenite::Error> + Unpin,
{
    if message.len() <= FRAGMENT_BYTES {
        return socket.feed(WsMessage::Binary(message)).await;
    }
    let mut opcode = OpCode::Data(Data::Binary);
    while !message.is_empty() {
        let fragment = message.split_to(FRAGMENT_BYTES.min(message.len()));
        let last = message.is_empty();
        socket
            .feed(WsMessage::Frame(Frame::message(fragment, opcode, last)))
            .await?;
        opcode = OpCode::Data(Data::Continue);
    }
    Ok(())
}

/// RFC 6455 limits a close reason to 123 bytes.
pub(crate) fn truncate_reason(reason: &str) -> &str {
    let mut end = reason.len().min(123);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    &reason[..end]
}

#[cfg(test)]
mod tests {
    use super::truncate_reason;

    #[test]
    fn close_reasons_fit_in_a_control_frame() {
        assert_eq!(truncate_reason("short"), "short");
        let long = "é".repeat(100);
        let cut = truncate_reason(&long);
        assert!(cut.len() <= 123 && long.starts_with(cut));
    }
}

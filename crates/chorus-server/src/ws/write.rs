//! Writing to the socket: batches of the outbox's frames, large messages in fragments, and the
//! close frame.
//!
//! Small frames go through tungstenite, which copies them into its write buffer so that a batch
//! leaves in one system call. Larger messages are written to the socket straight from their
//! shared bytes ([`write_direct`]): tungstenite's write buffer never shrinks, so one step 2 of a
//! 40 KB document kept a 64 KiB buffer alive in every connection that joined it, for the
//! connection's whole life (what made the soak's memory grow as its documents grew), and a copy
//! per connection of a large message costs its `memcpy` besides.

use bytes::{Buf, Bytes};
use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tungstenite::Message as WsMessage;
use tungstenite::protocol::frame::coding::{CloseCode, Data, OpCode};
use tungstenite::protocol::frame::{CloseFrame, Frame};

use crate::conn::{CloseReason, OutboxReceiver, close_code};
use crate::handshake::Socket;
use crate::metrics;

use super::{FRAGMENT_BYTES, WRITE_BATCH};

/// Messages up to this size are copied into tungstenite's write buffer and batched; larger ones
/// are written from their own bytes. Updates and awareness messages are far smaller, so a busy
/// room's frames still leave in batches, and the write buffer stays about this size per frame
/// batched.
const DIRECT_BYTES: usize = 1024;

/// Fragment size of the messages written directly: nothing is copied, so fragments only bound
/// what one frame asks of a client (tungstenite's default limit is 16 MiB a frame) and cost one
/// system call each.
const DIRECT_FRAGMENT_BYTES: usize = 64 * 1024;

/// RFC 6455 §5.2 opcodes of the frames written directly.
const OPCODE_CONTINUATION: u8 = 0x0;
const OPCODE_BINARY: u8 = 0x2;

/// Sends the close frame. Frames already queued are still delivered when the server shuts down,
/// so clients get everything the room accepted before it said goodbye.
pub(super) async fn goodbye(
    socket: &mut Socket,
    outbox: &mut OutboxReceiver,
    reason: &CloseReason,
) -> Result<(), tungstenite::Error> {
    if reason.code == close_code::GOING_AWAY {
        while let Some(frame) = outbox.try_recv() {
            send(socket, frame).await?;
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
    send(socket, first).await?;
    for _ in 1..WRITE_BATCH {
        match outbox.try_recv() {
            Some(frame) => {
                metrics.message_out(&frame);
                send(socket, frame).await?;
            }
            None => break,
        }
    }
    socket.flush().await
}

/// Queues one binary message in tungstenite's write buffer if it is small; writes it to the
/// socket itself, after what tungstenite holds, if it is not.
async fn send(socket: &mut Socket, message: Bytes) -> Result<(), tungstenite::Error> {
    if message.len() <= DIRECT_BYTES {
        return socket.feed(WsMessage::Binary(message)).await;
    }
    // Frames tungstenite buffered, and a pong it owes, go first: frames stay in order.
    socket.flush().await?;
    write_direct(socket.get_mut(), message).await?;
    Ok(())
}

/// Writes one binary message to `io` as server frames (unmasked), in fragments of
/// [`DIRECT_FRAGMENT_BYTES`], each header and payload in one vectored write.
async fn write_direct<W: AsyncWrite + Unpin>(
    io: &mut W,
    mut message: Bytes,
) -> std::io::Result<()> {
    let mut opcode = OPCODE_BINARY;
    loop {
        let fragment = message.split_to(DIRECT_FRAGMENT_BYTES.min(message.len()));
        let last = message.is_empty();
        let (header, header_len) = frame_header(fragment.len(), opcode, last);
        io.write_all_buf(&mut (&header[..header_len]).chain(fragment))
            .await?;
        if last {
            return Ok(());
        }
        opcode = OPCODE_CONTINUATION;
    }
}

/// The header of an unmasked frame of `len` payload bytes (RFC 6455 §5.2), and how many of the
/// ten bytes it uses.
fn frame_header(len: usize, opcode: u8, fin: bool) -> ([u8; 10], usize) {
    let mut header = [0u8; 10];
    header[0] = if fin { 0x80 } else { 0 } | opcode;
    let used = match (u8::try_from(len), u16::try_from(len)) {
        (Ok(short), _) if short < 126 => {
            header[1] = short;
            2
        }
        (_, Ok(medium)) => {
            header[1] = 126;
            header[2..4].copy_from_slice(&medium.to_be_bytes());
            4
        }
        _ => {
            header[1] = 127;
            // usize is at most 64 bits on every target Rust supports.
            header[2..10].copy_from_slice(&(len as u64).to_be_bytes());
            10
        }
    };
    (header, used)
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
    use super::*;
    use tungstenite::protocol::frame::FrameHeader;
    use tungstenite::protocol::frame::coding::Data;

    /// Headers written by hand match tungstenite's for every length encoding, and a message
    /// written directly reads back, fragment by fragment, with tungstenite's own frame parser.
    #[tokio::test]
    async fn direct_frames_are_what_tungstenite_writes_and_reads() {
        for len in [0, 1, 125, 126, 127, 65_535, 65_536, 70_000] {
            for (opcode, fin) in [(OPCODE_BINARY, true), (OPCODE_CONTINUATION, false)] {
                let (header, used) = frame_header(len, opcode, fin);
                let kind = if opcode == OPCODE_BINARY {
                    OpCode::Data(Data::Binary)
                } else {
                    OpCode::Data(Data::Continue)
                };
                let frame = Frame::message(Bytes::from(vec![7; len]), kind, fin);
                let mut expected = Vec::new();
                frame.format(&mut expected).expect("formats");
                assert_eq!(&header[..used], &expected[..used], "len {len}");
                assert_eq!(expected.len(), used + len, "len {len}");
            }
        }
        let message: Bytes = (0..DIRECT_FRAGMENT_BYTES * 2 + 10)
            .map(|i| u8::try_from(i % 251).expect("below 251"))
            .collect();
        let mut written = Vec::new();
        write_direct(&mut written, message.clone())
            .await
            .expect("writes");
        let mut rest = &written[..];
        let mut payload = Vec::new();
        let mut fins = Vec::new();
        while !rest.is_empty() {
            let mut cursor = std::io::Cursor::new(rest);
            let (header, len) = FrameHeader::parse(&mut cursor)
                .expect("valid header")
                .expect("complete header");
            let start = usize::try_from(cursor.position()).expect("small");
            let len = usize::try_from(len).expect("small");
            assert!(header.mask.is_none(), "server frames are unmasked");
            fins.push(header.is_final);
            payload.extend_from_slice(&rest[start..start + len]);
            rest = &rest[start + len..];
        }
        assert_eq!(fins, [false, false, true]);
        assert_eq!(payload, message);
    }

    #[test]
    fn close_reasons_fit_in_a_control_frame() {
        assert_eq!(truncate_reason("short"), "short");
        let long = "é".repeat(100);
        let cut = truncate_reason(&long);
        assert!(cut.len() <= 123 && long.starts_with(cut));
    }
}

//! A joiner that checks a large sync step 2 as it streams in, without holding it.
//!
//! A tungstenite client assembles every message in memory: for a 20 MB step 2 sent in 64 KiB
//! fragments that is a fresh buffer per fragment, a copy of each into the message, and 20 MB of
//! new pages per joiner. With 150 joiners on the generator's own two cores, that work (not the
//! server's) set the pace of scenario D. This client speaks just enough WebSocket to join: it
//! upgrades, sends its step 1, answers the server's, and runs the server's step 2 through a
//! CRC-32 as the bytes arrive, keeping them only when asked to (one joiner keeps them, so that
//! the document can be decoded and checked once). Frame headers are parsed and written by
//! tungstenite; only the reading loop is ours. A Hocuspocus joiner does the same with its token
//! first and its document's name before every message ([`crate::framing`]).

use std::io::Cursor;
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use bytes::{Buf, Bytes, BytesMut};
use chorus_protocol::hocuspocus::MSG_SYNC_REPLY;
use chorus_protocol::message::{MSG_SYNC, SYNC_STEP1, SYNC_STEP2, sync_frame};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{Control, Data, OpCode};
use tokio_tungstenite::tungstenite::protocol::frame::{Frame, FrameHeader};

use crate::cli::Protocol;
use crate::client::{self, EMPTY_UPDATE};
use crate::framing::Framing;
use crate::wire;

/// What each read asks the kernel for.
const READ_CHUNK: usize = 256 * 1024;

/// Messages other than the step 2 (the server's step 1, awareness) are small; this bounds
/// what one may make us hold.
const MAX_SMALL_MESSAGE: usize = 1024 * 1024;

/// How the messages that matter start: the address (Hocuspocus), the message type `sync`
/// and the sync type (both varints below 128, so one byte each).
#[derive(Debug, Clone)]
struct Heads {
    step2: Vec<u8>,
    step1: Vec<u8>,
    /// `@hocuspocus/server` sends its step 1 as a sync reply.
    step1_reply: Option<Vec<u8>>,
}

impl Heads {
    fn new(framing: &Framing) -> Self {
        let head = |message_type: u64, sync_type: u64| {
            let mut head = framing.prefix().to_vec();
            head.extend_from_slice(&[message_type as u8, sync_type as u8]);
            head
        };
        Self {
            step2: head(MSG_SYNC, SYNC_STEP2),
            step1: head(MSG_SYNC, SYNC_STEP1),
            step1_reply: (framing.protocol() == Protocol::Hocuspocus)
                .then(|| head(MSG_SYNC_REPLY, SYNC_STEP1)),
        }
    }

    fn len(&self) -> usize {
        self.step2.len()
    }
}

/// A step 2 received by [`receive_step2`].
#[derive(Debug)]
pub struct StreamedStep2 {
    /// From starting the TCP connect to the last byte of the step 2.
    pub elapsed: Duration,
    /// CRC-32 of the whole step 2 message (sync header included).
    pub crc: u32,
    /// Length of the whole step 2 message.
    pub len: usize,
    /// The whole step 2 message (y-websocket-shaped: without a Hocuspocus address), when
    /// `keep` was asked for.
    pub message: Option<Bytes>,
}

/// Joins the document at `url` (a `ws://` URL) as an empty client and receives the server's
/// step 2 within `timeout`, streamed through a CRC; `keep` also keeps the message.
///
/// # Errors
/// Connect or upgrade failure, a close or a protocol error before the step 2 is complete, a
/// step 2 before the server's step 1, or the timeout.
pub async fn receive_step2(
    url: &str,
    framing: &Framing,
    timeout: Duration,
    keep: bool,
) -> anyhow::Result<StreamedStep2> {
    let started = Instant::now();
    tokio::time::timeout(timeout, join(url, framing, started, keep))
        .await
        .with_context(|| {
            format!(
                "step 2 not received within {}",
                humantime::format_duration(timeout)
            )
        })?
}

async fn join(
    url: &str,
    framing: &Framing,
    started: Instant,
    keep: bool,
) -> anyhow::Result<StreamedStep2> {
    let (mut stream, buf) = wire::upgrade(url, READ_CHUNK).await?;
    let heads = Heads::new(framing);
    // No provider version: no bare pings to answer.
    if let Some(token) = framing.token_frame(None) {
        send(&mut stream, binary(token)).await?;
    }
    let step1 = framing.frame(&sync_frame(SYNC_STEP1, &client::local_state_vector(None)));
    send(&mut stream, binary(step1)).await?;
    let mut reader = Reader { stream, buf };
    // The message being received; `None` between messages.
    let mut message: Option<Incoming> = None;
    let mut got_step1 = false;
    loop {
        let (header, len) = reader.header().await?;
        let incoming = match header.opcode {
            OpCode::Control(control) => {
                let payload = reader.exact(len).await?;
                match control {
                    Control::Ping => reader.send(Frame::pong(payload)).await?,
                    Control::Close => bail!("the server closed the connection before its step 2"),
                    Control::Pong | Control::Reserved(_) => {}
                }
                continue;
            }
            OpCode::Data(Data::Continue) => message
                .as_mut()
                .context("a continuation frame outside a message")?,
            OpCode::Data(_) => {
                ensure!(message.is_none(), "a new message inside a fragmented one");
                message.insert(Incoming::new(keep, heads.clone()))
            }
        };
        reader.stream_payload(len, incoming).await?;
        if !header.is_final {
            continue;
        }
        let Some(done) = message.take() else {
            continue;
        };
        if done.is_step2() {
            ensure!(got_step1, "the server sent its step 2 before its step 1");
            let streamed = done.finish(started.elapsed());
            let _ = reader.send(Frame::close(None)).await;
            return Ok(streamed);
        }
        if done.is_step1() {
            got_step1 = true;
            reader
                .send(binary(framing.frame(&sync_frame(SYNC_STEP2, EMPTY_UPDATE))))
                .await?;
        }
    }
}

/// One message as it arrives: the step 2 is streamed through the CRC (and kept if asked);
/// anything else is small and kept whole.
struct Incoming {
    keep_step2: bool,
    heads: Heads,
    len: usize,
    head: Vec<u8>,
    crc: crc32fast::Hasher,
    kept: Vec<u8>,
}

impl Incoming {
    fn new(keep_step2: bool, heads: Heads) -> Self {
        Self {
            keep_step2,
            len: 0,
            head: Vec::with_capacity(heads.len()),
            heads,
            crc: crc32fast::Hasher::new(),
            kept: Vec::new(),
        }
    }

    fn push(&mut self, bytes: &[u8]) -> anyhow::Result<()> {
        self.len += bytes.len();
        self.crc.update(bytes);
        if self.head.len() < self.heads.len() {
            let missing = self.heads.len() - self.head.len();
            self.head
                .extend_from_slice(&bytes[..missing.min(bytes.len())]);
        }
        if self.is_step2() {
            if self.keep_step2 {
                self.kept.extend_from_slice(bytes);
            }
        } else {
            ensure!(
                self.len <= MAX_SMALL_MESSAGE,
                "a message other than the step 2 is over {MAX_SMALL_MESSAGE} bytes"
            );
            self.kept.extend_from_slice(bytes);
        }
        Ok(())
    }

    fn is_step2(&self) -> bool {
        self.head == self.heads.step2
    }

    fn is_step1(&self) -> bool {
        self.head == self.heads.step1 || self.heads.step1_reply.as_ref() == Some(&self.head)
    }

    fn finish(self, elapsed: Duration) -> StreamedStep2 {
        StreamedStep2 {
            elapsed,
            crc: self.crc.finalize(),
            len: self.len,
            // The address goes: callers decode the message as y-websocket's.
            message: self
                .keep_step2
                .then(|| Bytes::from(self.kept).slice(self.heads.len() - 2..)),
        }
    }
}

/// The socket and what was read from it but not consumed yet.
struct Reader {
    stream: TcpStream,
    buf: BytesMut,
}

impl Reader {
    async fn fill(&mut self) -> anyhow::Result<()> {
        if self.buf.capacity() - self.buf.len() < READ_CHUNK / 4 {
            self.buf.reserve(READ_CHUNK);
        }
        if self.stream.read_buf(&mut self.buf).await? == 0 {
            bail!("connection ended before the step 2 was complete");
        }
        Ok(())
    }

    async fn header(&mut self) -> anyhow::Result<(FrameHeader, usize)> {
        loop {
            let mut cursor = Cursor::new(&self.buf[..]);
            if let Some((header, len)) = FrameHeader::parse(&mut cursor)? {
                let consumed = cursor.position() as usize;
                self.buf.advance(consumed);
                ensure!(header.mask.is_none(), "a masked frame from the server");
                return Ok((header, usize::try_from(len)?));
            }
            self.fill().await?;
        }
    }

    async fn exact(&mut self, len: usize) -> anyhow::Result<Bytes> {
        while self.buf.len() < len {
            self.fill().await?;
        }
        Ok(self.buf.split_to(len).freeze())
    }

    async fn stream_payload(&mut self, mut len: usize, into: &mut Incoming) -> anyhow::Result<()> {
        while len > 0 {
            if self.buf.is_empty() {
                self.fill().await?;
            }
            let n = len.min(self.buf.len());
            into.push(&self.buf[..n])?;
            self.buf.advance(n);
            len -= n;
        }
        Ok(())
    }

    async fn send(&mut self, frame: Frame) -> anyhow::Result<()> {
        send(&mut self.stream, frame).await
    }
}

fn binary(payload: Bytes) -> Frame {
    Frame::message(payload, OpCode::Data(Data::Binary), true)
}

/// Writes one frame, masked as RFC 6455 requires of a client.
async fn send(stream: &mut TcpStream, mut frame: Frame) -> anyhow::Result<()> {
    frame.header_mut().mask = Some(fastrand::u32(..).to_ne_bytes());
    let mut out = Vec::with_capacity(frame.len());
    frame.format(&mut out)?;
    stream.write_all(&out).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use tokio::net::TcpListener;
    use tokio_tungstenite::tungstenite::handshake::derive_accept_key;

    use super::*;

    /// A server that upgrades one connection and then writes `frames` (unmasked), reading
    /// whatever the client sends meanwhile.
    async fn fake_server(frames: Vec<Frame>) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!(
            "ws://{}/ws/doc",
            listener.local_addr().expect("local address")
        );
        tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.expect("accept");
            let mut request = Vec::new();
            while !request.ends_with(b"\r\n\r\n") {
                let mut byte = [0u8; 1];
                socket.read_exact(&mut byte).await.expect("request");
                request.push(byte[0]);
            }
            let request = String::from_utf8(request).expect("ASCII request");
            let key = request
                .lines()
                .find_map(|l| l.strip_prefix("Sec-WebSocket-Key: "))
                .expect("a key");
            let response = format!(
                "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
                 Sec-WebSocket-Accept: {}\r\n\r\n",
                derive_accept_key(key.as_bytes())
            );
            let mut out = response.into_bytes();
            for frame in frames {
                frame.format(&mut out).expect("frame");
            }
            // Dribbled out in small writes, so that frames and headers straddle reads.
            for chunk in out.chunks(7) {
                socket.write_all(chunk).await.expect("write");
            }
            let mut sink = Vec::new();
            let _ = socket.read_to_end(&mut sink).await;
        });
        url
    }

    fn y_websocket() -> Framing {
        Framing::new(Protocol::YWebsocket, "doc", "")
    }

    #[tokio::test]
    async fn a_hocuspocus_step2_after_a_sync_reply_is_kept_without_its_address() {
        let framing = Framing::new(Protocol::Hocuspocus, "doc", "");
        let step2 = sync_frame(SYNC_STEP2, &[7u8; 100]);
        // `@hocuspocus/server`'s step 1: a sync reply (type 4).
        let mut reply = framing.prefix().to_vec();
        reply.push(MSG_SYNC_REPLY as u8);
        reply.extend_from_slice(&sync_frame(SYNC_STEP1, &[0x00])[1..]);
        let framed = framing.frame(&step2);
        let url = fake_server(vec![binary(Bytes::from(reply)), binary(framed.clone())]).await;
        let got = receive_step2(&url, &framing, Duration::from_secs(10), true)
            .await
            .expect("step 2");
        assert_eq!(got.len, framed.len());
        assert_eq!(got.crc, crc32fast::hash(&framed));
        assert_eq!(got.message.as_deref(), Some(&step2[..]));
    }

    fn fragment(payload: &[u8], opcode: OpCode, is_final: bool) -> Frame {
        Frame::message(Bytes::copy_from_slice(payload), opcode, is_final)
    }

    #[tokio::test]
    async fn a_fragmented_step2_is_fingerprinted_and_kept_whole() {
        let step2 = sync_frame(SYNC_STEP2, &[7u8; 100]);
        let (first, cont) = (OpCode::Data(Data::Binary), OpCode::Data(Data::Continue));
        let url = fake_server(vec![
            binary(sync_frame(SYNC_STEP1, &[0x00])),
            fragment(&step2[..1], first, false),
            Frame::ping(Bytes::from_static(b"hi")),
            fragment(&step2[1..40], cont, false),
            fragment(&step2[40..], cont, true),
        ])
        .await;
        let got = receive_step2(&url, &y_websocket(), Duration::from_secs(10), true)
            .await
            .expect("step 2");
        assert_eq!(got.len, step2.len());
        assert_eq!(got.crc, crc32fast::hash(&step2));
        assert_eq!(got.message.as_deref(), Some(&step2[..]));

        let url = fake_server(vec![binary(sync_frame(SYNC_STEP1, &[0x00])), binary(step2)]).await;
        let unkept = receive_step2(&url, &y_websocket(), Duration::from_secs(10), false)
            .await
            .expect("step 2");
        assert_eq!((unkept.crc, unkept.len), (got.crc, got.len));
        assert!(unkept.message.is_none());
    }

    #[tokio::test]
    async fn a_step2_before_the_step1_is_an_error() {
        let url = fake_server(vec![binary(sync_frame(SYNC_STEP2, &[0, 0]))]).await;
        let error = receive_step2(&url, &y_websocket(), Duration::from_secs(10), false)
            .await
            .expect_err("must fail");
        assert!(
            format!("{error:#}").contains("before its step 1"),
            "{error:#}"
        );
    }

    #[tokio::test]
    async fn a_close_before_the_step2_is_an_error() {
        let url = fake_server(vec![Frame::close(None)]).await;
        let error = receive_step2(&url, &y_websocket(), Duration::from_secs(10), false)
            .await
            .expect_err("must fail");
        assert!(format!("{error:#}").contains("closed"), "{error:#}");
    }
}

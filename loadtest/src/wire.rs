//! WebSocket frames over a plain `TcpStream`, read in place: the connection of every simulated
//! user of a `run`.
//!
//! A tungstenite client hands out every frame as a freshly allocated message, after a trip
//! through its own read buffer and a flush of its write side. At 100,000 deliveries a second
//! that per-frame work, not the server, set the generator's ceiling. Here a user reads whatever
//! the kernel has in one call into a buffer it keeps, and each complete message is handed to the
//! caller as a slice of that buffer. Only a message that arrives in fragments is gathered, into
//! a buffer that is reused too, and of a fragmented sync step 2 (a whole document, which only a
//! user that keeps a document applies) only the head is kept unless the caller asked for whole
//! ones. Updates are always kept whole: which sent updates one holds is read from all of its
//! structs, since a server may have merged several into it.
//! Frame headers are parsed and written by tungstenite, as in [`crate::streaming`].

use std::io::{Cursor, Write as _};

use anyhow::{Context, bail, ensure};
use bytes::{Buf, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::handshake::client::generate_key;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::http::Uri;
use tokio_tungstenite::tungstenite::protocol::frame::FrameHeader;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{Control, Data, OpCode};

/// Read buffer a connection starts with: small frames need no more, and 20,000 sockets at
/// 8 KiB stay far below what the server holds for them. A larger frame grows it.
const READ_BUFFER: usize = 8 * 1024;

/// Free space below which the read buffer is grown (or compacted) before the next read, so
/// every read can take several small frames at once.
const MIN_SPARE: usize = 2 * 1024;

/// A read buffer grown above this by a large frame is given back once it is empty again.
const SHRINK_ABOVE: usize = 64 * 1024;

/// Largest message accepted: above the biggest document a scenario joins (20 MB plus framing).
const MAX_MESSAGE_BYTES: usize = 256 * 1024 * 1024;

/// Longest HTTP response head accepted for the upgrade.
const MAX_RESPONSE_HEAD: usize = 16 * 1024;

/// How much of a fragmented step 2 is kept when only its head is needed: the message type,
/// sync type and payload length (3 varints) and the start of the update, with room to spare.
pub const HEAD_BYTES: usize = 64;

/// The first two bytes of a y-websocket sync step 2: message type `sync` (0), then the sync
/// type.
const STEP2_PREFIX: [u8; 2] = [0x00, 0x01];

/// One complete message, borrowed from the connection's buffers.
#[derive(Debug, Clone, Copy)]
pub struct Message<'a> {
    /// The message, or only its first [`HEAD_BYTES`] when it is a fragmented step 2 the
    /// caller did not ask to keep.
    pub bytes: &'a [u8],
    /// `bytes` is the whole message.
    pub whole: bool,
    /// Length of the whole message (payload bytes received).
    pub len: usize,
}

/// Why [`Conn::drain`] stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Drained {
    /// Every complete frame was handled; read more.
    Open,
    /// The server sent a close frame, with this code if it gave one.
    Closed(Option<u16>),
}

/// A client WebSocket connection after the upgrade.
#[derive(Debug)]
pub struct Conn {
    stream: TcpStream,
    buf: BytesMut,
    /// The message being received in fragments.
    partial: Partial,
    /// Frames to send, masked; written by [`Conn::flush`].
    out: Vec<u8>,
}

impl Conn {
    /// Connects to `url` (`ws://` only) and upgrades; `keep_step2` asks for a whole sync
    /// step 2 even when it comes in fragments.
    ///
    /// # Errors
    /// The URL is not `ws://`, the connection fails, or the upgrade is refused or malformed.
    pub async fn connect(url: &str, keep_step2: bool) -> anyhow::Result<Self> {
        let (stream, buf) = upgrade(url, READ_BUFFER).await?;
        Ok(Self {
            stream,
            buf,
            partial: Partial {
                keep_step2,
                ..Partial::default()
            },
            out: Vec::new(),
        })
    }

    /// Reads what the kernel has for this socket into the buffer.
    ///
    /// # Cancel safety
    /// Cancel safe: the bytes of a read either land in the buffer or were never taken.
    ///
    /// # Errors
    /// The connection ended or failed.
    pub async fn read(&mut self) -> anyhow::Result<()> {
        if self.buf.is_empty() && self.buf.capacity() > SHRINK_ABOVE {
            self.buf = BytesMut::with_capacity(READ_BUFFER);
        }
        if self.buf.capacity() - self.buf.len() < MIN_SPARE {
            // Reclaims the consumed front of the buffer when it can, so this rarely allocates.
            self.buf.reserve(READ_BUFFER);
        }
        if self.stream.read_buf(&mut self.buf).await? == 0 {
            bail!("connection ended");
        }
        Ok(())
    }

    /// Handles every complete frame in the buffer: `on_message` gets each complete binary
    /// message and may queue frames to send (see [`queue_binary`]); pings are answered.
    /// Text messages are not y-websocket and are skipped.
    ///
    /// # Errors
    /// A protocol violation by the server, a message over the size limit, or what
    /// `on_message` returns.
    pub fn drain(
        &mut self,
        mut on_message: impl FnMut(Message<'_>, &mut Vec<u8>) -> anyhow::Result<()>,
    ) -> anyhow::Result<Drained> {
        loop {
            let mut cursor = Cursor::new(&self.buf[..]);
            let Some((header, len)) = FrameHeader::parse(&mut cursor)? else {
                return Ok(Drained::Open);
            };
            let head = cursor.position() as usize;
            let len = usize::try_from(len)
                .ok()
                .filter(|&len| len <= MAX_MESSAGE_BYTES)
                .context("a frame over the message size limit")?;
            ensure!(header.mask.is_none(), "a masked frame from the server");
            if self.buf.len() < head + len {
                // Room for the rest of a large frame, so the next read can complete it.
                self.buf.reserve(head + len - self.buf.len());
                return Ok(Drained::Open);
            }
            let payload = &self.buf[head..head + len];
            match header.opcode {
                OpCode::Control(Control::Ping) => queue(&mut self.out, Control::Pong, payload),
                OpCode::Control(Control::Close) => {
                    let code =
                        (payload.len() >= 2).then(|| u16::from_be_bytes([payload[0], payload[1]]));
                    return Ok(Drained::Closed(code));
                }
                OpCode::Control(Control::Pong) => {}
                OpCode::Control(Control::Reserved(_)) | OpCode::Data(Data::Reserved(_)) => {
                    bail!("a frame with a reserved opcode")
                }
                OpCode::Data(data) => {
                    if data == Data::Continue {
                        ensure!(
                            self.partial.active,
                            "a continuation frame outside a message"
                        );
                    } else {
                        ensure!(
                            !self.partial.active,
                            "a new message inside a fragmented one"
                        );
                        if header.is_final {
                            // The common case: a whole message in one frame, read in place.
                            if data == Data::Binary {
                                let message = Message {
                                    bytes: payload,
                                    whole: true,
                                    len,
                                };
                                on_message(message, &mut self.out)?;
                            }
                            self.buf.advance(head + len);
                            continue;
                        }
                        self.partial.start(data == Data::Binary);
                    }
                    self.partial.gather(payload)?;
                    if header.is_final
                        && let Some(message) = self.partial.finish()
                    {
                        on_message(message, &mut self.out)?;
                    }
                }
            }
            self.buf.advance(head + len);
        }
    }

    /// Frames waiting to be sent (see [`queue_binary`]).
    pub fn out(&mut self) -> &mut Vec<u8> {
        &mut self.out
    }

    /// Sends every queued frame.
    ///
    /// # Errors
    /// The write failed.
    pub async fn flush(&mut self) -> anyhow::Result<()> {
        if !self.out.is_empty() {
            self.stream.write_all(&self.out).await?;
            self.out.clear();
        }
        Ok(())
    }

    /// Sends a close frame (normal closure) and ends the write side.
    ///
    /// # Errors
    /// The write failed.
    pub async fn close(&mut self) -> anyhow::Result<()> {
        queue(&mut self.out, Control::Close, &1000u16.to_be_bytes());
        self.flush().await?;
        self.stream.shutdown().await?;
        Ok(())
    }
}

/// A message arriving in fragments. Its buffer is reused from message to message.
#[derive(Debug, Default)]
struct Partial {
    /// Keep a whole step 2 (the caller applies it to a document).
    keep_step2: bool,
    /// A fragmented message is being received.
    active: bool,
    /// It is binary; a text message is followed but not handed out.
    binary: bool,
    /// What is kept of it.
    bytes: Vec<u8>,
    /// Its length so far (more than `bytes` holds when it is cut to its head).
    len: usize,
}

impl Partial {
    fn start(&mut self, binary: bool) {
        self.active = true;
        self.binary = binary;
        if self.bytes.capacity() > SHRINK_ABOVE {
            // A large message grew it: give that back rather than hold it per user.
            self.bytes = Vec::new();
        }
        self.bytes.clear();
        self.len = 0;
    }

    /// Adds a fragment, keeping only the head of a step 2 unless `keep_step2`.
    fn gather(&mut self, fragment: &[u8]) -> anyhow::Result<()> {
        self.len += fragment.len();
        ensure!(
            self.len <= MAX_MESSAGE_BYTES,
            "a message over the size limit"
        );
        let have = self.bytes.len();
        // The type is known once two bytes are in; until then, keep everything.
        let is_step2 = || {
            let byte = |i: usize| {
                self.bytes
                    .get(i)
                    .or_else(|| fragment.get(i - have))
                    .copied()
            };
            match (byte(0), byte(1)) {
                (Some(a), Some(b)) => [a, b] == STEP2_PREFIX,
                _ => false,
            }
        };
        let keep = if !self.keep_step2 && is_step2() {
            HEAD_BYTES.saturating_sub(have).min(fragment.len())
        } else {
            fragment.len()
        };
        self.bytes.extend_from_slice(&fragment[..keep]);
        Ok(())
    }

    /// Ends the message; the binary one to hand out.
    fn finish(&mut self) -> Option<Message<'_>> {
        self.active = false;
        self.binary.then_some(Message {
            bytes: &self.bytes,
            whole: self.len == self.bytes.len(),
            len: self.len,
        })
    }
}

/// Appends a binary message (one frame, masked as RFC 6455 requires of a client) to `out`.
pub fn queue_binary(out: &mut Vec<u8>, payload: &[u8]) {
    queue_frame(out, OpCode::Data(Data::Binary), payload);
}

fn queue(out: &mut Vec<u8>, control: Control, payload: &[u8]) {
    queue_frame(out, OpCode::Control(control), payload);
}

fn queue_frame(out: &mut Vec<u8>, opcode: OpCode, payload: &[u8]) {
    let mask = fastrand::u32(..).to_ne_bytes();
    let header = FrameHeader {
        opcode,
        mask: Some(mask),
        ..FrameHeader::default()
    };
    // Formatting into a Vec cannot fail: its writes never do.
    let _ = header.format(payload.len() as u64, out);
    out.extend(
        payload
            .iter()
            .zip(mask.iter().cycle())
            .map(|(byte, key)| byte ^ key),
    );
}

/// Connects to `url` and upgrades to WebSocket; returns the socket and whatever arrived after
/// the response head, in a buffer of at least `capacity`.
///
/// # Errors
/// Not a `ws://` URL, the connection fails, or the upgrade is refused or malformed.
pub async fn upgrade(url: &str, capacity: usize) -> anyhow::Result<(TcpStream, BytesMut)> {
    let uri: Uri = url.parse().with_context(|| format!("parsing {url}"))?;
    ensure!(uri.scheme_str() == Some("ws"), "{url}: only ws:// URLs");
    let host = uri.host().context("the URL has no host")?;
    let port = uri.port_u16().unwrap_or(80);
    let path = uri.path_and_query().map_or("/", |p| p.as_str());
    let mut stream = TcpStream::connect((host, port))
        .await
        .with_context(|| format!("connecting to {url}"))?;
    stream.set_nodelay(true)?;
    let key = generate_key();
    let mut request = Vec::new();
    write!(
        request,
        "GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nConnection: Upgrade\r\n\
         Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: {key}\r\n\r\n"
    )?;
    stream.write_all(&request).await?;

    let mut buf = BytesMut::with_capacity(capacity);
    loop {
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut response = httparse::Response::new(&mut headers);
        if let httparse::Status::Complete(head) = response.parse(&buf)? {
            ensure!(
                response.code == Some(101),
                "upgrade refused: HTTP {}",
                response.code.unwrap_or(0)
            );
            let accept = response
                .headers
                .iter()
                .find(|h| h.name.eq_ignore_ascii_case("sec-websocket-accept"))
                .context("no Sec-WebSocket-Accept in the upgrade response")?;
            ensure!(
                accept.value == derive_accept_key(key.as_bytes()).as_bytes(),
                "wrong Sec-WebSocket-Accept in the upgrade response"
            );
            buf.advance(head);
            return Ok((stream, buf));
        }
        ensure!(
            buf.len() < MAX_RESPONSE_HEAD,
            "upgrade response head too long"
        );
        buf.reserve(capacity.max(1024));
        if stream.read_buf(&mut buf).await? == 0 {
            bail!("connection ended during the upgrade");
        }
    }
}

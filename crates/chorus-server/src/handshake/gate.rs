//! A bound on the connections that are accepted but not yet answered.
//!
//! Until the server writes its first response (for a WebSocket, the `101 Switching
//! Protocols`), an accepted connection holds what the handshake needs and the connection will
//! not: hyper's 8 KiB read and write buffers, the request, the task that waits for the upgrade.
//! When hundreds of clients connect at once (a deploy, a reconnect storm), hundreds of these are
//! alive together, the long-lived allocations of the connections that finish first land
//! between them, and once the burst is over the allocator keeps the freed buffers as holes in
//! its heap for the rest of the process's life: about 1 KB per connection at 5,000 connections
//! (`loadtest/README.md`, scenario C). Taking a connection off the kernel's accept queue only
//! when one of [`GatedListener`]'s permits is free keeps that set small; waiting in the queue
//! costs the process nothing.
//!
//! A connection gives its permit back when the server reads from it again after answering it:
//! for a plain request, when hyper waits for the next one; for a WebSocket, once the
//! connection is set up (upgraded, in its room, reading frames), since the upgrade's own
//! allocations are part of the burst. At the latest it gives it back after [`PERMIT_TIMEOUT`],
//! so a client that connects and says nothing delays the others by that much at most instead
//! of holding a permit until hyper gives up on it.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::serve::Listener;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Sleep;

/// Connections accepted and not yet answered, at most. A handshake takes a few milliseconds,
/// so this still lets thousands of clients connect per second; past 32 the memory a connect
/// burst leaves behind grows again (`loadtest/README.md`, scenario C).
pub(crate) const UNANSWERED: usize = 8;

/// Longest a connection holds its permit without being answered.
pub(crate) const PERMIT_TIMEOUT: Duration = Duration::from_millis(100);

/// A TCP listener that accepts while fewer than its bound of connections wait for their first
/// response.
pub(crate) struct GatedListener {
    inner: TcpListener,
    permits: Arc<Semaphore>,
}

impl GatedListener {
    /// Gates `inner` to `unanswered` connections awaiting their first response.
    pub(crate) fn new(inner: TcpListener, unanswered: usize) -> Self {
        Self {
            inner,
            permits: Arc::new(Semaphore::new(unanswered.max(1))),
        }
    }
}

impl Listener for GatedListener {
    type Io = GatedStream;
    type Addr = std::net::SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        // The semaphore is never closed; were it, connections would go ungated, not refused.
        let permit = Arc::clone(&self.permits).acquire_owned().await.ok();
        let (stream, addr) = Listener::accept(&mut self.inner).await;
        let gated = GatedStream {
            stream,
            permit: permit.map(|permit| Held {
                _permit: permit,
                timeout: Box::pin(tokio::time::sleep(PERMIT_TIMEOUT)),
                answered: false,
            }),
        };
        (gated, addr)
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        self.inner.local_addr()
    }
}

/// A permit, and when it is given back unasked.
struct Held {
    _permit: OwnedSemaphorePermit,
    timeout: Pin<Box<Sleep>>,
    /// The server has written to the connection.
    answered: bool,
}

/// An accepted connection; holds its [`GatedListener`] permit until it is read from after being
/// written to.
pub(crate) struct GatedStream {
    stream: TcpStream,
    permit: Option<Held>,
}

impl GatedStream {
    fn release(&mut self) {
        self.permit = None;
    }

    fn answered(&mut self) {
        if let Some(held) = &mut self.permit {
            held.answered = true;
        }
    }
}

impl AsyncRead for GatedStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        // hyper keeps reading until it answers, so the timeout is looked at (and its wake-up
        // registered) here.
        if let Some(held) = &mut this.permit
            && (held.answered || held.timeout.as_mut().poll(cx).is_ready())
        {
            this.release();
        }
        Pin::new(&mut this.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for GatedStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        this.answered();
        Pin::new(&mut this.stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        this.answered();
        Pin::new(&mut this.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        this.release();
        Pin::new(&mut this.stream).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// Long enough to mean "never" for a test that would otherwise hang.
    const HANG: Duration = Duration::from_secs(30);

    async fn accept_within(gated: &mut GatedListener) -> GatedStream {
        tokio::time::timeout(HANG, gated.accept())
            .await
            .expect("accepted")
            .0
    }

    /// Whether an accept is ready right now (the listener's queue holds a connection).
    async fn accepts_now(gated: &mut GatedListener) -> bool {
        let mut accept = std::pin::pin!(gated.accept());
        // Yield a few times so a queued connection and a free permit are both seen.
        for _ in 0..20 {
            if futures_util::poll!(accept.as_mut()).is_ready() {
                return true;
            }
            tokio::task::yield_now().await;
        }
        false
    }

    #[tokio::test]
    async fn the_next_connection_waits_until_one_is_answered_and_read_again() {
        let inner = TcpListener::bind("127.0.0.1:0").await.expect("binds");
        let addr = inner.local_addr().expect("address");
        let mut gated = GatedListener::new(inner, 1);
        let mut first = TcpStream::connect(addr).await.expect("connects");
        let _second = TcpStream::connect(addr).await.expect("connects");

        let mut answered = accept_within(&mut gated).await;
        // The second connection is in the kernel's queue, but the only permit is taken.
        assert!(!accepts_now(&mut gated).await);
        // Answering alone does not free it: the upgrade's work follows the answer.
        answered
            .write_all(b"HTTP/1.1 101\r\n\r\n")
            .await
            .expect("writes");
        assert!(!accepts_now(&mut gated).await);
        // Reading again does.
        first.write_all(b"x").await.expect("client writes");
        let mut byte = [0u8; 1];
        tokio::time::timeout(HANG, answered.read_exact(&mut byte))
            .await
            .expect("read in time")
            .expect("reads");
        accept_within(&mut gated).await;
    }

    #[tokio::test]
    async fn a_silent_connection_gives_its_permit_back_after_the_timeout() {
        let inner = TcpListener::bind("127.0.0.1:0").await.expect("binds");
        let addr = inner.local_addr().expect("address");
        let mut gated = GatedListener::new(inner, 1);
        let _silent = TcpStream::connect(addr).await.expect("connects");
        let _next = TcpStream::connect(addr).await.expect("connects");
        let mut silent = accept_within(&mut gated).await;
        // What hyper does: keep reading a connection that has not sent a whole request.
        let reader = tokio::spawn(async move {
            let mut buf = [0u8; 16];
            let _ = silent.read(&mut buf).await;
        });
        // The silent client never sends a request; after PERMIT_TIMEOUT the next one gets in
        // anyway (without the timeout this would wait for as long as the silent one stays).
        accept_within(&mut gated).await;
        reader.abort();
    }
}

//! What a room knows about one connection: its id, its outbox and how to close it.

use std::borrow::Cow;
use std::collections::VecDeque;
use std::future::poll_fn;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};
use std::task::Poll;

use chorus_room::Identity;

use bytes::Bytes;
use futures_util::task::AtomicWaker;
use tokio::sync::Notify;
use tokio::sync::mpsc::error::TrySendError;

pub use chorus_room::{ConnId, close_code};

/// Why and how a connection is to be closed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloseReason {
    /// RFC 6455 close code, see [`close_code`].
    pub code: u16,
    /// Short human-readable reason (at most 123 bytes on the wire).
    pub reason: Cow<'static, str>,
}

/// A one-shot "close this connection" signal that the room, the connection and shutdown can all
/// raise; the first reason wins and the connection sends it as the close frame.
///
/// A `OnceLock` and a `Notify` rather than a `watch` channel: every connection holds one, and a
/// `watch` channel's shared state is about 400 bytes.
#[derive(Debug, Clone)]
pub struct CloseSignal {
    inner: Arc<CloseInner>,
}

#[derive(Debug, Default)]
struct CloseInner {
    reason: OnceLock<CloseReason>,
    raised: Notify,
}

impl Default for CloseSignal {
    fn default() -> Self {
        Self::new()
    }
}

impl CloseSignal {
    /// A signal that has not been raised.
    pub fn new() -> Self {
        Self {
            inner: Arc::default(),
        }
    }

    /// Asks for the connection to be closed with `code`; ignored if a reason was already given.
    pub fn close(&self, code: u16, reason: impl Into<Cow<'static, str>>) {
        let reason = CloseReason {
            code,
            reason: reason.into(),
        };
        if self.inner.reason.set(reason).is_ok() {
            self.inner.raised.notify_waiters();
        }
    }

    /// Whether a reason was given (what [`CloseSignal::closed`] waits for), without a clone.
    pub fn is_raised(&self) -> bool {
        self.inner.reason.get().is_some()
    }

    /// The reason given, if any.
    pub fn reason(&self) -> Option<CloseReason> {
        self.inner.reason.get().cloned()
    }

    /// Waits until a reason is given.
    ///
    /// # Cancel safety
    /// Cancel safe: it only observes the signal.
    pub async fn closed(&self) -> CloseReason {
        loop {
            let raised = self.inner.raised.notified();
            tokio::pin!(raised);
            // Registered before looking, so a reason set in between still wakes it.
            raised.as_mut().enable();
            if let Some(reason) = self.inner.reason.get() {
                return reason.clone();
            }
            raised.await;
        }
    }
}

/// Frames for one connection, from its room to its task: a bounded queue that allocates only
/// while it holds frames. A tokio `mpsc` channel would allocate a block of 32 slots and its
/// padded state up front (about 1.5 KiB), for every connection however idle.
///
/// When it is full the room disconnects the peer rather than wait for it or drop a frame.
#[derive(Debug)]
pub struct Outbox {
    shared: Arc<OutboxShared>,
}

/// The connection's end of its [`Outbox`].
#[derive(Debug)]
pub struct OutboxReceiver {
    shared: Arc<OutboxShared>,
}

#[derive(Debug)]
struct OutboxShared {
    queue: Mutex<OutboxQueue>,
    capacity: usize,
    /// Wakes the receiver. An `AtomicWaker` rather than a `Notify`: there is only ever one
    /// receiver, and a `Notify` takes its waiter-list lock to register and again to wake, on
    /// every frame of every connection. The receiver registers before it looks at the queue
    /// a second time, so a frame queued in between still wakes it.
    ready: AtomicWaker,
}

/// The frames waiting for one connection, oldest first: the oldest in a slot of its own, the
/// rest behind it in a queue that is given back whenever it empties. A connection that is sent
/// one frame at a time (most are) never allocates for its outbox, and an idle one holds nothing:
/// a queue kept for the frames of its handshake cost every idle connection 128 bytes.
#[derive(Debug, Default)]
struct OutboxQueue {
    first: Option<Bytes>,
    rest: VecDeque<Bytes>,
    senders: usize,
    receiver_gone: bool,
}

/// A bounded outbox holding at most `capacity` frames.
pub fn outbox(capacity: usize) -> (Outbox, OutboxReceiver) {
    let shared = Arc::new(OutboxShared {
        queue: Mutex::new(OutboxQueue {
            senders: 1,
            ..OutboxQueue::default()
        }),
        capacity,
        ready: AtomicWaker::new(),
    });
    (
        Outbox {
            shared: Arc::clone(&shared),
        },
        OutboxReceiver { shared },
    )
}

impl OutboxShared {
    fn queue(&self) -> MutexGuard<'_, OutboxQueue> {
        // Every critical section is a push, a pop or a counter update: a panic cannot leave the
        // queue half changed.
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Outbox {
    /// Queues a frame without waiting.
    ///
    /// # Errors
    /// [`TrySendError::Full`] when `capacity` frames wait already (a slow peer),
    /// [`TrySendError::Closed`] when the connection has gone.
    pub fn try_send(&self, frame: Bytes) -> Result<(), TrySendError<Bytes>> {
        let mut queue = self.shared.queue();
        if queue.receiver_gone {
            return Err(TrySendError::Closed(frame));
        }
        if queue.len() >= self.shared.capacity {
            return Err(TrySendError::Full(frame));
        }
        queue.push(frame);
        drop(queue);
        self.shared.ready.wake();
        Ok(())
    }
}

impl Clone for Outbox {
    fn clone(&self) -> Self {
        self.shared.queue().senders += 1;
        Self {
            shared: Arc::clone(&self.shared),
        }
    }
}

impl Drop for Outbox {
    fn drop(&mut self) {
        let mut queue = self.shared.queue();
        queue.senders -= 1;
        if queue.senders == 0 {
            drop(queue);
            self.shared.ready.wake();
        }
    }
}

impl OutboxReceiver {
    /// The next frame, or `None` once it is empty and every [`Outbox`] is gone.
    ///
    /// # Cancel safety
    /// Cancel safe: a frame is only taken when this returns it.
    pub async fn recv(&mut self) -> Option<Bytes> {
        poll_fn(|cx| {
            if let Some(next) = self.shared.queue().next() {
                return Poll::Ready(next);
            }
            self.shared.ready.register(cx.waker());
            match self.shared.queue().next() {
                Some(next) => Poll::Ready(next),
                None => Poll::Pending,
            }
        })
        .await
    }

    /// The next frame if one is queued.
    pub fn try_recv(&mut self) -> Option<Bytes> {
        self.shared.queue().pop()
    }
}

impl OutboxQueue {
    /// What the receiver gets now, if anything: a frame, or the end once every sender is
    /// gone and the queue is empty.
    fn next(&mut self) -> Option<Option<Bytes>> {
        match self.pop() {
            Some(frame) => Some(Some(frame)),
            None if self.senders == 0 => Some(None),
            None => None,
        }
    }

    fn len(&self) -> usize {
        usize::from(self.first.is_some()) + self.rest.len()
    }

    fn push(&mut self, frame: Bytes) {
        if self.first.is_none() && self.rest.is_empty() {
            self.first = Some(frame);
        } else {
            self.rest.push_back(frame);
        }
    }

    fn pop(&mut self) -> Option<Bytes> {
        if let Some(frame) = self.first.take() {
            return Some(frame);
        }
        let frame = self.rest.pop_front();
        if self.rest.is_empty() && self.rest.capacity() > 0 {
            self.rest = VecDeque::new();
        }
        frame
    }

    fn clear(&mut self) {
        self.first = None;
        self.rest = VecDeque::new();
    }
}

impl Drop for OutboxReceiver {
    fn drop(&mut self) {
        let mut queue = self.shared.queue();
        queue.receiver_gone = true;
        queue.clear();
    }
}

/// A connection as a room sees it.
#[derive(Debug, Clone)]
pub struct Peer {
    /// Frames for this connection; bounded by `--outbox-capacity`. When it is full the room
    /// disconnects the peer rather than wait for it or drop a frame.
    pub outbox: Outbox,
    /// Closes the connection.
    pub close: CloseSignal,
    /// False for read-only tokens: the room applies none of this peer's updates.
    pub can_write: bool,
    /// True for Hocuspocus sessions: they get the document's stateless messages, which a
    /// y-websocket client would not understand.
    pub takes_stateless: bool,
    /// Who this connection's accepted updates are attributed to.
    pub identity: Identity,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_first_reason_wins() {
        let signal = CloseSignal::new();
        assert_eq!(signal.reason(), None);
        signal.close(close_code::TRY_AGAIN_LATER, "slow");
        signal.close(close_code::GOING_AWAY, "shutdown");
        let reason = signal.closed().await;
        assert_eq!(reason.code, close_code::TRY_AGAIN_LATER);
        assert_eq!(signal.reason(), Some(reason));
    }

    #[tokio::test]
    async fn a_waiter_wakes_when_the_signal_is_raised() {
        let signal = CloseSignal::new();
        let waiter = tokio::spawn({
            let signal = signal.clone();
            async move { signal.closed().await }
        });
        tokio::task::yield_now().await;
        signal.close(close_code::GOING_AWAY, "bye");
        assert_eq!(waiter.await.expect("joins").code, close_code::GOING_AWAY);
    }

    #[tokio::test]
    async fn the_outbox_is_bounded_and_reports_a_gone_connection() {
        let (tx, mut rx) = outbox(2);
        tx.try_send(Bytes::from_static(b"a")).expect("room");
        tx.clone().try_send(Bytes::from_static(b"b")).expect("room");
        assert!(matches!(
            tx.try_send(Bytes::from_static(b"c")),
            Err(TrySendError::Full(_))
        ));
        assert_eq!(rx.recv().await.as_deref(), Some(&b"a"[..]));
        assert_eq!(rx.try_recv().as_deref(), Some(&b"b"[..]));
        assert_eq!(rx.try_recv(), None);
        let waiter = tokio::spawn(async move {
            let first = rx.recv().await;
            (first, rx.recv().await)
        });
        tokio::task::yield_now().await;
        tx.try_send(Bytes::from_static(b"d")).expect("room");
        drop(tx);
        let (first, then) = waiter.await.expect("joins");
        assert_eq!(first.as_deref(), Some(&b"d"[..]));
        assert_eq!(then, None, "every sender gone");

        let (tx, rx) = outbox(2);
        drop(rx);
        assert!(matches!(
            tx.try_send(Bytes::from_static(b"e")),
            Err(TrySendError::Closed(_))
        ));
    }

    /// Frames come out in the order they went in, however pushes and pops interleave around the
    /// slot of the oldest one, and an emptied outbox holds no queue.
    #[test]
    fn the_outbox_keeps_order_and_gives_its_queue_back() {
        let mut queue = OutboxQueue::default();
        let mut expected = VecDeque::new();
        let mut next = 0u8;
        // Pushes and pops in runs of one to three.
        for (pushes, pops) in [(1, 1), (3, 1), (1, 2), (2, 3), (3, 3), (1, 0), (2, 3)] {
            for _ in 0..pushes {
                queue.push(Bytes::copy_from_slice(&[next]));
                expected.push_back(next);
                next += 1;
            }
            assert_eq!(queue.len(), expected.len());
            for _ in 0..pops {
                assert_eq!(
                    queue.pop().map(|frame| frame[0]),
                    expected.pop_front(),
                    "after {next} frames"
                );
            }
        }
        assert_eq!(queue.len(), 0);
        assert_eq!(queue.pop(), None);
        assert_eq!(
            queue.rest.capacity(),
            0,
            "an empty outbox allocates nothing"
        );
    }
}

//! Which wake-up was the socket's: so that a connection woken to send a frame does not also
//! read its socket for nothing.
//!
//! A connection's task waits on its outbox and its socket at once (`connection.rs`). Most of
//! its wake-ups, in a room with one typist and nine readers, are frames to send; `select!`
//! cannot tell which future woke it, so after every frame sent it would poll the socket's read
//! again, through tokio-tungstenite, hyper's upgraded stream and tokio's readiness check, only
//! to learn that nothing arrived: about as much work as sending the frame. Here the socket gets
//! a waker of its own that raises a flag before it wakes the task, and the read is polled only
//! when the flag is up (or after a read that returned something, since tungstenite may hold
//! more frames in its buffer without the socket waking anyone).
//!
//! Every use of the socket (reads, frames sent, pings) goes through this waker, because
//! tungstenite flushes pending pongs while reading and a blocked write wakes whoever polled a
//! write last: if that were the task's own waker, a pong stuck behind a full send buffer would
//! wait for the next frame in or out.

use std::future::{Future, poll_fn};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, Wake, Waker};

use futures_util::task::AtomicWaker;

/// The socket's waker for one connection's task.
pub(super) struct SocketWake {
    shared: Arc<Shared>,
    /// `shared` as a [`Waker`], made once.
    waker: Waker,
}

struct Shared {
    /// The socket woke the task since its read was last polled (or a read returned something).
    woken: AtomicBool,
    /// The task to wake.
    task: AtomicWaker,
}

impl Wake for Shared {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        // Raised before the task is woken, so that the task sees it when it runs.
        self.woken.store(true, Ordering::Release);
        self.task.wake();
    }
}

impl SocketWake {
    /// A waker whose first read poll goes through.
    pub(super) fn new() -> Self {
        let shared = Arc::new(Shared {
            woken: AtomicBool::new(true),
            task: AtomicWaker::new(),
        });
        let waker = Waker::from(Arc::clone(&shared));
        Self { shared, waker }
    }

    /// Polls the socket's read (`poll_read`, e.g. `StreamExt::poll_next_unpin`) if the socket
    /// may have something; pending otherwise, with the task registered to be woken when it
    /// does.
    pub(super) fn poll_read<T>(
        &self,
        cx: &mut Context<'_>,
        poll_read: impl FnOnce(&mut Context<'_>) -> Poll<T>,
    ) -> Poll<T> {
        // Registered before the flag is looked at, so a wake-up in between is not lost.
        self.shared.task.register(cx.waker());
        if !self.shared.woken.swap(false, Ordering::Acquire) {
            return Poll::Pending;
        }
        let polled = poll_read(&mut Context::from_waker(&self.waker));
        if polled.is_ready() {
            // tungstenite may hold further frames already read: look again next time.
            self.read_again();
        }
        polled
    }

    /// The read is to be polled next time whatever happens: after something else polled it
    /// with another waker (`now_or_never` does).
    pub(super) fn read_again(&self) {
        self.shared.woken.store(true, Ordering::Release);
    }

    /// Runs `io`, a use of the socket other than its read, under the socket's waker.
    pub(super) fn io<F: Future + Unpin>(&self, mut io: F) -> impl Future<Output = F::Output> {
        poll_fn(move |cx| {
            self.shared.task.register(cx.waker());
            Pin::new(&mut io).poll(&mut Context::from_waker(&self.waker))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::{Cell, RefCell};
    use std::sync::atomic::AtomicUsize;

    /// Counts the task's wake-ups.
    struct Counter(AtomicUsize);

    impl Wake for Counter {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    /// A socket read that counts its polls and keeps the waker it was given.
    #[derive(Default)]
    struct FakeRead {
        polls: Cell<usize>,
        waker: RefCell<Option<Waker>>,
        ready: bool,
    }

    impl FakeRead {
        fn poll(&self, cx: &mut Context<'_>) -> Poll<()> {
            self.polls.set(self.polls.get() + 1);
            *self.waker.borrow_mut() = Some(cx.waker().clone());
            if self.ready {
                Poll::Ready(())
            } else {
                Poll::Pending
            }
        }
    }

    fn task() -> (Arc<Counter>, Waker) {
        let task = Arc::new(Counter(AtomicUsize::new(0)));
        let waker = Waker::from(Arc::clone(&task));
        (task, waker)
    }

    #[test]
    fn the_read_is_polled_only_after_the_socket_woke_the_task() {
        let (task, task_waker) = task();
        let mut cx = Context::from_waker(&task_waker);
        let wake = SocketWake::new();
        let read = FakeRead::default();
        assert!(wake.poll_read(&mut cx, |cx| read.poll(cx)).is_pending());
        assert!(wake.poll_read(&mut cx, |cx| read.poll(cx)).is_pending());
        assert_eq!(read.polls.get(), 1, "the second poll had no reason to read");
        read.waker.take().expect("registered").wake();
        assert_eq!(task.0.load(Ordering::SeqCst), 1, "the task was woken");
        assert!(wake.poll_read(&mut cx, |cx| read.poll(cx)).is_pending());
        assert_eq!(
            read.polls.get(),
            2,
            "read again once the socket woke the task"
        );
    }

    #[test]
    fn a_read_that_returned_something_is_polled_again() {
        let (_, task_waker) = task();
        let mut cx = Context::from_waker(&task_waker);
        let wake = SocketWake::new();
        let read = FakeRead {
            ready: true,
            ..FakeRead::default()
        };
        assert!(wake.poll_read(&mut cx, |cx| read.poll(cx)).is_ready());
        assert!(wake.poll_read(&mut cx, |cx| read.poll(cx)).is_ready());
        assert_eq!(read.polls.get(), 2);
    }

    #[test]
    fn other_uses_of_the_socket_wake_the_read_too() {
        let (task, task_waker) = task();
        let mut cx = Context::from_waker(&task_waker);
        let wake = SocketWake::new();
        let read = FakeRead::default();
        assert!(wake.poll_read(&mut cx, |cx| read.poll(cx)).is_pending());
        // A write that blocks registers the socket's waker, and its wake-up lets the read
        // (which flushes tungstenite's pending pongs) run again.
        let write = FakeRead::default();
        let mut io = std::pin::pin!(wake.io(poll_fn(|cx| write.poll(cx))));
        assert!(io.as_mut().poll(&mut cx).is_pending());
        write.waker.take().expect("registered").wake();
        assert_eq!(task.0.load(Ordering::SeqCst), 1);
        assert!(wake.poll_read(&mut cx, |cx| read.poll(cx)).is_pending());
        assert_eq!(read.polls.get(), 2);
    }
}

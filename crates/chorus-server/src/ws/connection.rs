//! One connection's task after the upgrade: frames in (read in bursts, checked, handed to the
//! room in order, with backpressure), the room's outbox out, pings, and the goodbye.

use std::borrow::Cow;
use std::collections::VecDeque;
use std::future::{Future, poll_fn};
use std::task::Poll;
use std::time::Duration;

use bytes::Bytes;
use chorus_protocol::{Message, SyncMessage, UpdateLimits, validate_update_v1};
use futures_util::future::OptionFuture;
use futures_util::{FutureExt, SinkExt, StreamExt};
use tokio::time::{Instant, timeout};
use tokio_util::sync::CancellationToken;
use tungstenite::Message as WsMessage;

use crate::burst;
use crate::conn::{CloseSignal, ConnId, OutboxReceiver, close_code};
use crate::handshake::Socket;
use crate::limits::ConnectionRules;
use crate::metrics;
use crate::quarantine::History;
use crate::room::RoomHandle;
use crate::room::handle::{Mailbox, NotDelivered};

use super::CLOSE_GRACE;
use super::socket_wake::SocketWake;
use super::write::send_batch;

/// One connection, served by one task: frames from the socket go to the room, frames from the
/// room's outbox go to the socket, and pings keep the link checked.
///
/// One task rather than a reader and a writer: an idle connection is then one task, one future
/// and no split-stream lock, which is most of what it costs besides its buffers. The loop never
/// waits on the room with its socket unattended: a message the room's full inbox cannot take
/// yet is held while the outbox keeps draining.
pub(super) struct Connection<'a> {
    pub(super) socket: &'a mut Socket,
    pub(super) outbox: &'a mut OutboxReceiver,
    pub(super) room: &'a RoomHandle,
    pub(super) conn: ConnId,
    pub(super) close: &'a CloseSignal,
    pub(super) shutdown: &'a CancellationToken,
    pub(super) rules: ConnectionRules,
    /// The last messages the client sent, kept only with `--quarantine-dir` (boxed: an idle
    /// connection's task would otherwise keep room for it either way).
    pub(super) history: Option<Box<History>>,
}

impl Connection<'_> {
    /// Serves until the peer leaves, breaks a rule, goes silent, or the connection is closed
    /// from elsewhere. Every way out raises the close signal.
    pub(super) async fn run(
        &mut self,
        ping_interval: Duration,
        peer_timeout: Duration,
        expires_at: Option<Instant>,
    ) {
        // One timer for pings, silence and token expiry, re-armed only when it fires: an idle
        // connection holds one timer, and a frame costs no timer-wheel update.
        let mut next_ping = Instant::now() + ping_interval;
        let mut heard = Instant::now();
        let first = next_ping.min(heard + peer_timeout);
        let timer = tokio::time::sleep_until(expires_at.map_or(first, |at| first.min(at)));
        tokio::pin!(timer);
        let mailbox = self.room.mailbox(self.conn);
        // Registered once: asking anew on every turn of the loop costs a lock per frame.
        let close = self.close;
        let closed = close.closed();
        tokio::pin!(closed);
        // Messages the room's inbox had no room for; no frame is read until they are handed
        // over. Empty (and unallocated) nearly always.
        let mut held: VecDeque<Message> = VecDeque::new();
        // Set while the connection is over its message or byte rate: no frame is read before
        // then, so TCP makes the client wait instead of the server closing it. The one timer
        // wakes the loop for it.
        let mut resume_at: Option<Instant> = None;
        // The socket's own waker: a wake-up to send a frame then costs no read of the socket.
        let socket_wake = SocketWake::new();
        // Whether `closed` has been polled, and so has this task registered to be woken when
        // the signal is raised. After that the signal itself is looked at: polling a
        // registered `Notified` takes the `Notify`'s lock, on every frame sent.
        let mut closed_registered = false;
        loop {
            tokio::select! {
                biased;
                () = poll_fn(|cx| {
                    if close.is_raised() {
                        return Poll::Ready(());
                    }
                    if closed_registered {
                        return Poll::Pending;
                    }
                    closed_registered = true;
                    closed.as_mut().poll(cx).map(drop)
                }) => return,
                frame = self.outbox.recv() => {
                    let Some(frame) = frame else {
                        // The room dropped this connection without a reason: it failed.
                        self.close.close(close_code::INTERNAL_ERROR, "room closed; reconnect");
                        return;
                    };
                    // Boxed: suspended mid-write is the largest state of this loop, and an idle
                    // connection's task would keep room for it all the time.
                    let send = Box::pin(send_batch(self.socket, frame, self.outbox));
                    let sent = tokio::select! {
                        // Biased: an unbiased select draws a random number per frame sent.
                        biased;
                        sent = socket_wake.io(send) => sent,
                        _ = &mut closed => return,
                    };
                    if sent.is_err() {
                        self.close.close(close_code::GOING_AWAY, "write failed");
                        return;
                    }
                }
                // Built (and boxed) only while a message is held: `select!` keeps a slot for
                // every branch's future, and an unboxed reservation would cost every idle
                // connection its size.
                permit = OptionFuture::from((!held.is_empty()).then(|| Box::pin(mailbox.reserve()))), if !held.is_empty() => {
                    match (permit, held.pop_front()) {
                        (Some(Ok(permit)), Some(msg)) => permit.send(msg),
                        _ => {
                            self.room_gone();
                            return;
                        }
                    }
                }
                next = poll_fn(|cx| socket_wake.poll_read(cx, |cx| self.socket.poll_next_unpin(cx))), if held.is_empty() && resume_at.is_none() => {
                    heard = Instant::now();
                    let read = self.read_burst(next, heard);
                    // It looked for more frames with a waker of its own.
                    socket_wake.read_again();
                    if !read.wait.is_zero() {
                        let at = heard + read.wait;
                        resume_at = Some(at);
                        if at < timer.deadline() {
                            timer.as_mut().reset(at);
                        }
                    }
                    for msg in read.messages {
                        if !held.is_empty() {
                            held.push_back(msg);
                            continue;
                        }
                        match mailbox.try_send(msg) {
                            Ok(()) => {}
                            Err(NotDelivered::Full(msg)) => held.push_back(msg),
                            Err(NotDelivered::Gone) => {
                                self.room_gone();
                                return;
                            }
                        }
                    }
                    if let Some((code, reason)) = read.close {
                        // What the client sent before the frame that ends it still counts.
                        // Boxed: a wait on the room's inbox under a timer is among the largest
                        // states of this loop, and it is reached once, at the end.
                        Box::pin(hand_over_within(CLOSE_GRACE, &mailbox, held)).await;
                        self.close.close(code, reason);
                        return;
                    }
                }
                () = &mut timer => {
                    let now = Instant::now();
                    if expires_at.is_some_and(|at| at <= now) {
                        self.close.close(close_code::FORBIDDEN, "token expired");
                        return;
                    }
                    if resume_at.is_some_and(|at| at <= now) {
                        resume_at = None;
                        // The socket went unread on purpose, with the peer's pongs in it: its
                        // silence counts from now.
                        heard = now;
                    }
                    if resume_at.is_none() && heard + peer_timeout <= now {
                        self.close.close(close_code::GOING_AWAY, "no pong or message in time");
                        return;
                    }
                    if next_ping <= now {
                        let ping = Box::pin(self.socket.send(WsMessage::Ping(Bytes::new())));
                        if socket_wake.io(ping).await.is_err()
                        {
                            self.close.close(close_code::GOING_AWAY, "write failed");
                            return;
                        }
                        next_ping = now + ping_interval;
                    }
                    let mut deadline = next_ping.min(heard + peer_timeout);
                    for at in [expires_at, resume_at].into_iter().flatten() {
                        deadline = deadline.min(at);
                    }
                    timer.as_mut().reset(deadline);
                }
            }
        }
    }

    /// Reads `next` and the frames already waiting behind it, received at `now`: what goes to
    /// the room, with a burst of updates merged into one (`crate::burst`), how long to leave
    /// the socket unread afterwards, and the close a frame earned, if one did. Never waits for
    /// a frame that has not arrived.
    fn read_burst(
        &mut self,
        next: Option<Result<WsMessage, tungstenite::Error>>,
        now: Instant,
    ) -> Read {
        let mut read = Read::default();
        let mut updates: Vec<Bytes> = Vec::new();
        let mut burst_bytes = 0;
        let mut next = Some(next);
        while let Some(frame) = next.take() {
            let (msg, len) = match self.receive(frame) {
                Ok(received) => received,
                Err(close) => {
                    read.close = Some(close);
                    break;
                }
            };
            let is_update = matches!(msg, Some(Message::Sync(SyncMessage::Update(_))));
            let wait = if is_update && !updates.is_empty() {
                self.rules.admit_in_burst(len, now)
            } else if len > 0 {
                self.rules.admit(len, now)
            } else {
                Duration::ZERO
            };
            read.wait = read.wait.max(wait);
            match msg {
                Some(Message::Sync(SyncMessage::Update(update))) => {
                    burst_bytes += update.len();
                    updates.push(update);
                }
                Some(other) => {
                    flush_burst(&mut updates, &mut read.messages);
                    read.messages.push(other);
                    break;
                }
                None if updates.is_empty() => break,
                None => {}
            }
            let room_for_more =
                updates.len() < burst::MAX_UPDATES && burst_bytes < burst::MAX_BYTES;
            if room_for_more && read.wait.is_zero() {
                next = self.socket.next().now_or_never();
            }
        }
        flush_burst(&mut updates, &mut read.messages);
        if !read.wait.is_zero() {
            tracing::debug!(
                wait_ms = read.wait.as_millis(),
                "over the rate: reading paused"
            );
        }
        read
    }

    /// What to do with what the socket gave: a message for the room (or nothing) and the bytes
    /// it counts against the connection's rate, or a close code and reason.
    fn receive(
        &mut self,
        next: Option<Result<WsMessage, tungstenite::Error>>,
    ) -> Result<(Option<Message>, usize), (u16, Cow<'static, str>)> {
        let frame = match next {
            None => return Err((close_code::GOING_AWAY, "peer gone".into())),
            Some(Err(error)) => return Err(read_error(&error)),
            Some(Ok(frame)) => frame,
        };
        match frame {
            WsMessage::Binary(bytes) => {
                metrics::get().message_in(&bytes);
                if let Some(history) = &mut self.history {
                    history.record(&bytes);
                }
                match check(&bytes, &mut self.rules) {
                    Ok(msg) => Ok((msg, bytes.len())),
                    Err((code, reason)) => {
                        tracing::info!(conn = %self.conn, doc = %self.room.name(), code, %reason, "refused a message");
                        Err((code, reason.into()))
                    }
                }
            }
            WsMessage::Text(_) => Err((
                close_code::UNSUPPORTED_DATA,
                "binary y-websocket messages only".into(),
            )),
            // tungstenite answers pings itself; a pong only proves the peer is alive, which
            // reaching this line already did.
            WsMessage::Ping(_) | WsMessage::Pong(_) | WsMessage::Frame(_) => Ok((None, 0)),
            WsMessage::Close(_) => Err((close_code::GOING_AWAY, "peer closed".into())),
        }
    }

    /// The room stopped: for shutdown, or because it failed.
    fn room_gone(&self) {
        if self.shutdown.is_cancelled() {
            self.close
                .close(close_code::GOING_AWAY, "server shutting down");
        } else {
            self.close
                .close(close_code::INTERNAL_ERROR, "room closed; reconnect");
        }
    }
}

/// Hands `held` to the room in order, giving each message at most `grace` to find room in its
/// inbox; stops at the first that does not.
async fn hand_over_within(grace: Duration, mailbox: &Mailbox, held: VecDeque<Message>) {
    for msg in held {
        if timeout(grace, mailbox.send(msg)).await.is_err() {
            break;
        }
    }
}

/// What one turn of reading the socket gave ([`Connection::read_burst`]).
#[derive(Default)]
struct Read {
    /// Messages for the room, in order.
    messages: Vec<Message>,
    /// How long to leave the socket unread: the connection is over its rate.
    wait: Duration,
    /// The close a frame earned; the messages before it still go to the room.
    close: Option<(u16, Cow<'static, str>)>,
}

/// Hands over the updates of a burst: merged into one when there are several and they merge.
fn flush_burst(updates: &mut Vec<Bytes>, messages: &mut Vec<Message>) {
    let merged = match updates.len() {
        0 => return,
        1 => None,
        _ => burst::merge(updates),
    };
    match merged {
        Some(update) => {
            updates.clear();
            messages.push(Message::Sync(SyncMessage::Update(update)));
        }
        None => messages.extend(
            updates
                .drain(..)
                .map(|update| Message::Sync(SyncMessage::Update(update))),
        ),
    }
}

/// Decodes a frame and, for document updates, runs the bounded validator, so that yrs never
/// sees an update that could crash, stall or fork it. Errors carry the close code: 1007 for
/// malformed input, 1008 for input over a limit.
fn check(frame: &Bytes, rules: &mut ConnectionRules) -> Result<Option<Message>, (u16, String)> {
    let msg = Message::decode(frame).map_err(|error| {
        (
            close_code::INVALID_PAYLOAD,
            format!("[malformed_message] {error}"),
        )
    })?;
    check_message(msg, rules)
}

/// The checks of [`check`] on a message already decoded (the Hocuspocus endpoint decodes its
/// own framing, then hands the y-websocket message inside to the same rules): `None` for a
/// request over the answer rate, which is ignored.
pub(crate) fn check_message(
    msg: Message,
    rules: &mut ConnectionRules,
) -> Result<Option<Message>, (u16, String)> {
    if matches!(
        msg,
        Message::Sync(SyncMessage::Step1(_)) | Message::QueryAwareness
    ) && !rules.may_answer()
    {
        return Ok(None);
    }
    if let Message::Awareness(update) = msg {
        let own = rules.check_awareness(update)?;
        return Ok((!own.entries.is_empty()).then_some(Message::Awareness(own)));
    }
    if let Message::Sync(SyncMessage::Step2(update) | SyncMessage::Update(update)) = &msg {
        validate_update_v1(update, &UpdateLimits::default()).map_err(|error| {
            let code = if error.is_policy() {
                close_code::POLICY
            } else {
                close_code::INVALID_PAYLOAD
            };
            let rule = error.rule();
            metrics::get().update_refused(rule);
            tracing::info!(rule, %error, "refused an update");
            // The rule first: close reasons are cut at 123 bytes.
            (code, format!("[{rule}] update refused: {error}"))
        })?;
    }
    Ok(Some(msg))
}

/// A read error's close code: 1009 for a message over `--max-message-bytes`.
fn read_error(error: &tungstenite::Error) -> (u16, Cow<'static, str>) {
    if matches!(error, tungstenite::Error::Capacity(_)) {
        (close_code::TOO_BIG, "message too big".into())
    } else {
        (close_code::GOING_AWAY, "connection error".into())
    }
}

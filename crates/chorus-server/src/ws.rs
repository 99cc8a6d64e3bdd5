//! The y-websocket endpoint: `GET /ws/<document>` upgraded to a WebSocket, one connection per
//! socket.
//!
//! A connection is one task: frames → decoded messages → the room, and the room's outbox →
//! frames, plus pings. Decoding happens here, off the room's task, so rooms spend their time on
//! documents only. Whoever decides the connection ends (this task, the room, shutdown) raises its
//! [`CloseSignal`]; the task then tells the room through [`RoomHandle::leave`] and sends the
//! close frame.

use std::borrow::Cow;
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use chorus_protocol::{DocName, Message, SyncMessage, UpdateLimits, validate_update_v1};
use futures_util::future::OptionFuture;
use futures_util::{FutureExt, SinkExt, StreamExt};
use tokio::time::{Instant, timeout};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;
use tungstenite::Message as WsMessage;
use tungstenite::protocol::WebSocketConfig;
use tungstenite::protocol::frame::coding::{CloseCode, Data, OpCode};
use tungstenite::protocol::frame::{CloseFrame, Frame};

use crate::access;
use crate::app::AppState;
use crate::auth::Mode;
use crate::auth_callback::AuthCallback;
use crate::burst;
use crate::conn::{CloseReason, CloseSignal, ConnId, OutboxReceiver, Peer, close_code, outbox};
use crate::error::ApiError;
use crate::handshake::{Socket, WsUpgrade};
use crate::hooks::ConnectionInfo;
use crate::limits::ConnectionRules;
use crate::metrics;
use crate::quarantine::{History, Quarantine};
use crate::room::handle::NotDelivered;
use crate::room::{JoinRefused, RoomHandle};

/// Frames a connection sends in one go before flushing: batching saves system calls when a busy
/// room queues many small updates, and bounds how long one connection holds its socket.
const WRITE_BATCH: usize = 64;
/// Bytes the WebSocket layer reads at a time. Each connection holds a buffer this size for its
/// whole life, so it dominates the memory of an idle connection (128 KiB by default, and still
/// half of it at 8 KiB). Updates and awareness messages are far smaller; larger messages are
/// read in several chunks (a 512 KiB upload in 1,024 reads), and tungstenite zero-fills the spare
/// buffer before each read, which a small buffer also makes cheaper.
const READ_BUFFER_BYTES: usize = 512;
/// Messages larger than this go out as several frames of this size. tungstenite copies a frame
/// whole into the connection's write buffer, which keeps its largest size for the connection's
/// life: one 20 MB frame would cost 20 MB per connection.
const FRAGMENT_BYTES: usize = 16 * 1024;
/// Bytes tungstenite gathers before writing to the socket (its default is 128 KiB). Batches of
/// small frames still go out in one system call; a fragmented message goes out a piece at a time.
const WRITE_BUFFER_BYTES: usize = 64 * 1024;
/// How long a connection tries to deliver the close frame to a peer that may not be reading.
const CLOSE_GRACE: Duration = Duration::from_secs(2);

/// What a connection was granted at the upgrade.
struct Grant {
    mode: Mode,
    /// When the token expires; the connection is closed with 4403 then.
    expires_at: Option<Instant>,
    /// The auth callback to ask again while connected, with the token it was asked about.
    recheck: Option<(Arc<AuthCallback>, Option<String>)>,
}

/// Upgrades `GET /ws/<document>`. The name, the origin and the token are checked before the
/// upgrade, so refused clients get a plain HTTP status.
pub(crate) async fn upgrade(
    ws: WsUpgrade,
    Path(doc): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    State(state): State<AppState>,
) -> Response {
    let doc = match DocName::parse(doc) {
        Ok(doc) => doc,
        Err(error) => {
            metrics::connection_rejected("invalid_document_name");
            return ApiError::InvalidDocName(error).into_response();
        }
    };
    if state.shutdown.is_cancelled() {
        metrics::connection_rejected("shutting_down");
        return ApiError::ShuttingDown.into_response();
    }
    if state.open_connections.load(Ordering::Relaxed) >= state.config.limits.max_connections {
        metrics::connection_rejected("node_full");
        return ApiError::Overloaded.into_response();
    }
    if !origin_allowed(&state.config.auth.allowed_origins, &headers) {
        metrics::connection_rejected("origin");
        return ApiError::Forbidden("this origin may not connect").into_response();
    }
    let token = query.get("token").map(String::as_str);
    let grant = match access::admit(&state, &doc, token, &headers).await {
        Ok(admitted) => Grant {
            mode: admitted.access.mode,
            expires_at: admitted.access.expires_at.map(access::deadline),
            recheck: admitted
                .recheck
                .map(|callback| (callback, token.map(str::to_owned))),
        },
        Err(error) => {
            metrics::connection_rejected("token");
            tracing::info!(%doc, %error, "connection refused");
            return error.into_response();
        }
    };
    let max = state.config.limits.max_message_bytes;
    let tracker = state.tracker.clone();
    let config = WebSocketConfig::default()
        .max_message_size(Some(max))
        .max_frame_size(Some(max))
        .read_buffer_size(READ_BUFFER_BYTES)
        .write_buffer_size(WRITE_BUFFER_BYTES);
    ws.on_upgrade(config, move |socket| {
        tracker.track_future(serve(socket, doc, grant, state))
    })
}

/// Browsers always send `Origin`; a page from another site must not use its visitor's
/// credentials here. Clients that are not browsers send none and are let through.
fn origin_allowed(allowed: &[String], headers: &HeaderMap) -> bool {
    if allowed.is_empty() {
        return true;
    }
    match headers.get(header::ORIGIN).map(|o| o.to_str()) {
        None => true,
        Some(Ok(origin)) => allowed.iter().any(|a| a.trim_end_matches('/') == origin),
        Some(Err(_)) => false,
    }
}

/// `GET /ws` without a document name.
pub(crate) async fn missing_doc() -> Response {
    ApiError::InvalidDocName(chorus_protocol::DocNameError::Empty).into_response()
}

/// A plain function returning the connection's future, not an `async fn`: the arguments of an
/// `async fn` keep their own slots in its state beside the block they move into, which made
/// every idle connection's task about a kilobyte larger.
fn serve(
    mut socket: Socket,
    doc: DocName,
    grant: Grant,
    state: AppState,
) -> impl std::future::Future<Output = ()> {
    let conn = ConnId::next();
    // A debug span: at the default level it is disabled and costs nothing, where an enabled
    // one keeps its formatted fields in the subscriber's registry for the connection's life
    // (≈ 550 bytes per idle connection). Events below that matter at info carry both fields.
    let span = tracing::debug_span!("conn", %conn, %doc);
    async move {
        let metrics = metrics::get();
        metrics.connections.increment(1.0);
        state.open_connections.fetch_add(1, Ordering::Relaxed);
        let (outbox_tx, mut outbox) = outbox(state.config.limits.outbox_capacity);
        let close = CloseSignal::new();
        let peer = Peer {
            outbox: outbox_tx,
            close: close.clone(),
            can_write: grant.mode == Mode::Write,
        };
        // Boxed, like the other one-off steps (hooks, the goodbye): the task's future keeps room
        // for its largest state for the connection's whole life.
        match Box::pin(state.rooms.join(&doc, conn, peer)).await {
            Ok(room) => {
                tracing::debug!("connected");
                let info = ConnectionInfo {
                    doc: doc.clone(),
                    conn,
                    mode: grant.mode,
                };
                state.hooks.on_connect(&info).await;
                if let Some((callback, token)) = grant.recheck {
                    tokio::spawn(access::recheck_until_closed(
                        callback,
                        state.config.auth.auth_callback_cache,
                        token,
                        doc.clone(),
                        grant.mode,
                        close.clone(),
                    ));
                }
                let mut connection = Connection {
                    socket: &mut socket,
                    outbox: &mut outbox,
                    room: &room,
                    conn,
                    close: &close,
                    shutdown: &state.shutdown,
                    history: state.quarantine.as_ref().map(|_| History::default()),
                    rules: ConnectionRules::new(
                        state.config.limits.max_messages_per_second,
                        state.config.limits.max_bytes_per_second,
                        state.config.limits.max_message_bytes,
                    ),
                };
                connection
                    .run(
                        state.config.sessions.ping_interval,
                        state.config.sessions.peer_timeout,
                        grant.expires_at,
                    )
                    .await;
                if let (Some(quarantine), Some(history), Some(reason)) =
                    (&state.quarantine, connection.history.take(), close.reason())
                    && Quarantine::is_refusal(&reason)
                {
                    quarantine.keep(&doc, conn, &reason, history);
                }
                Box::pin(room.leave(conn)).await;
                state.hooks.on_disconnect(&info).await;
            }
            Err(JoinRefused::ShuttingDown) => {
                close.close(close_code::GOING_AWAY, "server shutting down")
            }
            Err(JoinRefused::LoadFailed) => {
                close.close(close_code::INTERNAL_ERROR, "document could not be loaded")
            }
            Err(JoinRefused::RoomFull) => close.close(close_code::TRY_AGAIN_LATER, "room is full"),
        }
        let reason = close.closed().await;
        let _ = Box::pin(timeout(
            CLOSE_GRACE,
            goodbye(&mut socket, &mut outbox, &reason),
        ))
        .await;
        tracing::debug!(code = reason.code, reason = %reason.reason, "disconnected");
        metrics::connection_closed(reason.code);
        metrics.connections.decrement(1.0);
        state.open_connections.fetch_sub(1, Ordering::Relaxed);
    }
    .instrument(span)
}

/// One connection, served by one task: frames from the socket go to the room, frames from the
/// room's outbox go to the socket, and pings keep the link checked.
///
/// One task rather than a reader and a writer: an idle connection is then one task, one future
/// and no split-stream lock, which is most of what it costs besides its buffers. The loop never
/// waits on the room with its socket unattended: a message the room's full inbox cannot take
/// yet is held while the outbox keeps draining.
struct Connection<'a> {
    socket: &'a mut Socket,
    outbox: &'a mut OutboxReceiver,
    room: &'a RoomHandle,
    conn: ConnId,
    close: &'a CloseSignal,
    shutdown: &'a CancellationToken,
    rules: ConnectionRules,
    /// The last messages the client sent, kept only with `--quarantine-dir`.
    history: Option<History>,
}

impl Connection<'_> {
    /// Serves until the peer leaves, breaks a rule, goes silent, or the connection is closed
    /// from elsewhere. Every way out raises the close signal.
    async fn run(
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
        loop {
            tokio::select! {
                biased;
                _ = &mut closed => return,
                frame = self.outbox.recv() => {
                    let Some(frame) = frame else {
                        // The room dropped this connection without a reason: it failed.
                        self.close.close(close_code::INTERNAL_ERROR, "room closed; reconnect");
                        return;
                    };
                    // Boxed: suspended mid-write is the largest state of this loop, and an idle
                    // connection's task would keep room for it all the time.
                    let sent = tokio::select! {
                        sent = Box::pin(send_batch(self.socket, frame, self.outbox)) => sent,
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
                next = self.socket.next(), if held.is_empty() && resume_at.is_none() => {
                    heard = Instant::now();
                    let read = self.read_burst(next, heard);
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
                        for msg in held.drain(..) {
                            if timeout(CLOSE_GRACE, mailbox.send(msg)).await.is_err() {
                                break;
                            }
                        }
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
                        if Box::pin(self.socket.send(WsMessage::Ping(Bytes::new())))
                            .await
                            .is_err()
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

/// Sends the close frame. Frames already queued are still delivered when the server shuts down,
/// so clients get everything the room accepted before it said goodbye.
async fn goodbye(
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

async fn send_batch(
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
async fn feed(socket: &mut Socket, mut message: Bytes) -> Result<(), tungstenite::Error> {
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
fn truncate_reason(reason: &str) -> &str {
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

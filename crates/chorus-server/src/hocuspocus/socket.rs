//! One Hocuspocus socket's reading half: frames in, routed by address to the document's
//! session, or queued until its token is checked; token checks run beside the reading, so a
//! slow auth callback for one document holds up no other. The updates a socket has already
//! received for one document when it reads the first of them are merged into one before the
//! room sees them (`crate::burst`), as on the y-websocket path; each still gets its own sync
//! status, since the provider counts them one by one.

use std::borrow::Cow;
use std::collections::HashMap;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use axum::http::HeaderMap;
use bytes::Bytes;
use chorus_protocol::hocuspocus::{
    HocusMessage, Incoming, PONG, authenticated_frame, close_frame, permission_denied_frame,
    sync_status_body,
};
use chorus_protocol::{Message, SyncMessage};
use futures_util::stream::{FuturesUnordered, SplitStream};
use futures_util::{Future, FutureExt, StreamExt};
use tokio::sync::mpsc;
use tokio::time::{Instant, timeout};
use tungstenite::Message as WsMessage;

use super::queue::{Overflow, PreAuth};
use super::session::{Ended, Opened, Session, open};
use super::writer::Out;
use super::{CONNECTION_TIMEOUT, NORMAL_CLOSURE, RESET_CONNECTION};
use crate::app::AppState;
use crate::burst;
use crate::conn::{CloseReason, close_code};
use crate::handshake::Socket;
use crate::hooks::StatelessMessage;
use crate::ws::{CLOSE_GRACE, check_message};

type Opening = Pin<Box<dyn Future<Output = Opened> + Send>>;

/// A reason to close the whole socket.
type Closing = (u16, Cow<'static, str>);

/// The sessions and pending documents of one socket.
pub(super) struct HocusSocket {
    state: AppState,
    headers: Arc<HeaderMap>,
    to_socket: mpsc::Sender<Out>,
    sessions: HashMap<String, Session>,
    pre_auth: PreAuth,
    opening: FuturesUnordered<Opening>,
    ended_tx: mpsc::UnboundedSender<Ended>,
    ended_rx: mpsc::UnboundedReceiver<Ended>,
    /// A v4 provider (it sends its version with the token) answers the bare ping frame; a v3
    /// one would fail to parse it, so it gets WebSocket pings only.
    app_pings: bool,
    /// Whether any document has been let in on this socket (then it lives like any other).
    admitted: bool,
    /// Updates for one open, writable document read back to back, waiting to be merged
    /// (`crate::burst`); handed over before anything else is.
    burst: Option<Burst>,
}

/// Updates of one session read in one go ([`HocusSocket::flush_burst`]).
struct Burst {
    address: String,
    updates: Vec<Bytes>,
    bytes: usize,
}

impl Burst {
    fn has_room(&self) -> bool {
        self.updates.len() < burst::MAX_UPDATES && self.bytes < burst::MAX_BYTES
    }
}

impl HocusSocket {
    pub(super) fn new(state: AppState, headers: HeaderMap, to_socket: mpsc::Sender<Out>) -> Self {
        let (ended_tx, ended_rx) = mpsc::unbounded_channel();
        Self {
            state,
            headers: Arc::new(headers),
            to_socket,
            sessions: HashMap::new(),
            pre_auth: PreAuth::default(),
            opening: FuturesUnordered::new(),
            ended_tx,
            ended_rx,
            app_pings: false,
            admitted: false,
            burst: None,
        }
    }

    /// Serves until the peer leaves, breaks a rule, goes silent, or the server stops; returns
    /// how the socket is to be closed.
    pub(super) async fn run(
        &mut self,
        stream: &mut SplitStream<Socket>,
        writer: &mut tokio::task::JoinHandle<()>,
    ) -> CloseReason {
        let sessions = self.state.config.sessions.clone();
        let (ping_interval, peer_timeout) = (sessions.ping_interval, sessions.peer_timeout);
        let mut next_ping = Instant::now() + ping_interval;
        let mut heard = Instant::now();
        // Until a document is let in, the socket has `peer_timeout` from its opening, however
        // much it sends: frames that are only queued must not keep it alive for ever.
        let admit_by = heard + peer_timeout;
        let timer = tokio::time::sleep_until(next_ping.min(heard + peer_timeout));
        tokio::pin!(timer);
        let shutdown = self.state.shutdown.clone();
        // On shutdown the rooms apply what is queued, release what waited for the log and then
        // close their sessions (1001), which closes the socket: the acknowledgements of the
        // last edits still go out. A socket with no session has nothing to wait for.
        let mut stopping = false;
        let closing: Closing = loop {
            if stopping && self.sessions.is_empty() {
                break (close_code::GOING_AWAY, "server shutting down".into());
            }
            tokio::select! {
                biased;
                () = shutdown.cancelled(), if !stopping => stopping = true,
                _ = &mut *writer => break (close_code::GOING_AWAY, "write failed".into()),
                Some(ended) = self.ended_rx.recv() => {
                    if let Err(closing) = self.session_ended(ended).await {
                        break closing;
                    }
                }
                Some(opened) = self.opening.next(), if !self.opening.is_empty() => {
                    if let Err(closing) = self.opened(opened).await {
                        break closing;
                    }
                }
                next = stream.next() => {
                    heard = Instant::now();
                    let mut received = self.receive(next).await;
                    // Frames already read off the socket join a burst of updates; nothing
                    // waits for one that has not arrived.
                    while matches!(&received, Ok(wait) if wait.is_zero())
                        && self.burst.as_ref().is_some_and(Burst::has_room)
                    {
                        let Some(next) = stream.next().now_or_never() else {
                            break;
                        };
                        received = self.receive(next).await;
                    }
                    if let Err(closing) = self.flush_burst().await {
                        break closing;
                    }
                    match received {
                        Ok(wait) if wait.is_zero() => {}
                        // Over the rate: the socket stays unread, so TCP makes the client wait.
                        Ok(wait) => {
                            tracing::debug!(wait_ms = wait.as_millis(), "over the rate: reading paused");
                            tokio::time::sleep(wait).await;
                            heard = Instant::now();
                        }
                        Err(closing) => break closing,
                    }
                }
                () = &mut timer => {
                    let now = Instant::now();
                    if heard + peer_timeout <= now {
                        break (close_code::GOING_AWAY, "no pong or message in time".into());
                    }
                    if !self.admitted && admit_by <= now {
                        break (CONNECTION_TIMEOUT, "no document authenticated in time".into());
                    }
                    if next_ping <= now {
                        let _ = self.to_socket.try_send(Out::Ping);
                        if self.app_pings {
                            let _ = self.to_socket.try_send(Out::Frame(Bytes::from_static(&[chorus_protocol::hocuspocus::PING])));
                        }
                        next_ping = now + ping_interval;
                    }
                    let mut deadline = next_ping.min(heard + peer_timeout);
                    if !self.admitted {
                        deadline = deadline.min(admit_by);
                    }
                    timer.as_mut().reset(deadline);
                }
            }
        };
        CloseReason {
            code: closing.0,
            reason: closing.1,
        }
    }

    /// Ends every session (each leaves its room) and every token check in flight.
    pub(super) async fn close_all(&mut self, reason: &CloseReason) {
        for (_, session) in self.sessions.drain() {
            session.close.close(reason.code, reason.reason.clone());
            Box::pin(session.room.leave(session.conn)).await;
            self.state.hooks.on_disconnect(&session.info).await;
        }
        // A check that already joined a room must leave it again.
        self.opening.clear();
    }

    /// What the socket gave: how long to leave it unread, or why it closes.
    async fn receive(
        &mut self,
        next: Option<Result<WsMessage, tungstenite::Error>>,
    ) -> Result<Duration, Closing> {
        let frame = match next {
            None => return Err((close_code::GOING_AWAY, "peer gone".into())),
            Some(Err(tungstenite::Error::Capacity(_))) => {
                return Err((close_code::TOO_BIG, "message too big".into()));
            }
            Some(Err(_)) => return Err((close_code::GOING_AWAY, "connection error".into())),
            Some(Ok(frame)) => frame,
        };
        match frame {
            WsMessage::Binary(bytes) => self.frame(bytes).await,
            WsMessage::Text(_) => Err((
                close_code::UNSUPPORTED_DATA,
                "binary Hocuspocus messages only".into(),
            )),
            WsMessage::Ping(_) | WsMessage::Pong(_) | WsMessage::Frame(_) => Ok(Duration::ZERO),
            WsMessage::Close(_) => Err((close_code::GOING_AWAY, "peer closed".into())),
        }
    }

    async fn frame(&mut self, bytes: Bytes) -> Result<Duration, Closing> {
        let len = bytes.len();
        if self.burst.as_ref().is_some_and(|burst| !burst.has_room()) {
            self.flush_burst().await?;
        }
        let incoming = Incoming::decode(&bytes).map_err(|error| {
            tracing::info!(%error, "refused a hocuspocus frame");
            (
                close_code::INVALID_PAYLOAD,
                Cow::Owned(format!("[malformed_message] {error}")),
            )
        })?;
        let (address, message) = match incoming {
            Incoming::Ping => {
                send(&self.to_socket, Bytes::from_static(&[PONG])).await;
                return Ok(Duration::ZERO);
            }
            Incoming::Pong => return Ok(Duration::ZERO),
            Incoming::Addressed { address, message } => (address, message),
        };
        // Counted by the body, as for y-websocket, so the kinds mean the same.
        let body_at = chorus_protocol::lib0::var_uint_len(address.len() as u64) + address.len();
        crate::metrics::get().message_in(bytes.get(body_at..).unwrap_or_default());
        if matches!(message, HocusMessage::BroadcastStateless) {
            return Err(broadcast_refused());
        }
        let joins_burst = matches!(
            message,
            HocusMessage::Y(Message::Sync(SyncMessage::Update(_)))
        ) && self
            .burst
            .as_ref()
            .is_some_and(|burst| burst.address == address);
        if !joins_burst {
            // Anything else goes after the burst, as it was sent.
            self.flush_burst().await?;
        }
        if self.sessions.contains_key(&address) {
            return self.deliver(&address, message, len).await;
        }
        match message {
            HocusMessage::Token { token, version }
                if !self.pre_auth.is_authenticating(&address) =>
            {
                self.pre_auth
                    .start_authenticating(&address)
                    .map_err(overflowed)?;
                self.app_pings |= version.is_some();
                let opening = open(
                    self.state.clone(),
                    Arc::clone(&self.headers),
                    address,
                    token,
                );
                self.opening.push(Box::pin(opening));
            }
            // The provider left before it was let in: what waited for it goes.
            HocusMessage::Close => {
                self.pre_auth.take(&address);
            }
            message => self
                .pre_auth
                .push(&address, message, len)
                .map_err(overflowed)?,
        }
        Ok(Duration::ZERO)
    }

    /// A token check ended: the session opens and gets what waited for it, or the provider
    /// learns why not and may send another token.
    async fn opened(&mut self, opened: Opened) -> Result<(), Closing> {
        let Opened { address, outcome } = opened;
        // Frames queued after the provider left and came back wait for their own token.
        let ours =
            self.pre_auth.is_authenticating(&address) && !self.sessions.contains_key(&address);
        let waiting = ours
            .then(|| self.pre_auth.take(&address))
            .flatten()
            .map(|(queued, _)| queued);
        let Some(queued) = waiting else {
            // The provider left meanwhile, or another check opened it first.
            if let Ok(joined) = outcome {
                joined
                    .close
                    .close(close_code::GOING_AWAY, "document closed");
                Box::pin(joined.room.leave(joined.conn)).await;
                self.state.hooks.on_disconnect(&joined.info).await;
            }
            return Ok(());
        };
        let joined = match outcome {
            Ok(joined) => joined,
            Err(reason) => {
                // Everything that waited goes with the refusal; a retry starts afresh.
                send(&self.to_socket, permission_denied_frame(&address, &reason)).await;
                return Ok(());
            }
        };
        self.admitted = true;
        let read_only = joined.info.mode == crate::auth::Mode::Read;
        send(&self.to_socket, authenticated_frame(&address, read_only)).await;
        tracing::debug!(conn = %joined.conn, doc = %joined.info.doc, "hocuspocus document opened");
        let session = joined.serve(
            &self.state,
            &address,
            self.to_socket.clone(),
            self.ended_tx.clone(),
        );
        self.sessions.insert(address.clone(), session);
        self.flush_burst().await?;
        for message in queued {
            if !self.sessions.contains_key(&address) {
                break;
            }
            // Already counted against the socket's queue; the rate does not pause replay.
            let _ = self.deliver(&address, message, 0).await?;
        }
        self.flush_burst().await?;
        Ok(())
    }

    /// A message for an open session, through the same checks as a y-websocket connection's.
    async fn deliver(
        &mut self,
        address: &str,
        message: HocusMessage,
        len: usize,
    ) -> Result<Duration, Closing> {
        let Some(session) = self.sessions.get_mut(address) else {
            return Ok(Duration::ZERO);
        };
        let in_burst = self
            .burst
            .as_ref()
            .is_some_and(|burst| burst.address == address);
        let wait = if len == 0 {
            Duration::ZERO
        } else if in_burst {
            session.rules.admit_in_burst(len, Instant::now())
        } else {
            session.rules.admit(len, Instant::now())
        };
        match message {
            HocusMessage::Y(msg) => {
                if let Some(history) = &mut session.history {
                    // Re-encoded: the same bytes as the frame's body (lib0 writes one
                    // encoding), and a sync reply becomes the sync message it stands for.
                    history.record(&msg.encode());
                }
                let checked = match check_message(msg, &mut session.rules) {
                    Ok(checked) => checked,
                    Err((code, reason)) => {
                        tracing::info!(conn = %session.conn, doc = %session.info.doc, code, %reason, "refused a message");
                        let reason = CloseReason {
                            code,
                            reason: Cow::Owned(reason),
                        };
                        session.keep_evidence(self.state.quarantine.as_ref(), &reason);
                        return Err((reason.code, reason.reason));
                    }
                };
                let Some(msg) = checked else {
                    return Ok(wait);
                };
                let is_update = matches!(
                    msg,
                    Message::Sync(SyncMessage::Update(_) | SyncMessage::Step2(_))
                );
                if is_update && session.read_only {
                    // Never applied. As `@hocuspocus/server` does: a read-only step 2 that
                    // adds nothing to the document (its delete set is always there, so it is
                    // rarely empty) is acknowledged, since the provider has no edits to lose;
                    // one with edits, and any update, gets sync status 0. The answer goes
                    // through the room, behind the frames it has queued for this session: the
                    // provider counts itself synced at its last sync status, so it must not
                    // overtake the room's sync step 2.
                    let answered = match msg {
                        Message::Sync(SyncMessage::Step2(update)) => {
                            session
                                .mailbox
                                .answer_read_only(
                                    update,
                                    sync_status_body(true),
                                    sync_status_body(false),
                                )
                                .await
                        }
                        _ => session.mailbox.when_durable(sync_status_body(false)).await,
                    };
                    if answered.is_err() {
                        return Err(self.room_gone());
                    }
                    return Ok(wait);
                }
                if let Message::Sync(SyncMessage::Update(update)) = msg {
                    // Joins the burst; handed over (and acknowledged) by `flush_burst`.
                    let burst = self.burst.get_or_insert_with(|| Burst {
                        address: address.to_owned(),
                        updates: Vec::new(),
                        bytes: 0,
                    });
                    burst.bytes += update.len();
                    burst.updates.push(update);
                    return Ok(wait);
                }
                let delivered = session.mailbox.send(msg).await;
                let delivered = match delivered {
                    Ok(()) if is_update => {
                        // Answered by the room once the update is in the update log.
                        session.mailbox.when_durable(sync_status_body(true)).await
                    }
                    other => other,
                };
                if delivered.is_err() {
                    return Err(self.room_gone());
                }
            }
            // Already authenticated: Hocuspocus ignores a second token too.
            HocusMessage::Token { .. } => {}
            HocusMessage::Stateless(payload) => {
                let message = StatelessMessage {
                    doc: session.info.doc.clone(),
                    conn: session.conn,
                    payload,
                };
                self.state.hooks.on_stateless(&message).await;
                if session.mailbox.stateless(message.payload).await.is_err() {
                    return Err(self.room_gone());
                }
            }
            HocusMessage::BroadcastStateless => return Err(broadcast_refused()),
            HocusMessage::Close => {
                if let Some(session) = self.sessions.remove(address) {
                    session
                        .close
                        .close(NORMAL_CLOSURE, "provider closed the document");
                    Box::pin(session.room.leave(session.conn)).await;
                    self.state.hooks.on_disconnect(&session.info).await;
                }
            }
        }
        Ok(wait)
    }

    /// Hands the burst's updates to their session's room: merged into one when there are
    /// several and they merge (else one by one, which is always correct), then one durable
    /// sync status per update the provider sent, in order.
    async fn flush_burst(&mut self) -> Result<(), Closing> {
        let Some(Burst {
            address, updates, ..
        }) = self.burst.take()
        else {
            return Ok(());
        };
        // A session closed meanwhile: its provider gets no answer, as it would not anyway.
        let Some(session) = self.sessions.get(&address) else {
            return Ok(());
        };
        let merged = match updates.len() {
            0 => return Ok(()),
            1 => None,
            _ => burst::merge(&updates),
        };
        let mut delivered = match merged {
            Some(update) => {
                session
                    .mailbox
                    .send(Message::Sync(SyncMessage::Update(update)))
                    .await
            }
            None => {
                let mut sent = Ok(());
                for update in &updates {
                    sent = session
                        .mailbox
                        .send(Message::Sync(SyncMessage::Update(update.clone())))
                        .await;
                    if sent.is_err() {
                        break;
                    }
                }
                sent
            }
        };
        for _ in &updates {
            if delivered.is_err() {
                break;
            }
            // Answered by the room once the updates are in the update log.
            delivered = session.mailbox.when_durable(sync_status_body(true)).await;
        }
        delivered.map_err(|_| self.room_gone())
    }

    /// A session ended from the server's side. A lost grant (expired or revoked token) or a
    /// deleted document ends that document only: the provider gets a close message for it.
    /// Anything else (a refused update, a slow reader, a failed room, shutdown) closes the
    /// socket with the same code a y-websocket connection gets, and every provider on it
    /// reconnects and resyncs.
    async fn session_ended(&mut self, ended: Ended) -> Result<(), Closing> {
        let address: &str = &ended.address;
        let Some(session) = self.sessions.get(address) else {
            return Ok(());
        };
        if session.conn != ended.conn {
            return Ok(());
        }
        let Some(mut session) = self.sessions.remove(address) else {
            return Ok(());
        };
        // The room refused an update (a rule only it can check): the evidence is kept too.
        session.keep_evidence(self.state.quarantine.as_ref(), &ended.reason);
        Box::pin(session.room.leave(session.conn)).await;
        self.state.hooks.on_disconnect(&session.info).await;
        let reason = ended.reason;
        match reason.code {
            close_code::FORBIDDEN | close_code::DOCUMENT_DELETED => {
                let text = format!("{} {}", reason.code, reason.reason);
                send(&self.to_socket, close_frame(address, &text)).await;
                Ok(())
            }
            code => Err((code, reason.reason)),
        }
    }

    fn room_gone(&self) -> Closing {
        if self.state.shutdown.is_cancelled() {
            (close_code::GOING_AWAY, "server shutting down".into())
        } else {
            (close_code::INTERNAL_ERROR, "room closed; reconnect".into())
        }
    }

    /// Waits (briefly) for the client to answer the close frame, so it reads the close code
    /// rather than a reset connection.
    pub(super) async fn await_close_answer(stream: &mut SplitStream<Socket>) {
        let _ = timeout(CLOSE_GRACE, async {
            while let Some(Ok(frame)) = stream.next().await {
                if matches!(frame, WsMessage::Close(_)) {
                    break;
                }
            }
        })
        .await;
    }
}

/// Queues a frame for the socket; a socket whose writer has stopped is closing anyway. (A free
/// function: an `&self` held across the wait would need the socket's state to be `Sync`.)
async fn send(to_socket: &mpsc::Sender<Out>, frame: Bytes) {
    let _ = to_socket.send(Out::Frame(frame)).await;
}

fn overflowed(Overflow(what): Overflow) -> Closing {
    tracing::info!(
        what,
        "hocuspocus socket queued too much before authentication"
    );
    (RESET_CONNECTION, Cow::Borrowed(what))
}

fn broadcast_refused() -> Closing {
    (
        close_code::POLICY,
        "[broadcast_stateless] BroadcastStateless is server-internal; send Stateless".into(),
    )
}

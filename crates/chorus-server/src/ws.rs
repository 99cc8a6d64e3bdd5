//! The y-websocket endpoint: `GET /ws/<document>` upgraded to a WebSocket, one connection per
//! socket.
//!
//! A connection is a reader (this task: frames → decoded messages → the room) and a writer task
//! (the room's outbox → frames, plus pings). Decoding happens here, off the room's task, so rooms
//! spend their time on documents only. When either half ends, the other is told through the
//! connection's [`CloseSignal`], the room is told through [`RoomHandle::leave`].

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message as WsMessage, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use chorus_protocol::{DocName, Message, SyncMessage, UpdateLimits, validate_update_v1};
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use tokio::sync::mpsc;
use tokio::time::{Instant, MissedTickBehavior, timeout};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::access;
use crate::app::AppState;
use crate::auth::Mode;
use crate::conn::{CloseReason, CloseSignal, ConnId, Peer, close_code};
use crate::error::ApiError;
use crate::hooks::ConnectionInfo;
use crate::limits::ConnectionRules;
use crate::metrics;
use crate::room::{JoinRefused, RoomHandle};

/// Frames the writer sends in one go before flushing: batching saves system calls when a busy
/// room queues many small updates, and bounds how long one connection holds its socket.
const WRITE_BATCH: usize = 64;
/// Bytes the WebSocket layer reads at a time. Each connection holds a buffer this size for its
/// whole life, so it dominates the memory of an idle connection (128 KiB by default); larger
/// messages are simply read in several chunks.
const READ_BUFFER_BYTES: usize = 8 * 1024;
/// How long the writer tries to deliver the close frame to a peer that may not be reading.
const CLOSE_GRACE: Duration = Duration::from_secs(2);

/// What a connection was granted at the upgrade.
struct Grant {
    mode: Mode,
    /// When the token expires; the connection is closed with 4403 then.
    expires_at: Option<Instant>,
}

/// Upgrades `GET /ws/<document>`. The name, the origin and the token are checked before the
/// upgrade, so refused clients get a plain HTTP status.
pub(crate) async fn upgrade(
    ws: WebSocketUpgrade,
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
    if state.open_connections.load(Ordering::Relaxed) >= state.config.max_connections {
        metrics::connection_rejected("node_full");
        return ApiError::Overloaded.into_response();
    }
    if !origin_allowed(&state.config.allowed_origins, &headers) {
        metrics::connection_rejected("origin");
        return ApiError::Forbidden("this origin may not connect").into_response();
    }
    let token = query.get("token").map(String::as_str);
    let grant = match access::admit(&state, &doc, token, &headers).await {
        Ok(access) => Grant {
            mode: access.mode,
            expires_at: access.expires_at.map(access::deadline),
        },
        Err(error) => {
            metrics::connection_rejected("token");
            tracing::info!(%doc, %error, "connection refused");
            return error.into_response();
        }
    };
    let max = state.config.max_message_bytes;
    let tracker = state.tracker.clone();
    ws.max_message_size(max)
        .max_frame_size(max)
        .read_buffer_size(READ_BUFFER_BYTES)
        .on_upgrade(move |socket| tracker.track_future(serve(socket, doc, grant, state)))
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

async fn serve(socket: WebSocket, doc: DocName, grant: Grant, state: AppState) {
    let conn = ConnId::next();
    let span = tracing::info_span!("conn", %conn, %doc);
    async move {
        let metrics = metrics::get();
        metrics.connections.increment(1.0);
        state.open_connections.fetch_add(1, Ordering::Relaxed);
        let (outbox_tx, outbox_rx) = mpsc::channel(state.config.outbox_capacity);
        let close = CloseSignal::new();
        let (sink, stream) = socket.split();
        let writer = tokio::spawn(
            write_loop(sink, outbox_rx, close.clone(), state.config.ping_interval)
                .in_current_span(),
        );
        let peer = Peer {
            outbox: outbox_tx,
            close: close.clone(),
            can_write: grant.mode == Mode::Write,
        };
        match state.rooms.join(&doc, conn, peer).await {
            Ok(room) => {
                tracing::debug!("connected");
                let info = ConnectionInfo {
                    doc: doc.clone(),
                    conn,
                    mode: grant.mode,
                };
                state.hooks.on_connect(&info).await;
                let peer = ReadSide {
                    room: &room,
                    conn,
                    close: &close,
                    peer_timeout: state.config.peer_timeout,
                    shutdown: &state.shutdown,
                    expires_at: grant.expires_at,
                    rules: ConnectionRules::new(
                        state.config.max_messages_per_second,
                        state.config.max_bytes_per_second,
                        state.config.max_message_bytes,
                    ),
                };
                read_loop(stream, peer).await;
                room.leave(conn).await;
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
        let _ = writer.await;
        if let Some(CloseReason { code, reason }) = close.reason() {
            tracing::debug!(code, %reason, "disconnected");
            metrics::connection_closed(code);
        }
        metrics.connections.decrement(1.0);
        state.open_connections.fetch_sub(1, Ordering::Relaxed);
    }
    .instrument(span)
    .await
}

/// What the reader of one connection works with.
struct ReadSide<'a> {
    room: &'a RoomHandle,
    conn: ConnId,
    close: &'a CloseSignal,
    peer_timeout: Duration,
    shutdown: &'a CancellationToken,
    expires_at: Option<Instant>,
    rules: ConnectionRules,
}

/// Reads frames until the peer leaves, breaks a rule, goes silent, or the connection is closed
/// from elsewhere. Every way out raises the close signal, which stops the writer.
async fn read_loop(mut stream: SplitStream<WebSocket>, side: ReadSide<'_>) {
    let ReadSide {
        room,
        conn,
        close,
        peer_timeout,
        shutdown,
        expires_at,
        mut rules,
    } = side;
    loop {
        let next = tokio::select! {
            _ = close.closed() => return,
            () = sleep_until_opt(expires_at) => {
                close.close(close_code::FORBIDDEN, "token expired");
                return;
            }
            next = timeout(peer_timeout, stream.next()) => next,
        };
        let frame = match next {
            Err(_silent) => {
                close.close(close_code::GOING_AWAY, "no pong or message in time");
                return;
            }
            Ok(None) => {
                close.close(close_code::GOING_AWAY, "peer gone");
                return;
            }
            Ok(Some(Err(error))) => {
                close_for_read_error(close, error);
                return;
            }
            Ok(Some(Ok(frame))) => frame,
        };
        match frame {
            WsMessage::Binary(bytes) => {
                metrics::get().message_in(&bytes);
                match rules
                    .admit(bytes.len())
                    .and_then(|()| check(&bytes, &mut rules))
                {
                    Ok(None) => {}
                    Ok(Some(msg)) => {
                        if room.send(conn, msg).await.is_err() {
                            // The room stopped: for shutdown, or because it failed.
                            if shutdown.is_cancelled() {
                                close.close(close_code::GOING_AWAY, "server shutting down");
                            } else {
                                close.close(close_code::INTERNAL_ERROR, "room closed; reconnect");
                            }
                            return;
                        }
                    }
                    Err((code, reason)) => {
                        tracing::info!(code, %reason, "refused a message");
                        close.close(code, reason);
                        return;
                    }
                }
            }
            WsMessage::Text(_) => {
                close.close(
                    close_code::UNSUPPORTED_DATA,
                    "binary y-websocket messages only",
                );
                return;
            }
            // The WebSocket layer answers pings itself; a pong only proves the peer is alive,
            // which reaching this line already did.
            WsMessage::Ping(_) | WsMessage::Pong(_) => {}
            WsMessage::Close(_) => {
                close.close(close_code::GOING_AWAY, "peer closed");
                return;
            }
        }
    }
}

/// Decodes a frame and, for document updates, runs the bounded validator, so that yrs never
/// sees an update that could crash, stall or fork it. Errors carry the close code: 1007 for
/// malformed input, 1008 for input over a limit.
fn check(frame: &Bytes, rules: &mut ConnectionRules) -> Result<Option<Message>, (u16, String)> {
    let msg = Message::decode(frame).map_err(|error| {
        (
            close_code::INVALID_PAYLOAD,
            format!("malformed message: {error}"),
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
            let code = if error.is_limit() {
                close_code::POLICY
            } else {
                close_code::INVALID_PAYLOAD
            };
            (code, format!("update refused: {error}"))
        })?;
    }
    Ok(Some(msg))
}

async fn sleep_until_opt(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

fn close_for_read_error(close: &CloseSignal, error: axum::Error) {
    let too_big = error
        .into_inner()
        .downcast::<tungstenite::Error>()
        .is_ok_and(|e| matches!(*e, tungstenite::Error::Capacity(_)));
    if too_big {
        close.close(close_code::TOO_BIG, "message too big");
    } else {
        close.close(close_code::GOING_AWAY, "connection error");
    }
}

/// Sends the room's frames and pings until the close signal is raised, then sends the close
/// frame. Frames already queued are still delivered when the server shuts down, so clients get
/// everything the room accepted before it said goodbye.
async fn write_loop(
    mut sink: SplitSink<WebSocket, WsMessage>,
    mut outbox: mpsc::Receiver<Bytes>,
    close: CloseSignal,
    ping_interval: Duration,
) {
    let mut ping = tokio::time::interval(ping_interval);
    ping.set_missed_tick_behavior(MissedTickBehavior::Delay);
    ping.reset();
    let reason = loop {
        tokio::select! {
            biased;
            reason = close.closed() => break reason,
            frame = outbox.recv() => {
                let Some(frame) = frame else {
                    // The room dropped this connection without a reason: it failed.
                    close.close(close_code::INTERNAL_ERROR, "room closed; reconnect");
                    continue;
                };
                if send_batch(&mut sink, frame, &mut outbox).await.is_err() {
                    close.close(close_code::GOING_AWAY, "write failed");
                }
            }
            _ = ping.tick() => {
                if sink.send(WsMessage::Ping(Bytes::new())).await.is_err() {
                    close.close(close_code::GOING_AWAY, "write failed");
                }
            }
        }
    };
    let goodbye = async {
        if reason.code == close_code::GOING_AWAY {
            while let Ok(frame) = outbox.try_recv() {
                sink.feed(WsMessage::Binary(frame)).await?;
            }
        }
        sink.send(WsMessage::Close(Some(CloseFrame {
            code: reason.code,
            reason: truncate_reason(&reason.reason).into(),
        })))
        .await
    };
    let _ = timeout(CLOSE_GRACE, goodbye).await;
}

async fn send_batch(
    sink: &mut SplitSink<WebSocket, WsMessage>,
    first: Bytes,
    outbox: &mut mpsc::Receiver<Bytes>,
) -> Result<(), axum::Error> {
    let metrics = metrics::get();
    metrics.message_out(&first);
    sink.feed(WsMessage::Binary(first)).await?;
    for _ in 1..WRITE_BATCH {
        match outbox.try_recv() {
            Ok(frame) => {
                metrics.message_out(&frame);
                sink.feed(WsMessage::Binary(frame)).await?;
            }
            Err(_) => break,
        }
    }
    sink.flush().await
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

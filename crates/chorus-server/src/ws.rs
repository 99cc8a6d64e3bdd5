//! The y-websocket endpoint: `GET /ws/<document>` upgraded to a WebSocket, one connection per
//! socket.
//!
//! A connection is one task: frames → decoded messages → the room, and the room's outbox →
//! frames, plus pings. Decoding happens here, off the room's task, so rooms spend their time on
//! documents only. Whoever decides the connection ends (this task, the room, shutdown) raises its
//! [`CloseSignal`]; the task then tells the room through `RoomHandle::leave` and sends the
//! close frame.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use chorus_protocol::DocName;
use chorus_room::Identity;
use tokio::time::{Instant, timeout};
use tracing::Instrument;
use tungstenite::protocol::WebSocketConfig;

use crate::access;
use crate::app::AppState;
use crate::auth::Mode;
use crate::auth_callback::AuthCallback;
use crate::conn::{CloseSignal, ConnId, Peer, close_code, outbox};
use crate::error::ApiError;
use crate::handshake::{Socket, WsUpgrade};
use crate::hooks::ConnectionInfo;
use crate::limits::ConnectionRules;
use crate::metrics;
use crate::quarantine::Quarantine;
use crate::room::JoinRefused;

/// Frames a connection sends in one go before flushing: batching saves system calls when a busy
/// room queues many small updates, and bounds how long one connection holds its socket.
pub(crate) const WRITE_BATCH: usize = 64;
/// Bytes the WebSocket layer reads at a time. Each connection holds a buffer this size for its
/// whole life, so it dominates the memory of an idle connection (128 KiB by default, and still
/// half of it at 8 KiB; 512 bytes were a tenth of an idle connection). Typing updates and
/// awareness messages are smaller; larger messages are read in several chunks (a 512 KiB upload
/// in 2,048 reads instead of 1,024 at 512 bytes), and tungstenite zero-fills the
/// spare buffer before each read, which a small buffer also makes cheaper.
const READ_BUFFER_BYTES: usize = 256;
/// Messages larger than this go out as several frames of this size. tungstenite copies a frame
/// whole into the connection's write buffer, which keeps its largest size for the connection's
/// life: one 20 MB frame would cost 20 MB per connection.
const FRAGMENT_BYTES: usize = 16 * 1024;
/// Bytes tungstenite gathers before writing to the socket (its default is 128 KiB). Batches of
/// small frames still go out in one system call; a fragmented message goes out a piece at a time.
const WRITE_BUFFER_BYTES: usize = 64 * 1024;
mod connection;
mod socket_wake;
mod write;

use connection::Connection;
pub(crate) use connection::check_message;
use write::goodbye;
pub(crate) use write::{feed, truncate_reason};

/// How long a connection tries to deliver the close frame to a peer that may not be reading.
pub(crate) const CLOSE_GRACE: Duration = Duration::from_secs(2);

/// What a connection was granted at the upgrade.
struct Grant {
    mode: Mode,
    /// Who the connection's edits are attributed to.
    identity: Identity,
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
    if let Err(refused) = node_accepts(&state, &headers) {
        return refused.into_response();
    }
    let token = query.get("token").map(String::as_str);
    let grant = match access::admit(&state, &doc, token, &headers).await {
        Ok(admitted) => Grant {
            mode: admitted.access.mode,
            identity: admitted.identity(),
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
    let tracker = state.tracker.clone();
    let config = socket_config(state.config.limits.max_message_bytes);
    ws.on_upgrade(config, move |socket| {
        let task = serve(socket, doc, grant, state);
        // What every idle connection costs besides its buffers: watch it when changing `serve`.
        tracing::debug!(
            future_bytes = std::mem::size_of_val(&task),
            "connection task"
        );
        tracker.track_future(task)
    })
}

/// The WebSocket settings of every connection: messages up to `max` bytes, small buffers.
pub(crate) fn socket_config(max: usize) -> WebSocketConfig {
    WebSocketConfig::default()
        .max_message_size(Some(max))
        .max_frame_size(Some(max))
        .read_buffer_size(READ_BUFFER_BYTES)
        .write_buffer_size(WRITE_BUFFER_BYTES)
}

/// Browsers always send `Origin`; a page from another site must not use its visitor's
/// credentials here. Clients that are not browsers send none and are let through.
pub(crate) fn origin_allowed(allowed: &[String], headers: &HeaderMap) -> bool {
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
            takes_stateless: false,
            identity: grant.identity,
        };
        // Boxed, like the other one-off steps (hooks, the goodbye): the task's future keeps room
        // for its largest state for the connection's whole life.
        match Box::pin(state.rooms.join(&doc, conn, peer)).await {
            Ok(room) => {
                tracing::debug!("connected");
                // Made for each hook call rather than kept: it would sit in every idle
                // connection's task, with its own copy of the document name.
                {
                    let info = ConnectionInfo {
                        doc: doc.clone(),
                        conn,
                        mode: grant.mode,
                    };
                    state.hooks.on_connect(&info).await;
                }
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
                    history: state.quarantine.as_ref().map(|_| Box::default()),
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
                    quarantine.keep(&doc, conn, &reason, *history);
                }
                Box::pin(room.leave(conn)).await;
                let info = ConnectionInfo {
                    doc: doc.clone(),
                    conn,
                    mode: grant.mode,
                };
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

/// What every WebSocket upgrade passes before its protocol's own checks, y-websocket's and
/// Hocuspocus's alike: the node is not shutting down or full, and the origin may connect. A
/// refusal is counted under its reason.
pub(crate) fn node_accepts(state: &AppState, headers: &HeaderMap) -> Result<(), ApiError> {
    let (reason, error) = if state.shutdown.is_cancelled() {
        ("shutting_down", ApiError::ShuttingDown)
    } else if state.open_connections.load(Ordering::Relaxed) >= state.config.limits.max_connections
    {
        ("node_full", ApiError::Overloaded)
    } else if !origin_allowed(&state.config.auth.allowed_origins, headers) {
        ("origin", ApiError::Forbidden("this origin may not connect"))
    } else {
        return Ok(());
    };
    metrics::connection_rejected(reason);
    Err(error)
}

//! The Hocuspocus endpoint: `GET /hocuspocus` upgraded to a WebSocket that carries any number
//! of documents, as `@hocuspocus/provider` (v3 and v4) speaks to it. The protocol is chosen by
//! the route, never guessed from bytes.
//!
//! Each document on the socket is a session of its own, joined to the document's room exactly
//! like a y-websocket connection: its own connection id, token check and grant (the
//! `authenticate` hook, signed tokens or the auth callback), rate limits and outbox. The room
//! neither knows nor cares which protocol a connection speaks; this module only translates
//! frames (`varString(address) • varUint(type) • payload`, see
//! [`chorus_protocol::hocuspocus`]) and adds what Hocuspocus has and y-websocket does not:
//!
//! - **Authentication on the socket.** Frames that arrive before a document's token passes
//!   wait in a bounded queue (`queue`), closed with 4205 past 5 MiB, 1,000 messages or 100
//!   pending documents. A refused token gets a permission-denied message with the reason;
//!   the provider may send another on the same socket. A socket with no document let in
//!   within `--peer-timeout` of opening is closed with 4408, whatever it sends meanwhile.
//! - **Durable sync status.** After each update or sync step 2 a session asks its room for a
//!   frame once everything applied is in the update log
//!   ([`chorus_room::RoomCore::when_durable`]): the provider's `unsyncedChanges` reaches 0
//!   only when its edits are stored under the node's `--fsync` policy. A read-only session's
//!   update gets sync status 0, and so does its sync step 2 when it carries edits; a step 2
//!   that adds nothing to the document gets 1, as `@hocuspocus/server` answers (the provider
//!   has nothing unsaved). A refused update closes the socket as it would a y-websocket
//!   connection.
//! - **Stateless messages** go to the document's other Hocuspocus clients on every node (via
//!   the relay) and to [`Hooks::on_stateless`](crate::Hooks::on_stateless).
//!
//! # Layout
//! - `socket`: the reading half: routing by address, token checks, the rules.
//! - `session`: one document on the socket, and the forwarder from its outbox.
//! - `queue`: the pre-authentication queue and its bounds.
//! - `writer`: the writing half.

mod queue;
mod session;
mod socket;
mod writer;

use std::sync::atomic::Ordering;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use tokio::sync::mpsc;
use tokio::time::timeout;
use tracing::Instrument;

use crate::app::AppState;
use crate::handshake::{Socket, WsUpgrade};
use crate::metrics;
use crate::ws::{CLOSE_GRACE, node_accepts, socket_config};

use socket::HocusSocket;
use writer::{Out, SOCKET_QUEUE};

/// Hocuspocus's `ResetConnection`: the socket queued too much before authenticating.
pub const RESET_CONNECTION: u16 = 4205;
/// Hocuspocus's `ConnectionTimeout`: no document was let in within `--peer-timeout` of the
/// socket opening.
pub const CONNECTION_TIMEOUT: u16 = 4408;
/// RFC 6455 normal closure: the provider closed a document itself.
const NORMAL_CLOSURE: u16 = 1000;

/// Upgrades `GET /hocuspocus`. Tokens come later, per document, over the socket; the origin
/// and the node's connection limit are checked here.
pub(crate) async fn upgrade(
    ws: WsUpgrade,
    headers: HeaderMap,
    State(state): State<AppState>,
) -> Response {
    if let Err(refused) = node_accepts(&state, &headers) {
        return refused.into_response();
    }
    let tracker = state.tracker.clone();
    let config = socket_config(state.config.limits.max_message_bytes);
    ws.on_upgrade(config, move |socket| {
        tracker.track_future(serve(socket, headers, state))
    })
}

fn serve(
    socket: Socket,
    headers: HeaderMap,
    state: AppState,
) -> impl std::future::Future<Output = ()> {
    let span = tracing::debug_span!("hocuspocus");
    async move {
        let gauges = metrics::get();
        gauges.connections.increment(1.0);
        state.open_connections.fetch_add(1, Ordering::Relaxed);
        let (sink, mut stream) = socket.split();
        let (to_socket, queue) = mpsc::channel(SOCKET_QUEUE);
        let mut writer = state.tracker.spawn(writer::write(sink, queue));
        let mut socket = HocusSocket::new(state.clone(), headers, to_socket.clone());
        let reason = socket.run(&mut stream, &mut writer).await;
        socket.close_all(&reason).await;
        drop(socket);
        if !writer.is_finished() {
            let _ = timeout(CLOSE_GRACE, to_socket.send(Out::Close(reason.clone()))).await;
            drop(to_socket);
            let _ = timeout(CLOSE_GRACE, &mut writer).await;
            HocusSocket::await_close_answer(&mut stream).await;
        }
        writer.abort();
        tracing::debug!(code = reason.code, reason = %reason.reason, "hocuspocus socket closed");
        metrics::connection_closed(reason.code);
        gauges.connections.decrement(1.0);
        state.open_connections.fetch_sub(1, Ordering::Relaxed);
    }
    .instrument(span)
}

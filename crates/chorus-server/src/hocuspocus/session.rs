//! One document on a Hocuspocus socket: a connection of its own to the room, exactly as a
//! y-websocket connection is (its own id, grant, rules, outbox and close signal), opened when
//! its token passes and closed without touching the socket's other documents.

use std::sync::Arc;

use axum::http::HeaderMap;
use bytes::Bytes;
use chorus_protocol::DocName;
use chorus_protocol::hocuspocus::{addressed, document_of, sync_status_body};
use chorus_protocol::message::{AUTH_PERMISSION_DENIED, MSG_AUTH};
use tokio::sync::mpsc;
use tokio::time::{Instant, sleep_until};

use super::writer::Out;
use crate::access;
use crate::app::AppState;
use crate::auth::Mode;
use crate::auth_callback::AuthCallback;
use crate::conn::{CloseReason, CloseSignal, ConnId, OutboxReceiver, Peer, close_code, outbox};
use crate::hooks::ConnectionInfo;
use crate::limits::ConnectionRules;
use crate::quarantine::{History, Quarantine};
use crate::room::RoomHandle;
use crate::room::handle::Mailbox;

/// An open document on the socket.
pub(super) struct Session {
    pub conn: ConnId,
    pub room: RoomHandle,
    pub mailbox: Mailbox,
    pub close: CloseSignal,
    /// Granted `read` only: updates never reach the room's document; they are answered with
    /// sync status 0, a step 2 that adds nothing with 1.
    pub read_only: bool,
    pub rules: ConnectionRules,
    pub info: ConnectionInfo,
    /// The last sync and awareness messages the provider sent for this document (their
    /// y-websocket-shaped bodies, the honest corpus' format), kept only with
    /// `--quarantine-dir`; boxed, as for a y-websocket connection.
    pub history: Option<Box<History>>,
}

impl Session {
    /// Keeps the evidence of a refused update (`crate::quarantine`), when the session was
    /// closed for one and a quarantine directory is set.
    pub fn keep_evidence(&mut self, quarantine: Option<&Arc<Quarantine>>, reason: &CloseReason) {
        if let (Some(quarantine), Some(history)) = (quarantine, self.history.take())
            && Quarantine::is_refusal(reason)
        {
            quarantine.keep(&self.info.doc, self.conn, reason, *history);
        }
    }
}

/// A token checked and, when it passed, the room joined.
pub(super) struct Opened {
    pub address: String,
    pub outcome: Result<Joined, String>,
}

/// A session that has joined its room and waits to be served.
pub(super) struct Joined {
    pub conn: ConnId,
    pub room: RoomHandle,
    pub outbox: OutboxReceiver,
    pub close: CloseSignal,
    pub info: ConnectionInfo,
    pub expires_at: Option<Instant>,
    recheck: Option<(Arc<AuthCallback>, Option<String>)>,
}

/// A session the room, its token's expiry or the auth callback ended; the socket's reader
/// forgets it and decides whether the socket goes too.
#[derive(Debug)]
pub(super) struct Ended {
    pub address: Arc<str>,
    pub conn: ConnId,
    pub reason: CloseReason,
}

/// Checks `token` for the document at `address` as the y-websocket endpoint checks its
/// `?token=` (the `authenticate` hook, signed tokens or the auth callback), then joins the
/// room. The error is the reason the provider gets in its permission-denied message.
pub(super) async fn open(
    state: AppState,
    headers: Arc<HeaderMap>,
    address: String,
    token: String,
) -> Opened {
    let outcome = join(&state, &headers, &address, token).await;
    Opened { address, outcome }
}

async fn join(
    state: &AppState,
    headers: &HeaderMap,
    address: &str,
    token: String,
) -> Result<Joined, String> {
    let doc = DocName::parse(document_of(address).to_owned())
        .map_err(|error| format!("invalid document name: {error}"))?;
    // The provider sends an empty token when it has none.
    let token = Some(token).filter(|token| !token.is_empty());
    let admitted = access::admit(state, &doc, token.as_deref(), headers)
        .await
        .map_err(|error| {
            crate::metrics::connection_rejected("token");
            tracing::info!(%doc, %error, "hocuspocus document refused");
            error.to_string()
        })?;
    let mode = admitted.access.mode;
    let (outbox_tx, outbox_rx) = outbox(state.config.limits.outbox_capacity);
    let close = CloseSignal::new();
    let conn = ConnId::next();
    let peer = Peer {
        outbox: outbox_tx,
        close: close.clone(),
        can_write: mode == Mode::Write,
        takes_stateless: true,
        identity: admitted.identity(),
    };
    let room = Box::pin(state.rooms.join(&doc, conn, peer))
        .await
        .map_err(|refused| refused.to_string())?;
    let info = ConnectionInfo { doc, conn, mode };
    state.hooks.on_connect(&info).await;
    Ok(Joined {
        conn,
        room,
        outbox: outbox_rx,
        close,
        info,
        expires_at: admitted.access.expires_at.map(access::deadline),
        recheck: admitted.recheck.map(|callback| (callback, token)),
    })
}

impl Joined {
    /// Starts serving: the forwarder from the room's outbox to the socket, and the auth
    /// callback's re-checks when it granted the session.
    pub(super) fn serve(
        self,
        state: &AppState,
        address: &str,
        to_socket: mpsc::Sender<Out>,
        ended: mpsc::UnboundedSender<Ended>,
    ) -> Session {
        let limits = &state.config.limits;
        if let Some((callback, token)) = self.recheck {
            tokio::spawn(access::recheck_until_closed(
                callback,
                state.config.auth.auth_callback_cache,
                token,
                self.info.doc.clone(),
                self.info.mode,
                self.close.clone(),
            ));
        }
        let forwarder = Forwarder {
            address: Arc::from(address),
            conn: self.conn,
            close: self.close.clone(),
            to_socket,
            ended,
        };
        state
            .tracker
            .spawn(forwarder.run(self.outbox, self.expires_at));
        Session {
            conn: self.conn,
            mailbox: self.room.mailbox(self.conn),
            room: self.room,
            close: self.close,
            read_only: self.info.mode == Mode::Read,
            rules: ConnectionRules::new(
                limits.max_messages_per_second,
                limits.max_bytes_per_second,
                limits.max_message_bytes,
            ),
            info: self.info,
            history: state.quarantine.as_ref().map(|_| Box::default()),
        }
    }
}

/// Carries one session's frames from its room outbox to the socket, translated.
struct Forwarder {
    address: Arc<str>,
    conn: ConnId,
    close: CloseSignal,
    to_socket: mpsc::Sender<Out>,
    ended: mpsc::UnboundedSender<Ended>,
}

impl Forwarder {
    async fn run(self, mut outbox: OutboxReceiver, expires_at: Option<Instant>) {
        let closed = self.close.closed();
        tokio::pin!(closed);
        let expiry = async {
            match expires_at {
                Some(at) => sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        tokio::pin!(expiry);
        let reason = loop {
            tokio::select! {
                biased;
                reason = &mut closed => {
                    // At shutdown, what the room queued before saying goodbye is still
                    // delivered (the last sync statuses among it), as for y-websocket.
                    if reason.code == close_code::GOING_AWAY {
                        while let Some(frame) = outbox.try_recv() {
                            let out = Out::Frame(translate(&self.address, &frame));
                            if self.to_socket.send(out).await.is_err() {
                                break;
                            }
                        }
                    }
                    break reason;
                }
                () = &mut expiry => self.close.close(close_code::FORBIDDEN, "token expired"),
                frame = outbox.recv() => {
                    let Some(frame) = frame else {
                        // The room dropped this session without a reason: it failed.
                        self.close.close(close_code::INTERNAL_ERROR, "room closed; reconnect");
                        continue;
                    };
                    // Counted by the body, as for y-websocket, so the kinds mean the same.
                    crate::metrics::get().message_out(&frame);
                    let out = Out::Frame(translate(&self.address, &frame));
                    tokio::select! {
                        sent = self.to_socket.send(out) => if sent.is_err() { return },
                        reason = &mut closed => break reason,
                    }
                }
            }
        };
        let _ = self.ended.send(Ended {
            address: self.address,
            conn: self.conn,
            reason,
        });
    }
}

/// A frame the room queued (y-websocket shaped: type, then payload) as the Hocuspocus frame
/// for `address`. Sync, awareness, query-awareness, stateless and sync status carry the same
/// body in both protocols. The one difference is the room's permission-denied for a read-only
/// peer's update, which Hocuspocus says as sync status 0 (sessions keep read-only updates
/// from the room, so it is only a safeguard).
pub(super) fn translate(address: &str, frame: &Bytes) -> Bytes {
    if frame.starts_with(&[MSG_AUTH as u8, AUTH_PERMISSION_DENIED as u8]) {
        return addressed(address, &sync_status_body(false));
    }
    addressed(address, frame)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chorus_protocol::message::{SYNC_UPDATE, permission_denied_frame, sync_frame};

    #[test]
    fn room_frames_get_the_address_and_read_only_refusals_become_sync_status_0() {
        let update = sync_frame(SYNC_UPDATE, &[0, 0]);
        assert_eq!(
            translate("d", &update).as_ref(),
            [1, b'd', 0, 2, 2, 0, 0].as_slice()
        );
        assert_eq!(
            translate("d", &permission_denied_frame("read-only connection")).as_ref(),
            [1, b'd', 8, 0].as_slice()
        );
    }
}

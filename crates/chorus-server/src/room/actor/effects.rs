//! Carrying out what the core decided: frames into outboxes, publishes to the relay, change
//! notices, metrics; appends and snapshots start as background writes.

use std::time::SystemTime;

use bytes::Bytes;
use chorus_protocol::hocuspocus::stateless_body;
use chorus_room::{Counted, Effect, Publish};
use tokio::sync::mpsc::error::TrySendError;

use super::{Room, now};
use crate::conn::ConnId;
use crate::hooks::DocChange;
use crate::metrics;
use crate::relay::Body;

impl Room {
    /// Carries out every effect the core has queued, in order.
    pub(super) fn carry_out(&mut self) {
        while let Some(effect) = self.core.poll_effect() {
            match effect {
                Effect::Send { conn, frame } => self.send_to(conn, frame),
                Effect::Broadcast { frame, except } => self.broadcast(&frame, except),
                Effect::Close { conn, code, reason } => {
                    if let Some(peer) = self.peers.remove(&conn) {
                        peer.close.close(code, reason);
                    }
                }
                Effect::Append(batch) => self.start_append(batch),
                Effect::Publish(message) => self.publish(message),
                Effect::Answer(reply, result) => {
                    let _ = reply.send(result);
                }
                Effect::Save(snapshot) => self.start_save(snapshot),
                Effect::Announce(state) => {
                    if let Some(changes) = &self.ctx.changes {
                        changes.notify(DocChange {
                            doc: self.name.clone(),
                            state,
                            at: SystemTime::now(),
                        });
                    }
                }
                Effect::Count(counted) => count(counted),
            }
        }
    }

    /// Queues `frame` for every connection but `except`. The bytes are shared, not copied.
    fn broadcast(&mut self, frame: &Bytes, except: Option<ConnId>) {
        let mut failed = Vec::new();
        for (&conn, peer) in &self.peers {
            if Some(conn) == except {
                continue;
            }
            if let Err(error) = peer.outbox.try_send(frame.clone()) {
                failed.push((conn, matches!(error, TrySendError::Full(_))));
            }
        }
        for (conn, full) in failed {
            self.unreachable(conn, full);
        }
    }

    /// Queues a stateless message for every Hocuspocus connection but `except`. It is not
    /// part of the document, so it needs no log; a full outbox is a slow peer as for any frame.
    pub(super) fn stateless(&mut self, except: Option<ConnId>, payload: &str) {
        let frame = stateless_body(payload);
        let mut failed = Vec::new();
        for (&conn, peer) in &self.peers {
            if Some(conn) == except || !peer.takes_stateless {
                continue;
            }
            if let Err(error) = peer.outbox.try_send(frame.clone()) {
                failed.push((conn, matches!(error, TrySendError::Full(_))));
            }
        }
        for (conn, full) in failed {
            self.unreachable(conn, full);
        }
    }

    fn send_to(&mut self, conn: ConnId, frame: Bytes) {
        let Some(peer) = self.peers.get(&conn) else {
            return;
        };
        if let Err(error) = peer.outbox.try_send(frame) {
            self.unreachable(conn, matches!(error, TrySendError::Full(_)));
        }
    }

    /// A full outbox means a slow peer; a closed one, a peer whose `Leave` is on its way.
    fn unreachable(&mut self, conn: ConnId, full: bool) {
        if !full {
            self.peers.remove(&conn);
        }
        self.core.unreachable(conn, full, now());
    }

    fn publish(&self, message: Publish) {
        let Some(relay) = &self.ctx.relay else {
            return;
        };
        let body = match message {
            Publish::Update(update) => Body::Update(update),
            Publish::Awareness(update) => Body::Awareness(update),
            Publish::SyncRequest(sv) => Body::SyncRequest(sv),
            Publish::Deleted => Body::Deleted,
        };
        relay.publish(&self.name, body);
    }
}

fn count(counted: Counted) {
    let metrics = metrics::get();
    match counted {
        Counted::Refused(rule) => metrics.update_refused(rule),
        Counted::Held => metrics.updates_held.increment(1),
        Counted::SlowPeer => metrics.slow_client_disconnects.increment(1),
    }
}

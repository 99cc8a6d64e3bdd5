//! [`RoomCore`]: one room's state and every decision it makes. Calls come in (a client's
//! message, another node's update, a deadline passing, an append completing); [`Effect`]s come
//! out, for the driver to carry out in order.
//!
//! - this file: the room's state, connections joining and leaving, and client messages;
//! - [`relay`]: what other nodes send and what the room tells them;
//! - `timers`: deadlines: presence batches, change notices, snapshots, idleness;
//! - `lifecycle`: loading, and the ends of a room (unload, shutdown, deletion, failure).

mod lifecycle;
pub mod relay;
mod timers;

use std::borrow::Cow;
use std::collections::{HashMap, VecDeque};
use std::time::Instant;

use bytes::Bytes;
use chorus_protocol::message::{durable_frame, permission_denied_frame};
use chorus_protocol::{AwarenessEntry, Message, StateVector, SyncFrame, SyncMessage};

pub use lifecycle::LoadError;
pub use timers::Wake;

use crate::activity::{Activity, Tally};
use crate::close_code;
use crate::doc::{ClientUpdateError, DocError, RoomDoc};
use crate::effect::{Counted, Effect, WriteRefused};
use crate::held::Held;
use crate::ids::{ConnId, Identity};
use crate::presence::{Owner, Presence};
use crate::settings::{RoomSettings, Surroundings};
use crate::write_ahead::{Outgoing, WriteAhead};

/// What the room knows of one connection.
#[derive(Debug)]
struct Peer {
    /// False for read-only tokens: none of this peer's updates is applied.
    can_write: bool,
    /// Client ids new to the document that this peer's updates brought so far; bounded by
    /// [`DocLimits::max_clients_per_connection`](crate::DocLimits).
    clients_introduced: usize,
    /// Who this peer's accepted updates are attributed to.
    identity: Identity,
}

/// One room without I/O. `R` is how the driver answers a server-side write (a oneshot sender
/// in the server, `()` in tests and the fuzzer).
pub struct RoomCore<R> {
    doc: RoomDoc,
    presence: Presence,
    peers: HashMap<ConnId, Peer>,
    /// Client updates waiting for clocks the document lacks.
    held: Held<ConnId>,
    /// Durable acknowledgements ([`RoomCore::when_durable`]) of connections with held
    /// updates: a held update is neither applied nor logged, so nothing acknowledges it until
    /// it is.
    acks_behind_held: HashMap<ConnId, Vec<Bytes>>,
    /// An append was abandoned (shutdown with a failing store): what it carried is not in the
    /// log, so this room sends no durable acknowledgement again.
    log_gave_up: bool,
    log: WriteAhead<R>,
    settings: RoomSettings,
    around: Surroundings,
    timers: timers::Timers,
    effects: VecDeque<Effect<R>>,
    /// Accepted updates per identity since the driver last took them.
    activity: Tally,
}

impl<R> RoomCore<R> {
    /// An empty room, created at `now`.
    ///
    /// # Errors
    /// As [`RoomDoc::with_limits`].
    pub fn new(
        settings: RoomSettings,
        around: Surroundings,
        now: Instant,
    ) -> Result<Self, DocError> {
        Ok(Self {
            doc: RoomDoc::with_limits(settings.doc_limits)?,
            presence: Presence::default(),
            peers: HashMap::new(),
            held: Held::new(settings.held_limits),
            acks_behind_held: HashMap::new(),
            log_gave_up: false,
            log: WriteAhead::default(),
            timers: timers::Timers::new(&settings, around, now),
            settings,
            around,
            effects: VecDeque::new(),
            activity: Tally::default(),
        })
    }

    /// Whether updates were accepted since [`RoomCore::take_activity`] was last called.
    pub fn has_activity(&self) -> bool {
        !self.activity.is_empty()
    }

    /// Updates accepted per identity since the last call (see [`crate::activity`]).
    pub fn take_activity(&mut self) -> Vec<Activity> {
        self.activity.take()
    }

    /// The next effect to carry out, oldest first.
    pub fn poll_effect(&mut self) -> Option<Effect<R>> {
        self.effects.pop_front()
    }

    /// Connections in the room.
    pub fn peer_count(&self) -> usize {
        self.peers.len()
    }

    /// The document, for reading.
    pub fn doc(&self) -> &RoomDoc {
        &self.doc
    }

    /// Updates (or parts) `conn` keeps waiting for missing clocks.
    pub fn held_count(&self, conn: ConnId) -> usize {
        self.held.count(conn)
    }

    /// The whole document as a snapshot would store it, without counting it as saved (for
    /// checks; the room's own snapshots come as [`Effect::Save`]).
    ///
    /// # Errors
    /// [`DocError::Panicked`]: the room must be dropped.
    pub fn encode_snapshot(&mut self) -> Result<Bytes, DocError> {
        self.doc.snapshot()
    }

    /// Adds a connection whose updates are attributed to [`Identity::anonymous`]; see
    /// [`RoomCore::join_as`].
    ///
    /// # Errors
    /// [`DocError::Panicked`]: the room must be dropped ([`RoomCore::fail`]).
    pub fn join(&mut self, conn: ConnId, can_write: bool) -> Result<bool, DocError> {
        self.join_as(conn, can_write, Identity::anonymous())
    }

    /// Adds a connection: queues sync step 1 and the current awareness for it, the first frames
    /// it gets. Its accepted updates are attributed to `identity`. Returns false, and adds
    /// nothing, when the room is full.
    ///
    /// # Errors
    /// [`DocError::Panicked`]: the room must be dropped ([`RoomCore::fail`]).
    pub fn join_as(
        &mut self,
        conn: ConnId,
        can_write: bool,
        identity: Identity,
    ) -> Result<bool, DocError> {
        if self.peers.len() >= self.settings.max_peers {
            return Ok(false);
        }
        let step1 = self.doc.step1()?;
        self.peers.insert(
            conn,
            Peer {
                can_write,
                clients_introduced: 0,
                identity,
            },
        );
        self.timers.occupied();
        // Two frames, never one: y-websocket reads only the first message of a frame.
        self.send_to(conn, step1);
        if let Some(awareness) = self.presence.full_frame() {
            self.send_to(conn, awareness);
        }
        tracing::debug!(%conn, peers = self.peers.len(), "joined");
        Ok(true)
    }

    /// A connection has gone; its awareness states and held updates go with it.
    pub fn leave(&mut self, conn: ConnId, now: Instant) {
        if self.peers.remove(&conn).is_none() {
            return;
        }
        // Its next sync step 2 brings what it kept waiting here.
        self.held.forget(conn);
        self.acks_behind_held.remove(&conn);
        let removed = self.presence.remove_owner(Owner::Local(conn));
        self.queue_presence(removed, true, now);
        if self.peers.is_empty() {
            self.timers.emptied(&self.settings, now);
        }
        tracing::debug!(%conn, peers = self.peers.len(), "left");
    }

    /// A frame could not be queued for `conn`: its outbox is `full` (a slow peer, closed with
    /// 1013 rather than waited for or skipped: a client that misses an update would diverge,
    /// one that reconnects resyncs), or the connection is gone.
    pub fn unreachable(&mut self, conn: ConnId, full: bool, now: Instant) {
        if !full {
            self.leave(conn, now);
        } else if self.peers.contains_key(&conn) {
            tracing::warn!(%conn, "connection too slow; disconnecting it");
            self.effects.push_back(Effect::Count(Counted::SlowPeer));
            self.close(
                conn,
                close_code::TRY_AGAIN_LATER,
                "too slow; reconnect to resync".into(),
                now,
            );
        }
    }

    /// A decoded message from a connection in the room.
    ///
    /// # Errors
    /// [`DocError::Panicked`]: the room must be dropped ([`RoomCore::fail`]). Everything else
    /// is dealt with here, by closing the one connection at fault.
    pub fn receive(&mut self, conn: ConnId, msg: Message, now: Instant) -> Result<(), DocError> {
        let Some(peer) = self.peers.get(&conn) else {
            // A message that was queued before its connection was disconnected.
            return Ok(());
        };
        match msg {
            Message::Sync(SyncMessage::Step1(state_vector)) => {
                let frame = self.doc.step2(&state_vector)?.frame().clone();
                // The answer may contain updates still on their way to the log.
                if let Some(reply) = self.log.push_reply(Outgoing::Reply { conn, frame }) {
                    self.send_out(reply);
                }
            }
            Message::Sync(SyncMessage::Step2(update) | SyncMessage::Update(update)) => {
                if peer.can_write {
                    self.admit_update(conn, &update, now)?;
                    self.release_held(now)?;
                    self.pump_log();
                } else {
                    // Read-only: never applied, stored or relayed; y-protocols' way to say so.
                    self.send_to(conn, permission_denied_frame("read-only connection"));
                }
            }
            Message::Awareness(update) => {
                let changed = self.presence.apply(Owner::Local(conn), update.entries, now);
                self.queue_presence(changed, true, now);
            }
            Message::QueryAwareness => {
                if let Some(awareness) = self.presence.full_frame() {
                    self.send_to(conn, awareness);
                }
            }
            // Clients have nothing to tell the server through auth messages; the reference
            // server ignores them too.
            Message::Auth(_) => {}
            Message::Durable(id) => self.when_durable(conn, durable_frame(id)),
        }
        Ok(())
    }

    /// Applies what of a client's update the document can take now, and holds the rest.
    fn admit_update(&mut self, from: ConnId, update: &[u8], now: Instant) -> Result<(), DocError> {
        let Some(peer) = self.peers.get_mut(&from) else {
            return Ok(());
        };
        let applied = match self.doc.apply_client(update, &mut peer.clients_introduced) {
            Ok(applied) => applied,
            Err(ClientUpdateError::OverLimit {
                rule,
                reason,
                detail,
            }) => {
                self.refuse(from, close_code::POLICY, rule, reason, &detail, now);
                return Ok(());
            }
            Err(ClientUpdateError::Refused { rule, detail }) => {
                let code = close_code::INVALID_PAYLOAD;
                self.refuse(from, code, rule, "update refused", &detail, now);
                return Ok(());
            }
            Err(ClientUpdateError::Doc(DocError::Invalid(reason))) => {
                let code = close_code::INVALID_PAYLOAD;
                self.refuse(from, code, "yrs_refused", "invalid update", &reason, now);
                return Ok(());
            }
            Err(ClientUpdateError::Doc(DocError::Panicked)) => return Err(DocError::Panicked),
        };
        if let Some(delta) = applied.delta {
            // Counted only once accepted: attribution never changes what is accepted.
            self.activity.count(&peer.identity, delta.payload().len());
            // The sender has what it sent; anything else that integrated with it, it may lack.
            let except = (!applied.sender_may_lack).then_some(from);
            self.record_change(delta, except, true, now);
        }
        if let Some(released) = applied.released {
            // Other nodes' updates: to every connection, and not published back.
            self.record_change(released, None, false, now);
        }
        for held in applied.held {
            tracing::debug!(conn = %from, needs = ?held.needs, "holding an update until the clocks it follows arrive");
            self.effects.push_back(Effect::Count(Counted::Held));
            if let Err(error) = self.held.hold(from, held) {
                let reason = "too many updates waiting for missing content";
                self.refuse(
                    from,
                    close_code::POLICY,
                    "too_many_held",
                    reason,
                    &error,
                    now,
                );
                return Ok(());
            }
        }
        Ok(())
    }

    /// Applies every held update the document now has the clocks for, in each connection's
    /// arrival order, until none is left that can go.
    fn release_held(&mut self, now: Instant) -> Result<(), DocError> {
        while !self.held.is_empty() {
            let Some((conn, update)) = self.doc.take_ready(&mut self.held)? else {
                break;
            };
            self.admit_update(conn, &update, now)?;
        }
        if !self.acks_behind_held.is_empty() {
            let unblocked: Vec<ConnId> = (self.acks_behind_held.keys())
                .filter(|&&conn| self.held.count(conn) == 0)
                .copied()
                .collect();
            for conn in unblocked {
                for frame in self.acks_behind_held.remove(&conn).unwrap_or_default() {
                    self.push_durable(conn, frame);
                }
            }
        }
        Ok(())
    }

    /// A server-side read: what a peer at `since` lacks (everything if `None`), as one Yjs v1
    /// update.
    ///
    /// # Errors
    /// [`DocError::Panicked`]: the room must be dropped.
    pub fn read(&mut self, since: Option<&StateVector>) -> Result<Bytes, DocError> {
        let since = since.cloned().unwrap_or_default();
        Ok(self.doc.step2(&since)?.payload())
    }

    /// A server-side write attributed to `anonymous`; see [`RoomCore::write_as`].
    ///
    /// # Errors
    /// [`DocError::Panicked`]: the room must be dropped.
    pub fn write(&mut self, update: &[u8], answer: R, now: Instant) -> Result<(), DocError> {
        self.write_as(update, &Identity::anonymous(), answer, now)
    }

    /// A server-side write (the HTTP API, a restore): applied, logged and relayed like a
    /// client's update, and sent to every connection; answered with [`Effect::Answer`] once it
    /// is durable, or at once when the document refuses it. Attributed to `identity`.
    ///
    /// # Errors
    /// [`DocError::Panicked`]: the room must be dropped.
    pub fn write_as(
        &mut self,
        update: &[u8],
        identity: &Identity,
        answer: R,
        now: Instant,
    ) -> Result<(), DocError> {
        match self.doc.apply(update) {
            Ok(Some(delta)) => {
                self.activity.count(identity, delta.payload().len());
                self.record_change(delta, None, true, now);
                self.release_held(now)?;
            }
            Ok(None) => {}
            Err(DocError::Invalid(reason)) => {
                self.effects
                    .push_back(Effect::Answer(answer, Err(WriteRefused(reason))));
                return Ok(());
            }
            Err(DocError::Panicked) => return Err(DocError::Panicked),
        }
        if let Some(ack) = self.log.push_reply(Outgoing::Ack(answer)) {
            self.send_out(ack);
        }
        self.pump_log();
        Ok(())
    }

    /// Sends `frame` to `conn` once every update the room has applied so far is in the update
    /// log: a durable acknowledgement (Hocuspocus's sync status, Chorus's opt-in for
    /// y-websocket clients). It rides the write-ahead, so it leaves exactly when the append
    /// carrying those updates completes, and at once when nothing waits.
    /// A connection the room has closed (its update refused) gets nothing; one with updates
    /// held for missing clocks gets it once they are applied and logged.
    pub fn when_durable(&mut self, conn: ConnId, frame: Bytes) {
        if !self.peers.contains_key(&conn) {
            return;
        }
        if self.held.count(conn) > 0 {
            self.acks_behind_held.entry(conn).or_default().push(frame);
            return;
        }
        self.push_durable(conn, frame);
    }

    /// A read-only connection's sync step 2, which is never applied: `known` goes back (like
    /// [`RoomCore::when_durable`], in order behind what the room sent before) when the update
    /// adds nothing to the document ([`RoomDoc::contains`]), `unknown` when it carries edits
    /// the connection may not make. Hocuspocus answers a read-only provider so; a provider
    /// that only repeats what it has must not be told it has unsaved changes.
    ///
    /// # Errors
    /// [`DocError::Panicked`]: the room must be dropped ([`RoomCore::fail`]).
    pub fn answer_read_only(
        &mut self,
        conn: ConnId,
        update: &[u8],
        known: Bytes,
        unknown: Bytes,
    ) -> Result<(), DocError> {
        let frame = if self.doc.contains(update)? {
            known
        } else {
            unknown
        };
        self.when_durable(conn, frame);
        Ok(())
    }

    fn push_durable(&mut self, conn: ConnId, frame: Bytes) {
        if let Some(reply) = self
            .log
            .push_after_applied(Outgoing::Durable { conn, frame })
        {
            self.send_out(reply);
        }
    }

    /// The append in flight is done: through log record `seq` when it succeeded, `None` when
    /// it was abandoned (at shutdown). Releases what waited for it and starts the next one.
    pub fn appended(&mut self, seq: Option<u64>) {
        self.log_gave_up |= seq.is_none();
        for item in self.log.finish(seq) {
            self.send_out(item);
        }
        self.pump_log();
    }

    /// Whether an append is in flight.
    pub fn is_appending(&self) -> bool {
        self.log.is_appending()
    }

    /// What every accepted change goes through (steps 5-7 of the crate's path): the delta
    /// waits for the update log, then goes to every connection but `except`; a change made on
    /// this node (`local`: a client or the HTTP API) is also published to the other nodes and
    /// announced to change listeners.
    fn record_change(
        &mut self,
        delta: SyncFrame,
        except: Option<ConnId>,
        local: bool,
        now: Instant,
    ) {
        let payload = delta.payload();
        let then = Outgoing::Broadcast {
            frame: delta.frame().clone(),
            payload: payload.clone(),
            except,
            publish: local && self.around.shared,
        };
        self.log.push_update(payload, then);
        self.timers.changed(&self.settings, now);
        if local && self.around.listened {
            self.timers.unannounced(&self.settings, now);
        }
    }

    /// Starts the next log append if none is running, and sends what needs no waiting.
    fn pump_log(&mut self) {
        let (batch, ready) = self.log.start();
        for item in ready {
            self.send_out(item);
        }
        if let Some(batch) = batch {
            self.effects.push_back(Effect::Append(batch));
        }
    }

    /// Sends something whose updates are durable now.
    fn send_out(&mut self, item: Outgoing<R>) {
        match item {
            Outgoing::Broadcast {
                frame,
                payload,
                except,
                publish,
            } => {
                self.effects.push_back(Effect::Broadcast { frame, except });
                if publish {
                    self.publish(crate::Publish::Update(payload));
                }
            }
            Outgoing::Reply { conn, frame } => self.send_to(conn, frame),
            Outgoing::Durable { conn, frame } if !self.log_gave_up => self.send_to(conn, frame),
            Outgoing::Durable { .. } => {}
            Outgoing::Ack(answer) => self.effects.push_back(Effect::Answer(answer, Ok(()))),
        }
    }

    fn send_to(&mut self, conn: ConnId, frame: Bytes) {
        if self.peers.contains_key(&conn) {
            self.effects.push_back(Effect::Send { conn, frame });
        }
    }

    /// Closes a connection whose update `rule` refused, logging `detail` and counting the rule.
    /// The close reason names the rule first, so that it survives the 123-byte limit on close
    /// reasons.
    fn refuse(
        &mut self,
        conn: ConnId,
        code: u16,
        rule: &'static str,
        reason: &str,
        detail: &dyn std::fmt::Display,
        now: Instant,
    ) {
        tracing::info!(%conn, rule, %detail, "refused an update");
        self.effects
            .push_back(Effect::Count(Counted::Refused(rule)));
        self.close(conn, code, format!("[{rule}] {reason}").into(), now);
    }

    /// Closes one connection and forgets it.
    fn close(&mut self, conn: ConnId, code: u16, reason: Cow<'static, str>, now: Instant) {
        if self.peers.contains_key(&conn) {
            self.effects.push_back(Effect::Close { conn, code, reason });
        }
        self.leave(conn, now);
    }

    /// Closes every connection with `code` and forgets them all.
    fn close_all(&mut self, code: u16, reason: &'static str) {
        let mut conns: Vec<ConnId> = self.peers.keys().copied().collect();
        conns.sort_unstable();
        for conn in conns {
            self.effects.push_back(Effect::Close {
                conn,
                code,
                reason: reason.into(),
            });
        }
        self.peers.clear();
        self.held = Held::new(self.settings.held_limits);
        self.acks_behind_held.clear();
    }

    /// Adds awareness changes to the next batch; `mine` when they came from this node's own
    /// connections and so must reach the other nodes too.
    fn queue_presence(&mut self, entries: Vec<AwarenessEntry>, mine: bool, now: Instant) {
        if entries.is_empty() {
            return;
        }
        let publish = mine && self.around.shared;
        self.timers.queue_presence(entries, publish, now);
    }
}

#[cfg(test)]
mod tests;

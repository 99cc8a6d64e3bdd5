//! The room actor: one task per loaded document, owning its yrs document and awareness table.
//!
//! Everything that touches a document happens here, one command at a time, so no lock is ever
//! shared across connections. The data path of a client update, top to bottom:
//!
//! 1. the connection decodes the frame (off this task) and sends [`RoomCmd::Message`];
//! 2. [`Room::accept_update`] applies it to the document, which yields the delta as a frame,
//!    encoded once;
//! 3. the delta is appended to the document's update log (group commit, in the background:
//!    the room goes on applying; see `durable`);
//! 4. once it is durable, the frame is fanned out to every other connection as shared bytes
//!    (`try_send`: a peer whose outbox is full is disconnected, never waited for);
//! 5. and published to the other nodes holding the room (with `--redis-url`);
//! 6. the room is marked dirty; a snapshot follows `snapshot_interval` later and lets the log
//!    drop what it covers.
//!
//! Updates from other nodes take steps 2, 3, 4 (to every local connection) and 6.

use std::collections::HashMap;
use std::future::{Future, pending};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use chorus_protocol::awareness::encode_entries;
use chorus_protocol::message::permission_denied_frame;
use chorus_protocol::{
    AwarenessEntry, AwarenessUpdate, DocName, Message, StateVector, SyncMessage, UpdateLimits,
    validate_update_v1,
};
use chorus_store::{SnapshotStore, StoreError, UpdateLog};
use serde_bytes::ByteBuf;
use tokio::sync::mpsc::{self, error::TrySendError};
use tokio::task::JoinHandle;
use tokio::time::{Instant, MissedTickBehavior, sleep_until};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::doc::{ClientUpdateError, DocError, DocLimits, RoomDoc, sync_payload};
use super::durable::{Durable, Outgoing};
use super::handle::{JoinRefused, RoomCmd};
use super::held::{Held, HeldLimits};
use super::presence::{self, Owner, Presence};
use super::registry::Rooms;
use crate::changes::Changes;
use crate::conn::{ConnId, Peer, close_code};
use crate::hooks::{DocChange, Hooks};
use crate::metrics;
use crate::relay::{Body, NodeId, Relay};

/// How often the room looks for awareness states that were not renewed in time.
const PRESENCE_SWEEP_EVERY: Duration = Duration::from_secs(5);
/// Awareness changes are gathered this long and sent as one message: in a room of N people
/// moving cursors, one send per change per peer would cost N² messages; one batch per tick costs
/// N per tick, for at most this much added cursor latency.
const PRESENCE_BATCH: Duration = Duration::from_millis(40);

/// Timing settings of every room.
#[derive(Debug, Clone)]
pub struct RoomSettings {
    /// Delay between the first unsaved change and the snapshot that saves it.
    pub snapshot_interval: Duration,
    /// How long a room without connections stays loaded.
    pub idle_timeout: Duration,
    /// How long an awareness state lives without renewal.
    pub awareness_timeout: Duration,
    /// How often a room shared with other nodes re-exchanges state vectors with them, in case
    /// pub/sub lost a message.
    pub relay_resync_interval: Duration,
    /// Connections one room accepts.
    pub max_peers: usize,
    /// Quiet time after a change before listeners hear of it (see [`Hooks::on_change`]); a
    /// document edited without pause is announced at least every [`CHANGE_MAX_DELAY_FACTOR`]
    /// times this.
    pub change_debounce: Duration,
    /// What clients may make one document cost.
    pub doc_limits: DocLimits,
    /// What one connection may keep waiting for missing clocks.
    pub held_limits: HeldLimits,
}

/// A document changing without pause is still announced this many debounce periods after its
/// first unannounced change.
pub const CHANGE_MAX_DELAY_FACTOR: u32 = 5;

/// What a room shares with the rest of the server.
pub(crate) struct RoomContext {
    pub registry: Rooms,
    /// The other nodes, when the server runs with `--redis-url`.
    pub relay: Option<Relay>,
    /// The embedding application's hooks.
    pub hooks: Arc<dyn Hooks>,
    /// Where change notifications go; `None` when nobody listens.
    pub changes: Option<Changes>,
    /// The room's own inbox, for the relay to deliver into.
    pub inbox: mpsc::Sender<RoomCmd>,
    pub store: Arc<dyn SnapshotStore>,
    pub log: Arc<dyn UpdateLog>,
    pub settings: RoomSettings,
    pub shutdown: CancellationToken,
    pub tracker: TaskTracker,
}

/// A snapshot write running in the background.
type SaveTask = JoinHandle<Result<(), StoreError>>;

pub(crate) struct Room {
    name: DocName,
    generation: u64,
    cmd_rx: mpsc::Receiver<RoomCmd>,
    ctx: RoomContext,
    doc: RoomDoc,
    durable: Durable,
    presence: Presence,
    peers: HashMap<ConnId, Peer>,
    /// Client updates waiting for clocks the document lacks.
    held: Held<ConnId>,
    /// Changes not yet covered by a stored snapshot.
    dirty: bool,
    /// When the next snapshot is due; set by the first change after a snapshot.
    snapshot_due: Option<Instant>,
    /// At most one snapshot write is in flight per room.
    saving: Option<SaveTask>,
    /// When the room unloads if still nobody is connected.
    idle_deadline: Instant,
    /// Awareness changes waiting for the next batch, latest per client: for local connections,
    /// and for the other nodes (only changes made by this node's connections).
    presence_batch: HashMap<u64, AwarenessEntry>,
    presence_to_publish: HashMap<u64, AwarenessEntry>,
    /// When the pending batch goes out.
    presence_due: Option<Instant>,
    /// Changes made here that listeners have not heard of: when the first one happened and
    /// when they will be announced.
    unannounced_since: Option<Instant>,
    change_due: Option<Instant>,
}

/// How the room's loop ended.
enum Exit {
    /// Idle, saved and removed from the registry.
    Unloaded,
    /// The server is stopping.
    Shutdown,
    /// The document is unusable; the room closed its connections with 1011.
    Failed,
    /// The document was deleted, here or on another node; the room closed its connections with
    /// 4404 and saved nothing.
    Deleted,
}

impl Room {
    pub(crate) fn new(
        name: DocName,
        generation: u64,
        cmd_rx: mpsc::Receiver<RoomCmd>,
        ctx: RoomContext,
    ) -> Result<Self, DocError> {
        let idle_deadline = Instant::now() + ctx.settings.idle_timeout;
        let durable = Durable::new(Arc::clone(&ctx.log), name.clone());
        let doc = RoomDoc::with_limits(ctx.settings.doc_limits)?;
        let held = Held::new(ctx.settings.held_limits);
        Ok(Self {
            name,
            generation,
            cmd_rx,
            ctx,
            doc,
            durable,
            presence: Presence::default(),
            peers: HashMap::new(),
            held,
            dirty: false,
            snapshot_due: None,
            saving: None,
            idle_deadline,
            presence_batch: HashMap::new(),
            presence_to_publish: HashMap::new(),
            presence_due: None,
            unannounced_since: None,
            change_due: None,
        })
    }

    /// Loads the document, then serves commands until the room unloads, fails or shuts down.
    pub(crate) async fn run(mut self) {
        if let Err(error) = self.load().await {
            tracing::error!(error = %error, "could not load document; refusing connections");
            self.refuse_all(JoinRefused::LoadFailed);
            return;
        }
        tracing::debug!("room opened");
        if let Some(relay) = self.ctx.relay.clone() {
            relay.subscribe(&self.name, self.ctx.inbox.clone()).await;
            if let Err(DocError::Panicked) = self.request_sync() {
                self.fail();
                relay.unsubscribe(&self.name, &self.ctx.inbox);
                return;
            }
        }
        metrics::get().rooms.increment(1.0);
        let exit = self.serve().await;
        metrics::get().rooms.decrement(1.0);
        if let Some(relay) = &self.ctx.relay {
            relay.unsubscribe(&self.name, &self.ctx.inbox);
        }
        match exit {
            Exit::Unloaded => tracing::info!("room unloaded"),
            Exit::Shutdown => tracing::debug!("room stopped for shutdown"),
            Exit::Failed => tracing::warn!("room failed and was dropped; it reloads on next use"),
            Exit::Deleted => tracing::info!("room deleted"),
        }
    }

    async fn load(&mut self) -> Result<(), String> {
        let snapshot = self
            .ctx
            .store
            .load(&self.name)
            .await
            .map_err(|e| e.to_string())?;
        let snapshot_missing = snapshot.is_none();
        if let Some(snapshot) = snapshot {
            self.doc
                .apply(&snapshot)
                .map_err(|e| format!("snapshot does not apply: {e}"))?;
            tracing::info!(bytes = snapshot.len(), "room loaded snapshot");
        }
        let records = self.durable.replay().await.map_err(|e| e.to_string())?;
        if snapshot_missing && records.is_empty() {
            self.load_initial_content().await?;
        }
        let replayed = records.len();
        for update in records {
            match self.doc.apply(&update) {
                Ok(_) => {}
                Err(DocError::Invalid(reason)) => {
                    tracing::warn!(%reason, "skipping an update-log record that does not apply");
                }
                Err(DocError::Panicked) => {
                    return Err("an update-log record crashed the document".into());
                }
            }
        }
        if replayed > 0 {
            tracing::info!(records = replayed, "room replayed its update log");
            // What the log holds beyond the snapshot goes into the next one.
            self.mark_dirty();
        }
        Ok(())
    }

    /// Asks the application's [`Hooks::load`] for a document the store knows nothing about,
    /// and saves what it gives at once, so it is asked only once per document.
    async fn load_initial_content(&mut self) -> Result<(), String> {
        let content = self
            .ctx
            .hooks
            .load(&self.name)
            .await
            .map_err(|e| format!("the load hook failed: {e}"))?;
        let Some(content) = content else {
            return Ok(());
        };
        validate_update_v1(&content, &UpdateLimits::default())
            .map_err(|e| format!("the load hook returned an unacceptable update: {e}"))?;
        self.doc
            .apply(&content)
            .map_err(|e| format!("the load hook returned an update that does not apply: {e}"))?;
        let snapshot = self.doc.snapshot().map_err(|e| e.to_string())?;
        timed_save(self.ctx.store.as_ref(), &self.name, snapshot)
            .await
            .map_err(|e| format!("saving the loaded content: {e}"))?;
        tracing::info!(
            bytes = content.len(),
            "room took its initial content from the load hook"
        );
        Ok(())
    }

    async fn serve(&mut self) -> Exit {
        let mut sweep = tokio::time::interval(PRESENCE_SWEEP_EVERY);
        sweep.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut resync = tokio::time::interval(self.ctx.settings.relay_resync_interval);
        resync.set_missed_tick_behavior(MissedTickBehavior::Delay);
        resync.reset();
        loop {
            tokio::select! {
                cmd = self.cmd_rx.recv() => {
                    // The registry keeps a sender while the room is listed, so `None` means the
                    // room was removed; nothing can reach it any more.
                    let Some(cmd) = cmd else { return Exit::Unloaded };
                    // Deletions end the room, so they are handled here rather than in `handle`.
                    let cmd = match cmd {
                        RoomCmd::Delete { reply } => return self.delete(reply).await,
                        RoomCmd::Remote { origin, body: Body::Deleted } => {
                            tracing::info!(node = %origin, "document deleted on another node");
                            return self.drop_deleted();
                        }
                        cmd => cmd,
                    };
                    if let Err(DocError::Panicked) = self.handle(cmd) {
                        return self.fail();
                    }
                }
                () = sleep_until_opt(self.snapshot_due), if self.saving.is_none() => {
                    if let Err(DocError::Panicked) = self.start_snapshot() {
                        return self.fail();
                    }
                }
                saved = wait_opt(&mut self.saving) => self.finish_snapshot(saved),
                appended = self.durable.appended() => {
                    let released = self.durable.finish(appended);
                    self.send_all(released);
                    self.pump_log();
                }
                () = sleep_until_opt(self.presence_due) => self.flush_presence(),
                () = sleep_until_opt(self.change_due) => {
                    if let Err(DocError::Panicked) = self.announce_change() {
                        return self.fail();
                    }
                }
                _ = sweep.tick() => self.expire_presence(),
                _ = resync.tick(), if self.ctx.relay.is_some() => {
                    if let Err(DocError::Panicked) = self.request_sync() {
                        return self.fail();
                    }
                }
                () = sleep_until(self.idle_deadline), if self.peers.is_empty() => {
                    if self.try_unload().await {
                        return Exit::Unloaded;
                    }
                }
                () = self.ctx.shutdown.cancelled() => {
                    self.shutdown().await;
                    return Exit::Shutdown;
                }
            }
        }
    }

    /// Handles one command. Only a document panic is returned: everything else is dealt with
    /// here, by closing the one connection at fault.
    fn handle(&mut self, cmd: RoomCmd) -> Result<(), DocError> {
        match cmd {
            RoomCmd::Join { conn, peer, joined } => self.join(conn, peer, joined),
            RoomCmd::Message { conn, msg } => self.message(conn, msg),
            RoomCmd::Leave { conn } => {
                self.leave(conn);
                Ok(())
            }
            RoomCmd::Remote { origin, body } => self.remote(origin, body),
            RoomCmd::Read { since, reply } => {
                let frame = self.doc.step2(&since.unwrap_or_default())?;
                let _ = reply.send(Ok(sync_payload(&frame)));
                Ok(())
            }
            RoomCmd::Write { update, reply } => self.server_write(&update, reply),
            // `serve` handles deletions; this is a room shutting down, which saves its state.
            RoomCmd::Delete { reply } => {
                let _ = reply.send(Err("the server is shutting down; try again".into()));
                Ok(())
            }
            RoomCmd::RelayResync => self.request_sync(),
            RoomCmd::NodeGone(node) => {
                let removed = self.presence.remove_owner(Owner::Remote(node));
                self.queue_presence(removed, false);
                Ok(())
            }
        }
    }

    fn join(
        &mut self,
        conn: ConnId,
        peer: Peer,
        joined: tokio::sync::oneshot::Sender<Result<(), JoinRefused>>,
    ) -> Result<(), DocError> {
        if self.peers.len() >= self.ctx.settings.max_peers {
            let _ = joined.send(Err(JoinRefused::RoomFull));
            return Ok(());
        }
        let step1 = self.doc.step1()?;
        self.peers.insert(conn, peer);
        // Two frames, never one: y-websocket reads only the first message of a frame.
        self.send_to(conn, step1);
        if let Some(awareness) = self.presence.full_frame() {
            self.send_to(conn, awareness);
        }
        if joined.send(Ok(())).is_err() {
            // The connection gave up while waiting; forget it.
            self.leave(conn);
        }
        tracing::debug!(%conn, peers = self.peers.len(), "joined");
        Ok(())
    }

    fn message(&mut self, conn: ConnId, msg: Message) -> Result<(), DocError> {
        if !self.peers.contains_key(&conn) {
            // A message that was queued before its connection was disconnected.
            return Ok(());
        }
        match msg {
            Message::Sync(SyncMessage::Step1(state_vector)) => {
                let frame = self.doc.step2(&state_vector)?;
                // The answer may contain updates still on their way to the log.
                if let Some(reply) = self.durable.push_reply(Outgoing::Reply { conn, frame }) {
                    self.send_out(reply);
                }
            }
            Message::Sync(SyncMessage::Step2(update) | SyncMessage::Update(update)) => {
                if self.peers.get(&conn).is_some_and(|peer| peer.can_write) {
                    self.accept_update(conn, &update)?;
                } else {
                    // Read-only: never applied, stored or relayed; y-protocols' way to say so.
                    self.send_to(conn, permission_denied_frame("read-only connection"));
                }
            }
            Message::Awareness(update) => {
                let changed =
                    self.presence
                        .apply(Owner::Local(conn), update.entries, Instant::now());
                self.queue_presence(changed, true);
            }
            Message::QueryAwareness => {
                if let Some(awareness) = self.presence.full_frame() {
                    self.send_to(conn, awareness);
                }
            }
            // Clients have nothing to tell the server through auth messages; the reference
            // server ignores them too.
            Message::Auth(_) => {}
        }
        Ok(())
    }

    /// Applies a client's update and forwards what it changed to everyone else in the room,
    /// then whatever held updates (its own or others') that made applicable.
    fn accept_update(&mut self, from: ConnId, update: &[u8]) -> Result<(), DocError> {
        self.admit_update(from, update)?;
        self.release_held()
    }

    /// Applies what of a client's update the document can take now, and holds the rest.
    fn admit_update(&mut self, from: ConnId, update: &[u8]) -> Result<(), DocError> {
        let Some(peer) = self.peers.get_mut(&from) else {
            return Ok(());
        };
        let applied = match self.doc.apply_client(update, &mut peer.clients_introduced) {
            Err(ClientUpdateError::OverLimit {
                rule,
                reason,
                detail,
            }) => {
                self.refuse(from, close_code::POLICY, rule, reason, &detail);
                return Ok(());
            }
            Err(ClientUpdateError::Refused { rule, detail }) => {
                self.refuse(
                    from,
                    close_code::INVALID_PAYLOAD,
                    rule,
                    "update refused",
                    &detail,
                );
                return Ok(());
            }
            Err(ClientUpdateError::Doc(error)) => Err(error),
            Ok(applied) => Ok(applied),
        };
        match applied {
            Ok(applied) => {
                if let Some(delta) = applied.delta {
                    self.take_delta(delta, Some(from), true);
                    self.pump_log();
                }
                for held in applied.held {
                    tracing::debug!(conn = %from, needs = ?held.needs, "holding an update until the clocks it follows arrive");
                    metrics::get().updates_held.increment(1);
                    if let Err(error) = self.held.hold(from, held) {
                        self.refuse(
                            from,
                            close_code::POLICY,
                            "too_many_held",
                            "too many updates waiting for missing content",
                            &error,
                        );
                        return Ok(());
                    }
                }
                Ok(())
            }
            Err(DocError::Invalid(reason)) => {
                self.refuse(
                    from,
                    close_code::INVALID_PAYLOAD,
                    "yrs_refused",
                    "invalid update",
                    &reason,
                );
                Ok(())
            }
            Err(DocError::Panicked) => Err(DocError::Panicked),
        }
    }

    /// Applies every held update the document now has the clocks for, in each connection's
    /// arrival order, until none is left that can go.
    fn release_held(&mut self) -> Result<(), DocError> {
        while !self.held.is_empty() {
            let Some((conn, update)) = self.doc.take_ready(&mut self.held)? else {
                break;
            };
            self.admit_update(conn, &update)?;
        }
        Ok(())
    }

    fn leave(&mut self, conn: ConnId) {
        if self.peers.remove(&conn).is_none() {
            return;
        }
        // Its next sync step 2 brings what it kept waiting here.
        self.held.forget(conn);
        let removed = self.presence.remove_owner(Owner::Local(conn));
        self.queue_presence(removed, true);
        if self.peers.is_empty() {
            self.idle_deadline = Instant::now() + self.ctx.settings.idle_timeout;
        }
        tracing::debug!(%conn, peers = self.peers.len(), "left");
    }

    fn expire_presence(&mut self) {
        let expired = self
            .presence
            .expire(Instant::now(), self.ctx.settings.awareness_timeout);
        for (entry, local) in expired {
            self.queue_presence(vec![entry], local);
        }
    }

    /// Applies what another node published.
    fn remote(&mut self, origin: NodeId, body: Body) -> Result<(), DocError> {
        match body {
            Body::Update(update) => {
                let waiting_before = self.doc.waiting();
                match self.doc.apply(&update) {
                    Ok(Some(delta)) => {
                        self.take_delta(delta, None, false);
                        self.pump_log();
                        self.release_held()?;
                    }
                    Ok(None) => {}
                    Err(DocError::Invalid(reason)) => {
                        tracing::warn!(node = %origin, %reason, "ignoring an invalid update from another node");
                    }
                    Err(DocError::Panicked) => return Err(DocError::Panicked),
                }
                if self.doc.waiting() > waiting_before {
                    // It overtook a message this node missed: ask for what is missing now
                    // rather than at the next periodic exchange.
                    self.request_sync()?;
                }
            }
            Body::Awareness(update) => {
                match AwarenessUpdate::decode(&Bytes::from(update.into_vec())) {
                    Ok(update) => {
                        let changed = self.presence.apply(
                            Owner::Remote(origin),
                            update.entries,
                            Instant::now(),
                        );
                        self.queue_presence(changed, false);
                    }
                    Err(error) => {
                        tracing::warn!(node = %origin, %error, "ignoring invalid awareness from another node");
                    }
                }
            }
            Body::SyncRequest(sv) => match StateVector::decode(&sv) {
                Ok(sv) => self.answer_sync(&sv)?,
                Err(error) => {
                    tracing::warn!(node = %origin, %error, "ignoring an invalid sync request");
                }
            },
            // `serve` handles deletions; this is a room shutting down.
            Body::Heartbeat | Body::Deleted => {}
        }
        Ok(())
    }

    /// Another node announced its state: send it what it lacks, ask for what we lack, and tell
    /// it who is connected here.
    fn answer_sync(&mut self, theirs: &StateVector) -> Result<(), DocError> {
        let Some(relay) = self.ctx.relay.clone() else {
            return Ok(());
        };
        if let Some(diff) = self.doc.diff(theirs)? {
            relay.publish_update(&self.name, &diff);
        }
        if self.doc.lacks_any_of(theirs)? {
            self.request_sync()?;
        }
        self.publish_presence(&self.presence.local_entries());
        Ok(())
    }

    /// Publishes this room's state vector so the other nodes send what it lacks.
    fn request_sync(&mut self) -> Result<(), DocError> {
        let Some(relay) = &self.ctx.relay else {
            return Ok(());
        };
        let sv = self.doc.state_vector()?.encode();
        relay.publish(&self.name, Body::SyncRequest(ByteBuf::from(sv)));
        self.publish_presence(&self.presence.local_entries());
        Ok(())
    }

    /// Tells the other nodes about presence changes of this node's own connections.
    fn publish_presence(&self, entries: &[AwarenessEntry]) {
        if let (Some(relay), false) = (&self.ctx.relay, entries.is_empty()) {
            let update = encode_entries(entries.iter());
            relay.publish(&self.name, Body::Awareness(ByteBuf::from(update)));
        }
    }

    /// Adds awareness changes to the next batch; `publish` when they came from this node's own
    /// connections and so must reach the other nodes too.
    fn queue_presence(&mut self, entries: Vec<AwarenessEntry>, publish: bool) {
        if entries.is_empty() {
            return;
        }
        for entry in entries {
            if publish && self.ctx.relay.is_some() {
                self.presence_to_publish.insert(entry.client, entry.clone());
            }
            self.presence_batch.insert(entry.client, entry);
        }
        self.presence_due
            .get_or_insert_with(|| Instant::now() + PRESENCE_BATCH);
    }

    /// Sends the batch to every connection, the sender of each change included: y-websocket
    /// clients count their own echoed renewals as liveness and reconnect after 30 s without any
    /// message. Then publishes this node's share to the other nodes.
    fn flush_presence(&mut self) {
        self.presence_due = None;
        let batch: Vec<AwarenessEntry> = self.presence_batch.drain().map(|(_, e)| e).collect();
        if !batch.is_empty() {
            self.broadcast(&presence::frame(&batch), None);
        }
        let to_publish: Vec<AwarenessEntry> =
            self.presence_to_publish.drain().map(|(_, e)| e).collect();
        self.publish_presence(&to_publish);
    }

    /// Applies an update from the HTTP API: like a client's, but every connection gets it.
    fn server_write(
        &mut self,
        update: &[u8],
        reply: tokio::sync::oneshot::Sender<Result<(), String>>,
    ) -> Result<(), DocError> {
        match self.doc.apply(update) {
            Ok(Some(delta)) => {
                self.take_delta(delta, None, true);
                self.release_held()?;
            }
            Ok(None) => {}
            Err(DocError::Invalid(reason)) => {
                let _ = reply.send(Err(reason));
                return Ok(());
            }
            Err(DocError::Panicked) => return Err(DocError::Panicked),
        }
        if let Some(ack) = self.durable.push_reply(Outgoing::Ack(reply)) {
            self.send_out(ack);
        }
        self.pump_log();
        Ok(())
    }

    /// What every accepted change goes through: the delta waits for the update log, then goes
    /// to every connection but `except`; a change made on this node (`local`: a client or the
    /// HTTP API) is also published to the other nodes and announced to change listeners.
    fn take_delta(&mut self, delta: Bytes, except: Option<ConnId>, local: bool) {
        let payload = sync_payload(&delta);
        let then = Outgoing::Broadcast {
            frame: delta,
            except,
            publish: local,
        };
        self.durable.push_update(payload, then);
        self.mark_dirty();
        if local {
            self.note_change();
        }
    }

    /// Starts the next log append if none is running, and sends what needs no waiting.
    fn pump_log(&mut self) {
        let ready = self.durable.start(&self.ctx.tracker, &self.ctx.shutdown);
        self.send_all(ready);
    }

    fn send_all(&mut self, outgoing: Vec<Outgoing>) {
        for item in outgoing {
            self.send_out(item);
        }
    }

    /// Sends something whose updates are durable now.
    fn send_out(&mut self, item: Outgoing) {
        match item {
            Outgoing::Broadcast {
                frame,
                except,
                publish,
            } => {
                self.broadcast(&frame, except);
                if let (true, Some(relay)) = (publish, &self.ctx.relay) {
                    relay.publish_update(&self.name, &sync_payload(&frame));
                }
            }
            Outgoing::Reply { conn, frame } => self.send_to(conn, frame),
            Outgoing::Ack(reply) => {
                let _ = reply.send(Ok(()));
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
            self.send_failed(conn, full);
        }
    }

    fn send_to(&mut self, conn: ConnId, frame: Bytes) {
        let Some(peer) = self.peers.get(&conn) else {
            return;
        };
        if let Err(error) = peer.outbox.try_send(frame) {
            self.send_failed(conn, matches!(error, TrySendError::Full(_)));
        }
    }

    /// A full outbox means a slow peer; a closed one, a peer whose `Leave` is on its way.
    fn send_failed(&mut self, conn: ConnId, full: bool) {
        if full {
            self.disconnect_slow(conn);
        } else {
            self.leave(conn);
        }
    }

    /// A peer whose outbox is full is closed rather than waited for or silently skipped: a
    /// client that misses an update would diverge, while one that reconnects resyncs.
    fn disconnect_slow(&mut self, conn: ConnId) {
        if self.peers.contains_key(&conn) {
            tracing::warn!(%conn, "connection too slow; disconnecting it");
            metrics::get().slow_client_disconnects.increment(1);
            self.disconnect(
                conn,
                close_code::TRY_AGAIN_LATER,
                "too slow; reconnect to resync",
            );
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
    ) {
        tracing::info!(%conn, rule, %detail, "refused an update");
        metrics::get().update_refused(rule);
        if let Some(peer) = self.peers.get(&conn) {
            peer.close.close(code, format!("[{rule}] {reason}"));
        }
        self.leave(conn);
    }

    fn disconnect(&mut self, conn: ConnId, code: u16, reason: &'static str) {
        if let Some(peer) = self.peers.get(&conn) {
            peer.close.close(code, reason);
        }
        self.leave(conn);
    }

    /// Schedules a change notification for a change made on this node (by a client or the
    /// HTTP API; changes relayed from other nodes are announced there): `change_debounce` after
    /// the last change, and no later than a few periods after the first.
    fn note_change(&mut self) {
        if self.ctx.changes.is_none() {
            return;
        }
        let now = Instant::now();
        let debounce = self.ctx.settings.change_debounce;
        let first = *self.unannounced_since.get_or_insert(now);
        let latest = first + debounce * CHANGE_MAX_DELAY_FACTOR;
        self.change_due = Some((now + debounce).min(latest));
    }

    /// Tells the listeners the document changed, with its whole state.
    fn announce_change(&mut self) -> Result<(), DocError> {
        self.change_due = None;
        if self.unannounced_since.take().is_none() {
            return Ok(());
        }
        let Some(changes) = &self.ctx.changes else {
            return Ok(());
        };
        changes.notify(DocChange {
            doc: self.name.clone(),
            state: self.doc.snapshot()?,
            at: SystemTime::now(),
        });
        Ok(())
    }

    fn mark_dirty(&mut self) {
        self.dirty = true;
        if self.snapshot_due.is_none() {
            self.snapshot_due = Some(Instant::now() + self.ctx.settings.snapshot_interval);
        }
    }

    /// Encodes the document here (cheap, and it must not race with updates) and writes it in
    /// the background, so the room keeps serving while the store works.
    fn start_snapshot(&mut self) -> Result<(), DocError> {
        self.snapshot_due = None;
        let snapshot = self.doc.snapshot()?;
        self.dirty = false;
        let store = Arc::clone(&self.ctx.store);
        let name = self.name.clone();
        let (log, covered) = (self.durable.log(), self.durable.logged_through());
        let hooks = Arc::clone(&self.ctx.hooks);
        self.saving = Some(self.ctx.tracker.spawn(async move {
            let saved =
                save_and_compact(store.as_ref(), log.as_ref(), &name, snapshot, covered).await?;
            call_store_hook(hooks.as_ref(), &name, &saved).await;
            Ok(())
        }));
        Ok(())
    }

    fn finish_snapshot(&mut self, result: Result<Result<(), StoreError>, tokio::task::JoinError>) {
        self.saving = None;
        match result {
            Ok(Ok(())) => tracing::debug!("snapshot saved"),
            Ok(Err(error)) => self.snapshot_failed(&error),
            Err(join) => self.snapshot_failed(&join),
        }
    }

    fn snapshot_failed(&mut self, error: &dyn std::error::Error) {
        tracing::error!(error = %error, "snapshot failed; will retry");
        metrics::get().store_errors.increment(1);
        self.mark_dirty();
    }

    /// Waits for the write in flight, then saves what is still unsaved.
    ///
    /// # Errors
    /// A description of the failure; the room then stays dirty.
    async fn flush(&mut self) -> Result<(), String> {
        if let Some(saving) = self.saving.take() {
            self.finish_snapshot(saving.await);
        }
        if !self.dirty {
            return Ok(());
        }
        self.snapshot_due = None;
        let snapshot = self.doc.snapshot().map_err(|e| e.to_string())?;
        let covered = self.durable.logged_through();
        let log = self.durable.log();
        match save_and_compact(
            self.ctx.store.as_ref(),
            log.as_ref(),
            &self.name,
            snapshot,
            covered,
        )
        .await
        {
            Ok(saved) => {
                self.dirty = false;
                // In the background: a slow hook must not hold up a room that is unloading
                // while someone joins. Shutdown still waits for it (the task is tracked).
                let (hooks, name) = (Arc::clone(&self.ctx.hooks), self.name.clone());
                self.ctx.tracker.spawn(async move {
                    call_store_hook(hooks.as_ref(), &name, &saved).await;
                });
                Ok(())
            }
            Err(error) => {
                self.snapshot_failed(&error);
                Err(error.to_string())
            }
        }
    }

    /// Saves and leaves the registry, unless a connection arrived meanwhile or the save failed
    /// (then the room stays, and tries again after another idle period).
    async fn try_unload(&mut self) -> bool {
        let released = self.durable.drain().await;
        self.send_all(released);
        if self.announce_change().is_err() {
            tracing::warn!("could not encode the document for its last change notification");
        }
        if let Err(error) = self.flush().await {
            tracing::error!(%error, "not unloading: final snapshot failed");
            self.idle_deadline = Instant::now() + self.ctx.settings.idle_timeout;
            return false;
        }
        if !self
            .ctx
            .registry
            .remove_if_idle(&self.name, self.generation, &self.cmd_rx)
        {
            self.idle_deadline = Instant::now() + self.ctx.settings.idle_timeout;
            return false;
        }
        // Unlisted: a command can only come from a handle looked up before; refuse it so its
        // sender retries and finds (or starts) a fresh room, which loads the snapshot just saved.
        self.cmd_rx.close();
        while self.cmd_rx.try_recv().is_ok() {}
        true
    }

    /// Applies what is already queued, saves, and closes every connection with 1001.
    async fn shutdown(&mut self) {
        self.cmd_rx.close();
        while let Some(cmd) = self.cmd_rx.recv().await {
            let outcome = match cmd {
                RoomCmd::Join { joined, .. } => {
                    let _ = joined.send(Err(JoinRefused::ShuttingDown));
                    Ok(())
                }
                other => self.handle(other),
            };
            if outcome.is_err() {
                self.fail();
                return;
            }
        }
        let released = self.durable.drain().await;
        self.send_all(released);
        if self.announce_change().is_err() {
            tracing::warn!("could not encode the document for its last change notification");
        }
        if let Err(error) = self.flush().await {
            tracing::error!(%error, "final snapshot failed at shutdown");
        }
        for peer in self.peers.values() {
            peer.close
                .close(close_code::GOING_AWAY, "server shutting down");
        }
        self.peers.clear();
        self.ctx.registry.remove(&self.name, self.generation);
    }

    /// Deletes the document for the HTTP API. The other nodes are told first, so they stop
    /// writing before the store is emptied; then this node waits for its own snapshot write and
    /// log append in flight, which would otherwise land after the deletion and bring the
    /// document back. The room stays listed (and queues what arrives) until the store is empty,
    /// so no fresh room can load the old state meanwhile; the queued commands are then dropped,
    /// and their senders retry on a fresh, empty room.
    ///
    /// What this does not cover: another node's snapshot or append that was already running
    /// when the deletion reached it can still land afterwards and restore part of the document.
    async fn delete(&mut self, reply: tokio::sync::oneshot::Sender<Result<(), String>>) -> Exit {
        if let Some(relay) = &self.ctx.relay {
            relay.publish(&self.name, Body::Deleted);
        }
        self.close_deleted();
        if let Some(saving) = self.saving.take() {
            let _ = saving.await;
        }
        self.durable.settle().await;
        let deleted = match self.ctx.store.delete(&self.name).await {
            Ok(()) => self.ctx.log.delete(&self.name).await,
            Err(error) => Err(error),
        };
        if let Err(error) = &deleted {
            metrics::get().store_errors.increment(1);
            tracing::error!(%error, "deleting the stored document failed");
        }
        self.drop_deleted();
        let _ = reply.send(deleted.map_err(|e| e.to_string()));
        Exit::Deleted
    }

    /// Closes every connection with 4404 and forgets what is not saved yet.
    fn close_deleted(&mut self) {
        for peer in self.peers.values() {
            peer.close
                .close(close_code::DOCUMENT_DELETED, "document deleted");
        }
        self.peers.clear();
        self.durable.forget_unlogged();
        self.dirty = false;
        self.snapshot_due = None;
    }

    /// Leaves the registry without saving; queued commands are dropped with the room.
    fn drop_deleted(&mut self) -> Exit {
        self.close_deleted();
        self.ctx.registry.remove(&self.name, self.generation);
        self.cmd_rx.close();
        Exit::Deleted
    }

    /// Drops a document that yrs panicked on: it may be corrupt, so it is neither saved nor
    /// served again. Connections are closed with 1011 and reconnect to a reloaded room.
    fn fail(&mut self) -> Exit {
        tracing::error!("document engine panicked; dropping the room without saving");
        self.ctx.registry.remove(&self.name, self.generation);
        self.cmd_rx.close();
        for peer in self.peers.values() {
            peer.close.close(
                close_code::INTERNAL_ERROR,
                "document failed; reconnect to reload",
            );
        }
        self.peers.clear();
        Exit::Failed
    }

    /// Turns away every queued join after a failed load.
    fn refuse_all(&mut self, reason: JoinRefused) {
        self.ctx.registry.remove(&self.name, self.generation);
        self.cmd_rx.close();
        while let Ok(cmd) = self.cmd_rx.try_recv() {
            if let RoomCmd::Join { joined, .. } = cmd {
                let _ = joined.send(Err(reason));
            }
        }
    }
}

async fn timed_save(
    store: &dyn SnapshotStore,
    name: &DocName,
    snapshot: Bytes,
) -> Result<(), StoreError> {
    let started = std::time::Instant::now();
    let saved = store.save(name, snapshot).await;
    metrics::snapshot_written(started.elapsed());
    saved
}

/// Hands a saved snapshot to the application's [`Hooks::store`]; a failure is logged and
/// counted, the snapshot stays saved.
async fn call_store_hook(hooks: &dyn Hooks, name: &DocName, saved: &Bytes) {
    if let Err(error) = hooks.store(name, saved).await {
        tracing::error!(%error, "the store hook failed");
        metrics::get().store_errors.increment(1);
    }
}

/// Saves a snapshot and then drops the log records it covers; returns what was saved.
///
/// Several nodes may share one log, so records up to `covered` can hold another node's updates
/// that have not reached this document yet (the relay is a few milliseconds behind). They are
/// merged into the snapshot before it is saved, so dropping them loses nothing. A failed
/// truncation only leaves records to replay.
async fn save_and_compact(
    store: &dyn SnapshotStore,
    log: &dyn UpdateLog,
    name: &DocName,
    snapshot: Bytes,
    covered: u64,
) -> Result<Bytes, StoreError> {
    if covered == 0 {
        timed_save(store, name, snapshot.clone()).await?;
        return Ok(snapshot);
    }
    let records = log.read(name).await?;
    let mut parts = vec![snapshot.clone()];
    parts.extend(
        records
            .into_iter()
            .filter(|(seq, _)| *seq <= covered)
            .map(|(_, update)| update),
    );
    let merged = match yrs::merge_updates_v1(&parts) {
        Ok(merged) => Bytes::from(merged),
        Err(error) => {
            tracing::warn!(%error, "log records do not merge; saving without compacting");
            timed_save(store, name, snapshot.clone()).await?;
            return Ok(snapshot);
        }
    };
    timed_save(store, name, merged.clone()).await?;
    if let Err(error) = log.truncate(name, covered).await {
        tracing::warn!(%error, "could not truncate the update log after a snapshot");
    }
    Ok(merged)
}

async fn sleep_until_opt(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => sleep_until(deadline).await,
        None => pending().await,
    }
}

async fn wait_opt(task: &mut Option<SaveTask>) -> <SaveTask as Future>::Output {
    match task {
        Some(task) => task.await,
        None => pending().await,
    }
}

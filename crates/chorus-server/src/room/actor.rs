//! The room task: a tokio driver around one [`RoomCore`]. It waits for commands, deadlines and
//! background writes, hands each to the core, and carries out the [`Effect`]s the core returns:
//! frames into outboxes, appends and snapshots as background tasks, publishes to the relay.
//! It decides nothing about the document; the order of one update's steps is in the top
//! comment of the `chorus-room` crate.

use std::collections::HashMap;
use std::future::{Future, pending};
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;

use bytes::Bytes;
use chorus_protocol::DocName;
use chorus_room::{
    DocError, LoadError, Remote, RoomCore, Snapshot, Surroundings, Wake, WriteRefused,
};
use chorus_store::{SnapshotStore, StoreError, UpdateLog};
use futures_util::FutureExt;
use tokio::sync::mpsc::{self};
use tokio::sync::oneshot;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

mod effects;
pub(crate) mod versions;
mod writes;

use writes::{Task, append_until_done, call_store_hook, finished, save_compacted, timed_save};

use super::RoomSettings;
use super::handle::{DeleteFailed, JoinRefused, RoomCmd};
use crate::changes::Changes;
use crate::conn::{ConnId, Peer};
use crate::history::History;
use crate::hooks::Hooks;
use crate::metrics;
use crate::relay::{Body, Relay};

/// How a server write is answered.
type WriteReply = oneshot::Sender<Result<(), WriteRefused>>;

/// An update-log append in flight ([`Room::start_append`]): its last sequence number, or the
/// panic it ended in.
type Appending = Pin<Box<dyn Future<Output = std::thread::Result<Result<u64, StoreError>>> + Send>>;

/// How an append ended, as [`finished`] takes it.
type AppendOutcome = Result<Result<u64, StoreError>, &'static str>;

/// How a room leaves the registry that listed it. The registry implements it, so the room
/// needs no knowledge of the registry (which starts rooms, and so knows them).
pub(super) trait Listing: Send + Sync + 'static {
    /// Unlists room `generation` of `doc` unless a command waits in `inbox`; false if one
    /// does (someone found the room meanwhile).
    fn unlist_if_idle(
        &self,
        doc: &DocName,
        generation: u64,
        inbox: &mpsc::Receiver<RoomCmd>,
    ) -> bool;
    /// Unlists room `generation` of `doc` (it failed, was deleted or shut down).
    fn unlist(&self, doc: &DocName, generation: u64);
}

/// What a room shares with the rest of the server.
pub(super) struct RoomContext {
    pub registry: Box<dyn Listing>,
    /// The other nodes, when the server runs with `--redis-url`.
    pub relay: Option<Relay>,
    /// The embedding application's hooks.
    pub hooks: Arc<dyn Hooks>,
    /// Where change notifications go; `None` when nobody listens.
    pub changes: Option<Changes>,
    pub store: Arc<dyn SnapshotStore>,
    pub log: Arc<dyn UpdateLog>,
    /// Versions and activity.
    pub history: History,
    pub settings: RoomSettings,
    pub shutdown: CancellationToken,
    pub tracker: TaskTracker,
}

pub(super) struct Room {
    name: DocName,
    generation: u64,
    cmd_rx: mpsc::Receiver<RoomCmd>,
    ctx: RoomContext,
    core: RoomCore<WriteReply>,
    /// Outboxes and close signals of the connections in the room.
    peers: HashMap<ConnId, Peer>,
    appending: Option<Appending>,
    saving: Option<Task<()>>,
    /// Deadlines of the activity flush and the next automatic version.
    history_clock: versions::HistoryClock,
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

/// The document engine panicked: the room must be dropped.
struct Panicked;

impl From<DocError> for Panicked {
    fn from(_: DocError) -> Self {
        Self
    }
}

impl Room {
    pub(super) fn new(
        name: DocName,
        generation: u64,
        cmd_rx: mpsc::Receiver<RoomCmd>,
        ctx: RoomContext,
    ) -> Result<Self, DocError> {
        let around = Surroundings {
            shared: ctx.relay.is_some(),
            listened: ctx.changes.is_some(),
        };
        let core = RoomCore::new(ctx.settings.clone(), around, now())?;
        Ok(Self {
            name,
            generation,
            cmd_rx,
            ctx,
            core,
            peers: HashMap::new(),
            appending: None,
            saving: None,
            history_clock: versions::HistoryClock::default(),
        })
    }

    /// Loads the document, then serves commands until the room unloads, fails or shuts down.
    ///
    /// A plain function returning the room's future, not an `async fn`: an `async fn` keeps its
    /// `self` argument in a slot of its own beside the binding its body moves it into, and
    /// every room's task carried two copies of the 1.2 KB `Room`.
    #[expect(
        clippy::manual_async_fn,
        reason = "an async fn would keep `self` twice (see above)"
    )]
    pub(super) fn run(mut self) -> impl Future<Output = ()> + Send {
        async move {
            // The one-off steps of a room's life (load, subscribe, unload, shutdown, delete) are
            // boxed: a task's future keeps room for its largest state for the task's whole life,
            // and these, which hold store futures, were most of an idle room's 3.6 KB task.
            if let Err(error) = Box::pin(self.load()).await {
                tracing::error!(%error, "could not load document; refusing connections");
                self.refuse_all(JoinRefused::LoadFailed);
                return;
            }
            tracing::debug!("room opened");
            if let Some(relay) = self.ctx.relay.clone() {
                Box::pin(relay.subscribe(&self.name)).await;
                if self.core.resync().is_err() {
                    self.fail();
                    return;
                }
                self.carry_out();
            }
            metrics::get().rooms.increment(1.0);
            let exit = self.serve().await;
            metrics::get().rooms.decrement(1.0);
            match exit {
                Exit::Unloaded => tracing::info!("room unloaded"),
                Exit::Shutdown => tracing::debug!("room stopped for shutdown"),
                Exit::Failed => {
                    tracing::warn!("room failed and was dropped; it reloads on next use")
                }
                Exit::Deleted => tracing::info!("room deleted"),
            }
        }
    }

    async fn load(&mut self) -> Result<(), LoadFailure> {
        let snapshot = self.ctx.store.load(&self.name).await?;
        let snapshot_missing = snapshot.is_none();
        if let Some(snapshot) = snapshot {
            self.core.load_snapshot(&snapshot)?;
            tracing::info!(bytes = snapshot.len(), "room loaded snapshot");
        }
        let records = self.ctx.log.read(&self.name).await?;
        if snapshot_missing && records.is_empty() {
            self.load_initial_content().await?;
        }
        let replayed = self.core.replay(records, now())?;
        if replayed > 0 {
            tracing::info!(records = replayed, "room replayed its update log");
        }
        Ok(())
    }

    /// Asks the application's [`Hooks::load`] for a document the store knows nothing about,
    /// and saves what it gives at once, so it is asked only once per document.
    async fn load_initial_content(&mut self) -> Result<(), LoadFailure> {
        let content = self
            .ctx
            .hooks
            .load(&self.name)
            .await
            .map_err(|error| LoadFailure::Hook(error.to_string()))?;
        let Some(content) = content else {
            return Ok(());
        };
        let snapshot = self.core.load_initial(&content)?;
        timed_save(self.ctx.store.as_ref(), &self.name, snapshot).await?;
        tracing::info!(
            bytes = content.len(),
            "room took its initial content from the load hook"
        );
        Ok(())
    }

    async fn serve(&mut self) -> Exit {
        // One timer and one shutdown waiter for the room's whole life: made afresh on every
        // turn, each would enter and leave a timer wheel or a waiter list per command. The
        // timer is re-armed only when the next deadline moves, which a stream of updates rarely
        // does (the snapshot deadline is set by the first of them). It serves the core's
        // deadlines and the history's (a minute's activity, the next version): a second timer
        // would be a part of every idle room.
        let timer = tokio::time::sleep_until(Instant::now());
        tokio::pin!(timer);
        let mut armed: Option<Instant> = None;
        let cancelled = self.ctx.shutdown.clone().cancelled_owned();
        tokio::pin!(cancelled);
        loop {
            let core_at = self.core.deadline().map(Instant::from_std);
            let history_at = self.history_clock.next();
            let history_first = history_at.is_some_and(|h| core_at.is_none_or(|c| h < c));
            let deadline = if history_first { history_at } else { core_at };
            if deadline != armed {
                if let Some(at) = deadline {
                    timer.as_mut().reset(at);
                }
                armed = deadline;
            }
            tokio::select! {
                // In this order, so that what frees waiting frames (an append done) goes first;
                // none of the first four can be ready on every turn, so commands never starve.
                biased;
                () = &mut cancelled => {
                    Box::pin(self.shutdown()).await;
                    return Exit::Shutdown;
                }
                appended = wait_append(&mut self.appending) => {
                    self.appending = None;
                    self.core.appended(finished("update log append", appended));
                }
                saved = wait_opt(&mut self.saving) => {
                    self.saving = None;
                    let saved = finished("snapshot", saved);
                    self.core.snapshot_saved(saved.is_some(), now());
                }
                () = &mut timer, if armed.is_some() => {
                    // Fired: re-armed on the next turn even if the deadline stays the same.
                    armed = None;
                    if history_first {
                        if self.history_due().is_err() {
                            return self.fail();
                        }
                    } else {
                        match self.core.wake(now()) {
                            Err(_) => return self.fail(),
                            Ok(Wake::Unload) => {
                                if let Some(exit) = Box::pin(self.try_unload()).await {
                                    return exit;
                                }
                            }
                            Ok(Wake::Continue) => {}
                        }
                    }
                }
                cmd = self.cmd_rx.recv() => {
                    // The registry keeps a sender while the room is listed, so `None` means the
                    // room was removed; nothing can reach it any more.
                    let Some(cmd) = cmd else { return Exit::Unloaded };
                    // Deletions end the room, so they are handled here rather than in `handle`.
                    let cmd = match cmd {
                        RoomCmd::Delete { reply } => return Box::pin(self.delete(reply)).await,
                        RoomCmd::Remote { origin, body: Body::Deleted } => {
                            tracing::info!(node = %origin, "document deleted on another node");
                            self.core.deleted_elsewhere();
                            return self.drop_room(Exit::Deleted);
                        }
                        cmd => cmd,
                    };
                    if self.handle(cmd).is_err() {
                        return self.fail();
                    }
                    self.notice_edits();
                }
            }
            self.carry_out();
        }
    }

    /// Hands one command to the core. Only a document panic is returned: everything else the
    /// core deals with, by closing the one connection at fault.
    fn handle(&mut self, cmd: RoomCmd) -> Result<(), Panicked> {
        let now = now();
        match cmd {
            RoomCmd::Join { conn, peer, joined } => {
                let (can_write, identity) = (peer.can_write, peer.identity.clone());
                self.peers.insert(conn, peer);
                if !self.core.join_as(conn, can_write, identity)? {
                    self.peers.remove(&conn);
                    let _ = joined.send(Err(JoinRefused::RoomFull));
                    return Ok(());
                }
                // Sync step 1 and the awareness go into the outbox before the answer.
                self.carry_out();
                if joined.send(Ok(())).is_err() {
                    // The connection gave up while waiting; forget it.
                    self.forget_peer(conn);
                }
            }
            RoomCmd::Message { conn, msg } => self.core.receive(conn, msg, now)?,
            RoomCmd::Leave { conn } => self.forget_peer(conn),
            RoomCmd::WhenDurable { conn, frame } => self.core.when_durable(conn, frame),
            RoomCmd::AnswerReadOnly {
                conn,
                update,
                known,
                unknown,
            } => self.core.answer_read_only(conn, &update, known, unknown)?,
            RoomCmd::Stateless { from, payload } => {
                self.stateless(from, &payload);
                if let Some(relay) = &self.ctx.relay {
                    relay.publish(&self.name, Body::Stateless(payload));
                }
            }
            RoomCmd::Remote { origin, body } => {
                let remote = match body {
                    Body::Update(update) => Remote::Update(update),
                    Body::Awareness(update) => Remote::Awareness(update),
                    Body::SyncRequest(sv) => Remote::SyncRequest(sv),
                    // `serve` handles deletions; this is a room shutting down.
                    Body::Stateless(payload) => {
                        self.stateless(None, &payload);
                        return Ok(());
                    }
                    Body::Heartbeat | Body::Deleted => return Ok(()),
                };
                self.core.remote(origin, remote, now)?;
            }
            RoomCmd::Read { since, reply } => {
                let read = self.core.read(since.as_ref());
                let failed = read.is_err();
                let _ = reply.send(read);
                if failed {
                    return Err(Panicked);
                }
            }
            RoomCmd::Write {
                update,
                identity,
                reply,
            } => self.core.write_as(&update, &identity, reply, now)?,
            RoomCmd::Version { request, reply } => self.make_version(request, Some(reply))?,
            // `serve` handles deletions; this is a room shutting down, which saves its state.
            RoomCmd::Delete { reply } => {
                let _ = reply.send(Err(DeleteFailed::ShuttingDown));
            }
            RoomCmd::RelayResync => self.core.resync()?,
            RoomCmd::NodeGone(node) => self.core.node_gone(node, now),
        }
        Ok(())
    }

    fn forget_peer(&mut self, conn: ConnId) {
        self.peers.remove(&conn);
        self.core.leave(conn, now());
    }

    /// Starts an append, which the room's loop then polls beside its commands. Not a task of
    /// its own: in a quiet room every update is one append, and a task per append costs its
    /// spawn, its scheduling and one more wake-up of the room through its `JoinHandle`. The
    /// log does its writing off this task anyway; a panic in it is caught here, as a task's
    /// would be, so the frames waiting for it still go out. A room that is dropped with an
    /// append in flight hands it to a task (`drop_room`).
    fn start_append(&mut self, batch: Vec<Bytes>) {
        let (log, doc) = (Arc::clone(&self.ctx.log), self.name.clone());
        let shutdown = self.ctx.shutdown.clone();
        let append = append_until_done(log, doc, batch, shutdown);
        self.appending = Some(Box::pin(AssertUnwindSafe(append).catch_unwind()));
    }

    /// Writes a snapshot in the background, so the room keeps serving while the store works.
    fn start_save(&mut self, snapshot: Snapshot) {
        let (store, log) = (Arc::clone(&self.ctx.store), Arc::clone(&self.ctx.log));
        let (hooks, name) = (Arc::clone(&self.ctx.hooks), self.name.clone());
        self.saving = Some(self.ctx.tracker.spawn(async move {
            let saved = save_compacted(store.as_ref(), log.as_ref(), &name, snapshot).await?;
            call_store_hook(hooks.as_ref(), &name, &saved).await;
            Ok(())
        }));
    }

    /// Waits for the append in flight and every one the core starts after it, so that the log
    /// holds everything applied.
    async fn settle_log(&mut self) {
        while let Some(task) = self.appending.take() {
            let appended = finished("update log append", panicked_as_error(task.await));
            self.core.appended(appended);
            self.carry_out();
        }
        if let Err(error) = self.ctx.log.flush().await {
            tracing::error!(%error, "update log flush failed");
        }
    }

    /// Waits for the snapshot in flight, then saves what is still unsaved; stores the activity
    /// counted so far, and the automatic version that was due later (the document was edited
    /// since the last one).
    async fn flush(&mut self) -> Result<(), Panicked> {
        if self.history_clock.next().is_some() {
            if self.history_clock.version_pending() {
                let request = versions::VersionRequest {
                    kind: chorus_store::versions::VersionKind::Auto,
                    label: None,
                    restored_from: None,
                };
                self.make_version(request, None)?;
            } else {
                self.flush_activity().await;
            }
        }
        if let Some(saving) = self.saving.take() {
            let saved = finished("snapshot", saving.await);
            self.core.snapshot_saved(saved.is_some(), now());
        }
        self.settle_log().await;
        let snapshot = self.core.final_snapshot()?;
        self.carry_out();
        let Some(snapshot) = snapshot else {
            return Ok(());
        };
        let store = self.ctx.store.as_ref();
        match save_compacted(store, self.ctx.log.as_ref(), &self.name, snapshot).await {
            Ok(saved) => {
                // In the background: a slow hook must not hold up a room that is unloading
                // while someone joins. Shutdown still waits for it (the task is tracked).
                let (hooks, name) = (Arc::clone(&self.ctx.hooks), self.name.clone());
                self.ctx.tracker.spawn(async move {
                    call_store_hook(hooks.as_ref(), &name, &saved).await;
                });
            }
            Err(error) => {
                tracing::error!(%error, "final snapshot failed");
                metrics::get().store_errors.increment(1);
                self.core.snapshot_saved(false, now());
            }
        }
        Ok(())
    }

    /// Saves and leaves the registry, unless a connection arrived meanwhile or the save failed
    /// (then the room stays, and tries again after another idle period: `None`).
    async fn try_unload(&mut self) -> Option<Exit> {
        if self.flush().await.is_err() {
            return Some(self.fail());
        }
        let unlisted = !self.core.is_dirty()
            && self
                .ctx
                .registry
                .unlist_if_idle(&self.name, self.generation, &self.cmd_rx);
        if !unlisted {
            self.core.postpone_unload(now());
            return None;
        }
        // Unlisted: a command can only come from a handle looked up before; refuse it so its
        // sender retries and finds (or starts) a fresh room, which loads the snapshot just saved.
        self.cmd_rx.close();
        while self.cmd_rx.try_recv().is_ok() {}
        Some(Exit::Unloaded)
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
            self.carry_out();
            if outcome.is_err() {
                self.fail();
                return;
            }
        }
        if self.flush().await.is_err() {
            self.fail();
            return;
        }
        self.core.shut_down();
        self.drop_room(Exit::Shutdown);
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
    async fn delete(&mut self, reply: oneshot::Sender<Result<(), DeleteFailed>>) -> Exit {
        self.core.delete();
        self.carry_out();
        if let Some(saving) = self.saving.take() {
            let _ = saving.await;
        }
        if let Some(appending) = self.appending.take() {
            let _ = appending.await;
        }
        let deleted = match self.ctx.store.delete(&self.name).await {
            Ok(()) => self.ctx.log.delete(&self.name).await,
            Err(error) => Err(error),
        };
        if let Err(error) = &deleted {
            metrics::get().store_errors.increment(1);
            tracing::error!(%error, "deleting the stored document failed");
        }
        let exit = self.drop_room(Exit::Deleted);
        let _ = reply.send(deleted.map_err(DeleteFailed::from));
        exit
    }

    /// Drops a document that yrs panicked on: it may be corrupt, so it is neither saved nor
    /// served again. Connections are closed with 1011 and reconnect to a reloaded room.
    fn fail(&mut self) -> Exit {
        self.core.fail();
        self.drop_room(Exit::Failed)
    }

    /// Closes what the core asked to, leaves the registry, and drops queued commands.
    fn drop_room(&mut self, exit: Exit) -> Exit {
        self.carry_out();
        // An append still in flight finishes on its own, as it would have as a task: what it
        // carries was applied, and the room that polled it is going.
        if let Some(append) = self.appending.take() {
            self.ctx.tracker.spawn(append);
        }
        self.peers.clear();
        self.ctx.registry.unlist(&self.name, self.generation);
        self.cmd_rx.close();
        exit
    }

    /// Turns away every queued join after a failed load.
    fn refuse_all(&mut self, reason: JoinRefused) {
        self.ctx.registry.unlist(&self.name, self.generation);
        self.cmd_rx.close();
        while let Ok(cmd) = self.cmd_rx.try_recv() {
            if let RoomCmd::Join { joined, .. } = cmd {
                let _ = joined.send(Err(reason));
            }
        }
    }
}

/// Why a room could not load its document.
#[derive(Debug, thiserror::Error)]
enum LoadFailure {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Document(#[from] LoadError),
    #[error("the load hook failed: {0}")]
    Hook(String),
}

/// The room's clock, in the form the core takes (tokio's, so paused test time applies).
pub(super) fn now() -> std::time::Instant {
    Instant::now().into_std()
}

async fn wait_opt<T>(task: &mut Option<Task<T>>) -> <Task<T> as Future>::Output {
    match task {
        Some(task) => task.await,
        None => pending().await,
    }
}

async fn wait_append(append: &mut Option<Appending>) -> AppendOutcome {
    match append {
        Some(append) => panicked_as_error(append.await),
        None => pending().await,
    }
}

fn panicked_as_error(outcome: std::thread::Result<Result<u64, StoreError>>) -> AppendOutcome {
    outcome.map_err(|_| "it panicked")
}

//! Finds the room of a document, starting it on first use.
//!
//! The map sits behind a std `Mutex` that is only held for a lookup or an insert, never across an
//! `.await`; all document work happens inside the rooms, so this is not a lock on the hot path
//! (connections look their room up once, when they join).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};

use chorus_protocol::DocName;
use chorus_store::{SnapshotStore, UpdateLog};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::Instrument;

use super::ROOM_INBOX_CAPACITY;
use super::RoomSettings;
use super::actor::{Listing, Room, RoomContext};
use super::handle::{DeleteFailed, JoinRefused, RoomCmd, RoomHandle};
use crate::changes::Changes;
use crate::conn::{ConnId, Peer};
use crate::history::History;
use crate::hooks::Hooks;
use crate::relay::{Delivery, Relay, Subscribers};

/// How often a join retries when the room it found was just unloading. Each retry finds a new
/// room (the old one removed itself before closing), so more than one retry is very unlikely.
const JOIN_ATTEMPTS: usize = 3;

/// Every room of this server.
#[derive(Clone)]
pub struct Rooms {
    inner: Arc<Inner>,
}

struct Inner {
    rooms: Mutex<HashMap<DocName, RoomHandle>>,
    next_generation: AtomicU64,
    store: Arc<dyn SnapshotStore>,
    log: Arc<dyn UpdateLog>,
    relay: Option<Relay>,
    hooks: Arc<dyn Hooks>,
    changes: Option<Changes>,
    history: History,
    settings: RoomSettings,
    shutdown: CancellationToken,
    tracker: TaskTracker,
}

/// What rooms call out to besides their store: the other nodes, the embedding application's
/// hooks, and the change notifications.
#[derive(Clone)]
pub(crate) struct Services {
    pub relay: Option<Relay>,
    pub hooks: Arc<dyn Hooks>,
    pub changes: Option<Changes>,
    pub history: History,
}

impl Rooms {
    /// A registry whose rooms load from and save to `store` and its update log, share their
    /// changes through the relay (if any) and call the hooks of `services`, stop when
    /// `shutdown` is cancelled, and run as tasks of `tracker` (so shutdown can wait for their
    /// final snapshots).
    pub(crate) fn new(
        (store, log): (Arc<dyn SnapshotStore>, Arc<dyn UpdateLog>),
        services: Services,
        settings: RoomSettings,
        shutdown: CancellationToken,
        tracker: TaskTracker,
    ) -> Self {
        let Services {
            relay,
            hooks,
            changes,
            history,
        } = services;
        let rooms = Self {
            inner: Arc::new(Inner {
                rooms: Mutex::new(HashMap::new()),
                next_generation: AtomicU64::new(1),
                store,
                log,
                relay,
                hooks,
                changes,
                history,
                settings,
                shutdown,
                tracker,
            }),
        };
        if let Some(relay) = &rooms.inner.relay {
            let weak: Weak<Inner> = Arc::downgrade(&rooms.inner);
            relay.attach(weak);
        }
        rooms
    }

    /// Adds a connection to the room of `doc`, starting the room if needed.
    ///
    /// # Errors
    /// [`JoinRefused`] when the server is shutting down or the document cannot be loaded.
    pub(crate) async fn join(
        &self,
        doc: &DocName,
        conn: ConnId,
        peer: Peer,
    ) -> Result<RoomHandle, JoinRefused> {
        for _ in 0..JOIN_ATTEMPTS {
            let room = self.get_or_spawn(doc)?;
            match room.join(conn, peer.clone()).await {
                Ok(()) => return Ok(room),
                Err(Some(refused)) => return Err(refused),
                Err(None) => continue,
            }
        }
        Err(JoinRefused::LoadFailed)
    }

    /// The room of `doc`, started if needed, for server-side reads and writes. Retries while the
    /// room it finds is just unloading.
    ///
    /// # Errors
    /// [`JoinRefused`] when the server is shutting down or the document cannot be loaded.
    pub(crate) async fn with_room<T, F, Fut>(&self, doc: &DocName, f: F) -> Result<T, JoinRefused>
    where
        F: Fn(RoomHandle) -> Fut,
        Fut: std::future::Future<Output = Result<T, super::RoomGone>>,
    {
        for _ in 0..JOIN_ATTEMPTS {
            if let Ok(value) = f(self.get_or_spawn(doc)?).await {
                return Ok(value);
            }
        }
        Err(JoinRefused::LoadFailed)
    }

    /// Every stored document (a snapshot, an update log or both), in name order. A room writes
    /// every accepted update to its log before anyone sees it, so a document with content is
    /// listed before its first snapshot; a room opened but never edited has nothing stored and
    /// is not.
    ///
    /// # Errors
    /// The store's or the log's failure.
    pub(crate) async fn stored(&self) -> Result<Vec<DocName>, chorus_store::StoreError> {
        chorus_store::ops::list(self.inner.store.as_ref(), self.inner.log.as_ref()).await
    }

    /// Deletes `doc` through its room (started if needed, so that no other room of the document
    /// can load it meanwhile): see [`RoomCmd::Delete`].
    ///
    /// # Errors
    /// [`JoinRefused`] when the server is shutting down or the document cannot be loaded; the
    /// inner error when the store failed to delete.
    pub(crate) async fn delete(
        &self,
        doc: &DocName,
    ) -> Result<Result<(), DeleteFailed>, JoinRefused> {
        self.with_room(doc, |room| async move { room.delete().await })
            .await
    }

    /// Number of rooms in memory.
    pub fn len(&self) -> usize {
        self.rooms().len()
    }

    /// True when no room is in memory.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn get_or_spawn(&self, doc: &DocName) -> Result<RoomHandle, JoinRefused> {
        if self.inner.shutdown.is_cancelled() {
            return Err(JoinRefused::ShuttingDown);
        }
        let mut rooms = self.rooms();
        if let Some(room) = rooms.get(doc).filter(|room| !room.is_closed()) {
            return Ok(room.clone());
        }
        let (cmd_tx, cmd_rx) = mpsc::channel(ROOM_INBOX_CAPACITY);
        let generation = self.inner.next_generation.fetch_add(1, Ordering::Relaxed);
        let handle = RoomHandle::new(doc.clone(), cmd_tx, generation);
        rooms.insert(doc.clone(), handle.clone());
        drop(rooms);

        let ctx = RoomContext {
            registry: Box::new(self.clone()),
            relay: self.inner.relay.clone(),
            hooks: Arc::clone(&self.inner.hooks),
            changes: self.inner.changes.clone(),
            store: Arc::clone(&self.inner.store),
            log: Arc::clone(&self.inner.log),
            history: self.inner.history.clone(),
            settings: self.inner.settings.clone(),
            shutdown: self.inner.shutdown.child_token(),
            tracker: self.inner.tracker.clone(),
        };
        let room = match Room::new(doc.clone(), generation, cmd_rx, ctx) {
            Ok(room) => room,
            Err(error) => {
                tracing::error!(%doc, %error, "could not create a document");
                self.unlist(doc, generation);
                return Err(JoinRefused::LoadFailed);
            }
        };
        // A root span: the room outlives the connection that happened to start it.
        let span = tracing::info_span!(parent: None, "room", doc = %doc);
        let task = room.run();
        // What every loaded room costs besides its document: watch it when changing the room.
        tracing::debug!(%doc, future_bytes = std::mem::size_of_val(&task), "room task");
        self.inner.tracker.spawn(task.instrument(span));
        Ok(handle)
    }

    /// Removes the room `generation` of `doc` if it is the one listed, and ends its relay
    /// subscription under the same lock: a newer room of the document is listed only after
    /// this, and subscribes only after it is listed, so its subscription comes later and stays.
    fn remove(&self, rooms: &mut HashMap<DocName, RoomHandle>, doc: &DocName, generation: u64) {
        if rooms
            .get(doc)
            .is_some_and(|room| room.generation() == generation)
        {
            rooms.remove(doc);
            if let Some(relay) = &self.inner.relay {
                relay.unsubscribe(doc);
            }
        }
    }

    fn rooms(&self) -> MutexGuard<'_, HashMap<DocName, RoomHandle>> {
        self.inner.rooms()
    }
}

impl Listing for Rooms {
    /// Checking the inbox under the map lock guarantees no connection found this room and
    /// joined it in between.
    fn unlist_if_idle(
        &self,
        doc: &DocName,
        generation: u64,
        inbox: &mpsc::Receiver<RoomCmd>,
    ) -> bool {
        let mut rooms = self.rooms();
        if !inbox.is_empty() {
            return false;
        }
        self.remove(&mut rooms, doc, generation);
        true
    }

    fn unlist(&self, doc: &DocName, generation: u64) {
        let mut rooms = self.rooms();
        self.remove(&mut rooms, doc, generation);
    }
}

impl Inner {
    fn rooms(&self) -> MutexGuard<'_, HashMap<DocName, RoomHandle>> {
        // Every critical section is a single map operation, so a panic cannot leave the map
        // inconsistent: a poisoned lock is safe to keep using.
        self.rooms.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Subscribers for Inner {
    fn deliver(&self, doc: &str, delivery: Delivery) {
        let room = self.rooms().get(doc).cloned();
        if let Some(room) = room {
            room.deliver(delivery);
        }
    }

    fn deliver_all(&self, delivery: &dyn Fn() -> Delivery) {
        let rooms: Vec<RoomHandle> = self.rooms().values().cloned().collect();
        for room in rooms {
            room.deliver(delivery());
        }
    }

    fn docs(&self) -> Vec<DocName> {
        self.rooms().keys().cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::hooks::NoHooks;
    use chorus_store::{MemoryLog, MemoryStore};

    /// A loaded room's task is part of what every idle connection costs (at 10 per room, a
    /// tenth of it). Its future must hold one `Room` and the state of its loop, not a second
    /// copy of the `Room` (an `async fn run(mut self)` kept two) nor the store futures of the
    /// steps it takes once, which are boxed. Measured at 1,704 bytes; 3,624 before.
    #[tokio::test]
    async fn a_room_task_holds_one_room_and_no_one_off_step() {
        let rooms = Rooms::new(
            (
                Arc::new(MemoryStore::default()),
                Arc::new(MemoryLog::default()),
            ),
            Services {
                relay: None,
                hooks: Arc::new(NoHooks),
                changes: None,
                history: History::new(
                    Arc::new(chorus_store::MemoryVersions::new()),
                    &crate::config::HistoryConfig::default(),
                ),
            },
            Config::default().room_settings(),
            CancellationToken::new(),
            TaskTracker::new(),
        );
        let (_cmd_tx, cmd_rx) = mpsc::channel(ROOM_INBOX_CAPACITY);
        let ctx = RoomContext {
            registry: Box::new(rooms.clone()),
            relay: None,
            hooks: Arc::new(NoHooks),
            changes: None,
            history: rooms.inner.history.clone(),
            store: Arc::clone(&rooms.inner.store),
            log: Arc::clone(&rooms.inner.log),
            settings: rooms.inner.settings.clone(),
            shutdown: CancellationToken::new(),
            tracker: TaskTracker::new(),
        };
        let doc = DocName::parse("sized".to_owned()).expect("valid name");
        let room = Room::new(doc, 1, cmd_rx, ctx).expect("an empty document");
        let room_bytes = std::mem::size_of_val(&room);
        let task = room.run();
        let task_bytes = std::mem::size_of_val(&task);
        assert!(
            task_bytes < room_bytes + 640,
            "the room's task is {task_bytes} bytes for a {room_bytes}-byte room"
        );
    }
}

//! Scale-out: rooms shared across nodes through Redis pub/sub.
//!
//! Every node that has a room loaded subscribes to that room's channel and publishes what its own
//! clients change there (updates and awareness), in an [`Envelope`] that names the origin node;
//! a node drops its own envelopes. Pub/sub delivers at most once, so nodes never trust it to be
//! complete: when a node loads a room, when its Redis connection comes back, and periodically,
//! the room publishes its state vector and the other nodes answer with just the diff. Yjs updates
//! are idempotent and commutative, so duplicates and reordering are harmless.
//!
//! Awareness entries received from another node belong to that node. Nodes publish a heartbeat on
//! a node channel; when one falls silent its clients' presence is removed everywhere.
//!
//! # Layout
//! - [`envelope`]: the bincode envelope and [`NodeId`].
//! - [`redis`]: the publisher and subscriber tasks on a single Redis.
//! - [`cluster`]: the same over a Redis Cluster with sharded pub/sub.

mod cluster;
pub mod envelope;
mod redis;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use chorus_protocol::DocName;
use serde_bytes::ByteBuf;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use envelope::{Body, Envelope, NodeId};

use crate::room::handle::RoomCmd;

/// Envelopes waiting to be published. When full (Redis is slow or away), further envelopes are
/// dropped and every room resynchronises once publishing works again, so nothing is lost for good.
const PUBLISH_QUEUE_CAPACITY: usize = 8192;

/// Timing of the relay.
#[derive(Debug, Clone)]
pub struct RelaySettings {
    /// `redis://` URL of the Redis server; with `cluster`, a comma-separated list of seed nodes.
    pub url: String,
    /// Use a Redis Cluster with sharded pub/sub.
    pub cluster: bool,
    /// Prefix of every channel name, so several deployments can share one Redis.
    pub prefix: String,
    /// How often a node says it is alive.
    pub heartbeat_interval: Duration,
    /// A node silent for this long is considered dead and its clients' presence removed.
    pub node_timeout: Duration,
}

/// The relay as rooms and the app see it; cheap to clone.
#[derive(Clone)]
pub struct Relay {
    inner: Arc<Inner>,
}

struct Inner {
    node: NodeId,
    prefix: String,
    publish_tx: mpsc::Sender<(String, Vec<u8>)>,
    control_tx: mpsc::UnboundedSender<Control>,
    /// The rooms loaded on this node, by document: where remote envelopes are delivered.
    rooms: Mutex<HashMap<DocName, mpsc::Sender<RoomCmd>>>,
    connected: AtomicBool,
    /// Set when an envelope could not be queued or sent; the publisher clears it by making every
    /// room resynchronise once publishing works again.
    publish_gap: AtomicBool,
}

/// Requests to the subscriber task.
enum Control {
    Subscribe(String, oneshot::Sender<()>),
    Unsubscribe(String),
}

impl Relay {
    /// Starts the publisher and subscriber tasks on `tracker`; they stop with `shutdown`.
    ///
    /// # Errors
    /// An invalid Redis URL. An unreachable Redis is not an error: the node serves its local
    /// clients and connects when Redis comes up.
    pub fn start(
        settings: RelaySettings,
        shutdown: CancellationToken,
        tracker: &TaskTracker,
    ) -> anyhow::Result<Self> {
        let (publish_tx, publish_rx) = mpsc::channel(PUBLISH_QUEUE_CAPACITY);
        let (control_tx, control_rx) = mpsc::unbounded_channel();
        let relay = Self {
            inner: Arc::new(Inner {
                node: NodeId::random(),
                prefix: settings.prefix.clone(),
                publish_tx,
                control_tx,
                rooms: Mutex::new(HashMap::new()),
                connected: AtomicBool::new(false),
                publish_gap: AtomicBool::new(false),
            }),
        };
        if settings.cluster {
            tracker.spawn(cluster::cluster_loop(
                relay.clone(),
                publish_rx,
                control_rx,
                settings,
                shutdown,
            ));
            tracing::info!(node = %relay.node(), "relay started (Redis Cluster, sharded pub/sub)");
            return Ok(relay);
        }
        let client = ::redis::Client::open(settings.url.as_str()).map_err(|e| {
            anyhow::anyhow!(
                "--redis-url (CHORUS_REDIS_URL) is not a valid Redis URL ({e}); expected e.g. redis://127.0.0.1:6379"
            )
        })?;
        tracker.spawn(redis::publish_loop(
            relay.clone(),
            client.clone(),
            publish_rx,
            settings.clone(),
            shutdown.clone(),
        ));
        tracker.spawn(redis::subscribe_loop(
            relay.clone(),
            client,
            control_rx,
            settings,
            shutdown,
        ));
        tracing::info!(node = %relay.node(), "relay started");
        Ok(relay)
    }

    /// This node's id.
    pub fn node(&self) -> NodeId {
        self.inner.node
    }

    /// Whether the subscriber is connected to Redis right now.
    pub fn is_connected(&self) -> bool {
        self.inner.connected.load(Ordering::Relaxed)
    }

    /// Delivers the room's envelopes to `room` from now on. Returns once Redis confirmed the
    /// subscription, or at once while Redis is away (the subscription is made on reconnect, which
    /// also makes every room resynchronise).
    pub(crate) async fn subscribe(&self, doc: &DocName, room: mpsc::Sender<RoomCmd>) {
        let (ack, acked) = oneshot::channel();
        let sent = {
            // The control message is queued under the map lock, so subscriptions and
            // unsubscriptions reach Redis in the order the map saw them.
            let mut rooms = self.rooms();
            rooms.insert(doc.clone(), room);
            self.inner
                .control_tx
                .send(Control::Subscribe(self.channel(doc), ack))
                .is_ok()
        };
        if sent {
            let _ = acked.await;
        }
    }

    /// Stops delivering envelopes to the room whose inbox is `room`. A newer room for the same
    /// document (started while this one was stopping) keeps its subscription.
    pub(crate) fn unsubscribe(&self, doc: &DocName, room: &mpsc::Sender<RoomCmd>) {
        let mut rooms = self.rooms();
        if rooms.get(doc).is_some_and(|r| r.same_channel(room)) {
            rooms.remove(doc);
            let _ = self
                .inner
                .control_tx
                .send(Control::Unsubscribe(self.channel(doc)));
        }
    }

    /// Queues `body` for the other nodes holding `doc`. Never waits: when the queue is full the
    /// envelope is dropped and the publisher has every room resynchronise later.
    pub(crate) fn publish(&self, doc: &DocName, body: Body) {
        let bytes = Envelope::new(self.inner.node, body).encode();
        if self
            .inner
            .publish_tx
            .try_send((self.channel(doc), bytes))
            .is_err()
        {
            redis::note_dropped_publish(&self.inner.publish_gap);
        }
    }

    /// Publishes a document update.
    pub(crate) fn publish_update(&self, doc: &DocName, update: &[u8]) {
        self.publish(doc, Body::Update(ByteBuf::from(update.to_vec())));
    }

    /// Records how one publish went: a success after a gap makes every room resynchronise, a
    /// failure opens a gap.
    fn published(&self, outcome: ::redis::RedisResult<i64>) {
        match outcome {
            Ok(_) => {
                crate::metrics::get().relay_published.increment(1);
                if self.inner.publish_gap.swap(false, Ordering::Relaxed) {
                    tracing::info!("relay publishing again; resynchronising rooms");
                    self.tell_all_rooms(|| RoomCmd::RelayResync);
                }
            }
            Err(error) => {
                tracing::debug!(%error, "relay publish failed");
                redis::note_dropped_publish(&self.inner.publish_gap);
            }
        }
    }

    fn channel(&self, doc: &DocName) -> String {
        format!("{}:room:{}", self.inner.prefix, doc)
    }

    fn node_channel(&self) -> String {
        format!("{}:nodes", self.inner.prefix)
    }

    fn doc_of_channel<'a>(&self, channel: &'a str) -> Option<&'a str> {
        channel
            .strip_prefix(self.inner.prefix.as_str())
            .and_then(|rest| rest.strip_prefix(":room:"))
    }

    fn rooms(&self) -> MutexGuard<'_, HashMap<DocName, mpsc::Sender<RoomCmd>>> {
        // Single map operations only: a poisoned lock still holds a consistent map.
        self.inner
            .rooms
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Sends `cmd()` to every subscribed room without waiting; a room whose inbox is full
    /// misses it and catches up at its next periodic resync.
    fn tell_all_rooms(&self, cmd: impl Fn() -> RoomCmd) {
        for room in self.rooms().values() {
            let _ = room.try_send(cmd());
        }
    }
}

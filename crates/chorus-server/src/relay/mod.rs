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
//! - `redis`: the publisher and subscriber tasks on a single Redis.
//! - `cluster`: the same over a Redis Cluster with sharded pub/sub.

mod cluster;
pub mod envelope;
mod redis;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock, Weak};
use std::time::Duration;

use chorus_protocol::DocName;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use envelope::{Body, Envelope, NodeId};

/// What the relay hands to a room.
#[derive(Debug)]
pub enum Delivery {
    /// What another node published on the room's channel.
    Envelope {
        /// The node that published it.
        origin: NodeId,
        /// What it published.
        body: Body,
    },
    /// Messages between nodes may have been lost: exchange state vectors again.
    Resync,
    /// A node stopped heartbeating: the presence of its clients goes.
    NodeGone(NodeId),
}

/// The rooms of this node as the relay sees them: where it delivers. The room registry is the
/// one map of rooms and implements this; the relay keeps no map of its own.
pub trait Subscribers: Send + Sync + 'static {
    /// Hands `delivery` to the room of `doc`, if one is loaded, without waiting.
    fn deliver(&self, doc: &str, delivery: Delivery);
    /// Hands what `delivery` makes to every loaded room, without waiting.
    fn deliver_all(&self, delivery: &dyn Fn() -> Delivery);
    /// Every loaded room's document: the channels to subscribe to after a reconnect.
    fn docs(&self) -> Vec<DocName>;
}

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
    /// The rooms loaded on this node: where remote envelopes are delivered. Weak, because the
    /// registry holds the relay.
    rooms: OnceLock<Weak<dyn Subscribers>>,
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
                rooms: OnceLock::new(),
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

    /// Where envelopes go: the room registry, once it exists (it is built with the relay).
    pub(crate) fn attach(&self, rooms: Weak<dyn Subscribers>) {
        let _ = self.inner.rooms.set(rooms);
    }

    /// Delivers the channel of `doc` to its room from now on. Returns once Redis confirmed the
    /// subscription, or at once while Redis is away (the subscription is made on reconnect,
    /// which also makes every room resynchronise).
    pub(crate) async fn subscribe(&self, doc: &DocName) {
        let (ack, acked) = oneshot::channel();
        if self
            .inner
            .control_tx
            .send(Control::Subscribe(self.channel(doc), ack))
            .is_ok()
        {
            let _ = acked.await;
        }
    }

    /// Stops the channel of `doc`. The registry calls this under its lock as it removes the
    /// room, so that a newer room of the same document, which subscribes after it is listed,
    /// keeps its subscription.
    pub(crate) fn unsubscribe(&self, doc: &DocName) {
        let _ = self
            .inner
            .control_tx
            .send(Control::Unsubscribe(self.channel(doc)));
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

    /// Records how one publish went: a success after a gap makes every room resynchronise, a
    /// failure opens a gap.
    fn published(&self, outcome: ::redis::RedisResult<i64>) {
        match outcome {
            Ok(_) => {
                crate::metrics::get().relay_published.increment(1);
                if self.inner.publish_gap.swap(false, Ordering::Relaxed) {
                    tracing::info!("relay publishing again; resynchronising rooms");
                    self.tell_all_rooms(&|| Delivery::Resync);
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

    fn rooms(&self) -> Option<Arc<dyn Subscribers>> {
        self.inner.rooms.get().and_then(Weak::upgrade)
    }

    /// The channels of every loaded room.
    fn room_channels(&self) -> Vec<String> {
        self.rooms()
            .map(|rooms| rooms.docs().iter().map(|doc| self.channel(doc)).collect())
            .unwrap_or_default()
    }

    /// Hands what `delivery` makes to every loaded room without waiting; a room whose inbox
    /// is full misses it and catches up at its next periodic resync.
    fn tell_all_rooms(&self, delivery: &dyn Fn() -> Delivery) {
        if let Some(rooms) = self.rooms() {
            rooms.deliver_all(delivery);
        }
    }

    /// Hands `delivery` to the room of `doc`, if loaded.
    fn tell_room(&self, doc: &str, delivery: Delivery) {
        if let Some(rooms) = self.rooms() {
            rooms.deliver(doc, delivery);
        }
    }
}

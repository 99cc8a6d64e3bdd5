//! The two Redis connections of a node: one publishes (through a reconnecting connection
//! manager), one subscribes (a dedicated pub/sub connection, re-established with backoff).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use futures_util::StreamExt;
use redis::AsyncCommands;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use tokio::sync::mpsc;
use tokio::time::{Instant, MissedTickBehavior};
use tokio_util::sync::CancellationToken;

use super::{Body, Control, Delivery, Envelope, NodeId, Relay, RelaySettings};
use crate::metrics;

/// Longest wait between two attempts to reach Redis.
pub(super) const MAX_BACKOFF: Duration = Duration::from_secs(2);
/// How long one attempt to connect may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

pub(super) fn note_dropped_publish(gap: &AtomicBool) {
    if !gap.swap(true, Ordering::Relaxed) {
        tracing::warn!("relay publish queue full or Redis away; rooms will resync");
    }
}

/// Publishes queued envelopes and this node's heartbeat.
pub(super) async fn publish_loop(
    relay: Relay,
    client: redis::Client,
    mut queue: mpsc::Receiver<(String, Vec<u8>)>,
    settings: RelaySettings,
    shutdown: CancellationToken,
) {
    let config = ConnectionManagerConfig::new()
        .set_connection_timeout(Some(CONNECT_TIMEOUT))
        .set_response_timeout(Some(CONNECT_TIMEOUT))
        .set_max_delay(MAX_BACKOFF)
        .set_number_of_retries(1);
    let mut conn: Option<ConnectionManager> = None;
    let mut heartbeat = tokio::time::interval(settings.heartbeat_interval);
    heartbeat.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let heartbeat_bytes = Envelope::new(relay.node(), Body::Heartbeat).encode();
    let node_channel = relay.node_channel();
    loop {
        let (channel, bytes) = tokio::select! {
            () = shutdown.cancelled() => return,
            next = queue.recv() => match next {
                Some(next) => next,
                None => return,
            },
            _ = heartbeat.tick() => (node_channel.clone(), heartbeat_bytes.clone()),
        };
        if conn.is_none() {
            match client
                .get_connection_manager_with_config(config.clone())
                .await
            {
                Ok(manager) => conn = Some(manager),
                Err(error) => {
                    tracing::debug!(%error, "relay publisher cannot reach Redis");
                    note_dropped_publish(&relay.inner.publish_gap);
                    continue;
                }
            }
        }
        let Some(manager) = conn.as_mut() else {
            continue;
        };
        let published: redis::RedisResult<i64> = manager.publish(&channel, bytes).await;
        relay.published(published);
    }
}

/// Keeps a subscription to every loaded room's channel and to the node channel, delivering
/// envelopes to rooms; reconnects with backoff and has rooms resync after every reconnect.
pub(super) async fn subscribe_loop(
    relay: Relay,
    client: redis::Client,
    mut control: mpsc::UnboundedReceiver<Control>,
    settings: RelaySettings,
    shutdown: CancellationToken,
) {
    let mut backoff = Duration::from_millis(50);
    let mut first_connection = true;
    let mut nodes = NodeWatch::default();
    loop {
        let pubsub = tokio::select! {
            () = shutdown.cancelled() => return,
            pubsub = tokio::time::timeout(CONNECT_TIMEOUT, client.get_async_pubsub()) => pubsub,
        };
        let (mut sink, mut stream) = match pubsub {
            Ok(Ok(pubsub)) => pubsub.split(),
            Ok(Err(_)) | Err(_) => {
                // While Redis is away, subscriptions are only recorded (the map is the truth);
                // acknowledge them so rooms do not wait.
                let wait = tokio::time::sleep(backoff);
                tokio::pin!(wait);
                loop {
                    tokio::select! {
                        () = shutdown.cancelled() => return,
                        () = &mut wait => break,
                        request = control.recv() => match request {
                            Some(Control::Subscribe(_, ack)) => { let _ = ack.send(()); }
                            Some(Control::Unsubscribe(_)) => {}
                            None => return,
                        },
                    }
                }
                backoff = (backoff * 2).min(MAX_BACKOFF);
                continue;
            }
        };
        let mut channels = relay.room_channels();
        channels.push(relay.node_channel());
        if let Err(error) = sink.subscribe(&channels).await {
            tracing::warn!(%error, "relay could not subscribe; reconnecting");
            continue;
        }
        backoff = Duration::from_millis(50);
        relay.inner.connected.store(true, Ordering::Relaxed);
        nodes.reset_after_gap();
        if first_connection {
            tracing::info!("relay connected to Redis");
        } else {
            tracing::info!("relay reconnected to Redis; resynchronising rooms");
            metrics::get().relay_reconnects.increment(1);
            relay.tell_all_rooms(&|| Delivery::Resync);
        }
        first_connection = false;

        let mut check = tokio::time::interval(settings.heartbeat_interval);
        check.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                message = stream.next() => {
                    let Some(message) = message else { break };
                    deliver(&relay, &mut nodes, message.get_channel_name(), message.get_payload_bytes());
                }
                request = control.recv() => {
                    let outcome = match request {
                        Some(Control::Subscribe(channel, ack)) => {
                            let outcome = sink.subscribe(&channel).await;
                            let _ = ack.send(());
                            outcome
                        }
                        Some(Control::Unsubscribe(channel)) => sink.unsubscribe(&channel).await,
                        None => return,
                    };
                    if outcome.is_err() {
                        break;
                    }
                }
                _ = check.tick() => {
                    for node in nodes.dead(settings.node_timeout) {
                        tracing::info!(%node, "node stopped heartbeating; removing its clients' presence");
                        relay.tell_all_rooms(&|| Delivery::NodeGone(node));
                    }
                }
            }
        }
        relay.inner.connected.store(false, Ordering::Relaxed);
        tracing::warn!("relay lost its Redis connection; serving local clients and reconnecting");
    }
}

pub(super) fn deliver(relay: &Relay, nodes: &mut NodeWatch, channel: &str, payload: &[u8]) {
    let envelope = match Envelope::decode(payload) {
        Ok(envelope) => envelope,
        Err(error) => {
            tracing::warn!(%channel, %error, "ignoring an undecodable relay message");
            return;
        }
    };
    if envelope.origin == relay.node() {
        return;
    }
    let metrics = metrics::get();
    metrics.relay_received.increment(1);
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |since| since.as_millis() as u64);
    metrics
        .relay_lag
        .record(now_ms.saturating_sub(envelope.sent_at_ms) as f64 / 1000.0);
    nodes.seen(envelope.origin);
    if matches!(envelope.body, Body::Heartbeat) {
        return;
    }
    let Some(doc) = relay.doc_of_channel(channel) else {
        return;
    };
    relay.tell_room(
        doc,
        Delivery::Envelope {
            origin: envelope.origin,
            body: envelope.body,
        },
    );
}

/// When each other node was last heard from.
#[derive(Default)]
pub(super) struct NodeWatch {
    last_seen: HashMap<NodeId, Instant>,
}

impl NodeWatch {
    pub(super) fn seen(&mut self, node: NodeId) {
        self.last_seen.insert(node, Instant::now());
    }

    /// After our own outage we heard nothing from anyone; that says nothing about them.
    pub(super) fn reset_after_gap(&mut self) {
        let now = Instant::now();
        for seen in self.last_seen.values_mut() {
            *seen = now;
        }
    }

    pub(super) fn dead(&mut self, timeout: Duration) -> Vec<NodeId> {
        let now = Instant::now();
        let dead: Vec<NodeId> = self
            .last_seen
            .iter()
            .filter(|(_, seen)| now.duration_since(**seen) > timeout)
            .map(|(node, _)| *node)
            .collect();
        for node in &dead {
            self.last_seen.remove(node);
        }
        dead
    }
}

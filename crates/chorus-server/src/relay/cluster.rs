//! The relay on a Redis Cluster: sharded pub/sub (`SPUBLISH`/`SSUBSCRIBE`), so each room's
//! channel lives on the shard that owns its slot and the traffic spreads over the cluster.
//!
//! One RESP3 cluster connection publishes and subscribes; it reconnects and resubscribes by
//! itself. Messages sent during a gap are lost, so a repeated subscription confirmation for a
//! channel (the sign of a resubscription) makes its room resynchronise, as a reconnect does on a
//! single Redis.

use std::collections::HashSet;
use std::sync::atomic::Ordering;
use std::time::Duration;

use redis::cluster::ClusterClientBuilder;
use redis::cluster_async::ClusterConnection;
use redis::{PushInfo, PushKind, Value};
use tokio::sync::mpsc;
use tokio::time::MissedTickBehavior;
use tokio_util::sync::CancellationToken;

use super::Delivery;
use super::redis::{MAX_BACKOFF, NodeWatch, deliver};
use super::{Body, Control, Envelope, Relay, RelaySettings};
use crate::metrics;

/// Timeout of one cluster request.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(2);

/// Publishes, subscribes and delivers through a Redis Cluster until `shutdown`.
pub(super) async fn cluster_loop(
    relay: Relay,
    mut queue: mpsc::Receiver<(String, Vec<u8>)>,
    mut control: mpsc::UnboundedReceiver<Control>,
    settings: RelaySettings,
    shutdown: CancellationToken,
) {
    let (push_tx, mut pushes) = mpsc::unbounded_channel::<PushInfo>();
    let seeds: Vec<String> = settings
        .url
        .split(',')
        .map(str::trim)
        .map(str::to_owned)
        .collect();
    let client = match ClusterClientBuilder::new(seeds)
        .use_protocol(redis::ProtocolVersion::RESP3)
        .push_sender(push_tx)
        .connection_timeout(REQUEST_TIMEOUT)
        .response_timeout(REQUEST_TIMEOUT)
        .build()
    {
        Ok(client) => client,
        Err(error) => {
            tracing::error!(%error, "invalid Redis Cluster seed list; the relay is off");
            return;
        }
    };

    let mut conn = {
        let mut backoff = Duration::from_millis(50);
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                conn = client.get_async_connection() => match conn {
                    Ok(conn) => break conn,
                    Err(error) => tracing::debug!(%error, "Redis Cluster not reachable yet"),
                },
            }
            acknowledge_while_waiting(&mut control, backoff, &shutdown).await;
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
    };

    let mut confirmed: HashSet<String> = HashSet::new();
    let mut nodes = NodeWatch::default();
    let mut channels: Vec<String> = relay.room_channels();
    channels.push(relay.node_channel());
    for channel in &channels {
        let _ = conn.ssubscribe(channel).await;
    }
    relay.inner.connected.store(true, Ordering::Relaxed);
    tracing::info!("relay connected to Redis Cluster");

    let heartbeat_bytes = Envelope::new(relay.node(), Body::Heartbeat).encode();
    let node_channel = relay.node_channel();
    let mut heartbeat = tokio::time::interval(settings.heartbeat_interval);
    heartbeat.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            next = queue.recv() => {
                let Some((channel, bytes)) = next else { return };
                publish(&relay, &mut conn, &channel, bytes).await;
            }
            _ = heartbeat.tick() => {
                publish(&relay, &mut conn, &node_channel, heartbeat_bytes.clone()).await;
                for node in nodes.dead(settings.node_timeout) {
                    tracing::info!(%node, "node stopped heartbeating; removing its clients' presence");
                    relay.tell_all_rooms(&|| Delivery::NodeGone(node));
                }
            }
            request = control.recv() => match request {
                Some(Control::Subscribe(channel, ack)) => {
                    if let Err(error) = conn.ssubscribe(&channel).await {
                        tracing::warn!(%error, "sharded subscribe failed; the periodic resync covers the room");
                    }
                    let _ = ack.send(());
                }
                Some(Control::Unsubscribe(channel)) => {
                    confirmed.remove(&channel);
                    let _ = conn.sunsubscribe(&channel).await;
                }
                None => return,
            },
            push = pushes.recv() => {
                let Some(push) = push else { return };
                on_push(&relay, &mut nodes, &mut confirmed, push);
            }
        }
    }
}

async fn publish(relay: &Relay, conn: &mut ClusterConnection, channel: &str, bytes: Vec<u8>) {
    let published: redis::RedisResult<i64> = redis::cmd("SPUBLISH")
        .arg(channel)
        .arg(bytes)
        .query_async(conn)
        .await;
    relay.published(published);
}

fn on_push(relay: &Relay, nodes: &mut NodeWatch, confirmed: &mut HashSet<String>, push: PushInfo) {
    match push.kind {
        PushKind::SMessage | PushKind::Message => {
            if let [channel, payload, ..] = push.data.as_slice()
                && let (Some(channel), Some(payload)) = (text(channel), bytes(payload))
            {
                deliver(relay, nodes, &channel, payload);
            }
        }
        PushKind::SSubscribe => {
            relay.inner.connected.store(true, Ordering::Relaxed);
            let Some(channel) = push.data.first().and_then(text) else {
                return;
            };
            if !confirmed.insert(channel.clone()) {
                // Subscribed again: the connection to that shard was re-established.
                nodes.reset_after_gap();
                metrics::get().relay_reconnects.increment(1);
                if channel == relay.node_channel() {
                    relay.tell_all_rooms(&|| Delivery::Resync);
                } else if let Some(doc) = relay.doc_of_channel(&channel) {
                    relay.tell_room(doc, Delivery::Resync);
                }
            }
        }
        PushKind::Disconnection => {
            relay.inner.connected.store(false, Ordering::Relaxed);
            tracing::warn!("relay lost a Redis Cluster connection; it reconnects by itself");
        }
        _ => {}
    }
}

fn text(value: &Value) -> Option<String> {
    bytes(value).and_then(|b| String::from_utf8(b.to_vec()).ok())
}

fn bytes(value: &Value) -> Option<&[u8]> {
    match value {
        Value::BulkString(bytes) => Some(bytes),
        Value::SimpleString(s) => Some(s.as_bytes()),
        _ => None,
    }
}

/// While the cluster is unreachable, subscriptions are only recorded; acknowledge them so
/// rooms do not wait.
async fn acknowledge_while_waiting(
    control: &mut mpsc::UnboundedReceiver<Control>,
    wait: Duration,
    shutdown: &CancellationToken,
) {
    let sleep = tokio::time::sleep(wait);
    tokio::pin!(sleep);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = &mut sleep => return,
            request = control.recv() => match request {
                Some(Control::Subscribe(_, ack)) => { let _ = ack.send(()); }
                Some(Control::Unsubscribe(_)) => {}
                None => return,
            },
        }
    }
}

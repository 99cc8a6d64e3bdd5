//! One visit of a soak: a client joins a room, types and sends presence for a while, and leaves.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::{Context, bail};
use chorus_protocol::AwarenessEntry;
use chorus_protocol::awareness::encode_entries;
use chorus_protocol::message::{SYNC_STEP1, SYNC_STEP2, SYNC_UPDATE, awareness_frame, sync_frame};
use tokio::time::{Instant, MissedTickBehavior};
use yrs::{Doc, Text, Transact};

use crate::client::EMPTY_UPDATE;
use crate::incoming::{self, Incoming};
use crate::user::add;
use crate::wire::{self, Conn, Drained};

/// How long a leaving client waits for its close frame to go out.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(2);

/// What the visitors of a soak count, read live by the sampler.
#[derive(Debug, Default)]
pub struct VisitCounters {
    /// Visits that began connecting.
    pub started: AtomicU64,
    /// Visits that completed the handshake.
    pub synced: AtomicU64,
    /// Visits whose connect or handshake failed.
    pub failed: AtomicU64,
    /// Synced visits the server ended (close frame, reset) before the client left.
    pub dropped: AtomicU64,
    /// Visits that ran their whole time and left.
    pub completed: AtomicU64,
    /// Connections open now.
    pub open: AtomicU64,
    /// Document updates sent.
    pub updates_sent: AtomicU64,
    /// Presence states sent.
    pub presence_sent: AtomicU64,
}

/// What one visit does.
#[derive(Debug, Clone)]
pub struct Visit {
    /// The document's WebSocket URL.
    pub url: String,
    /// When to leave.
    pub until: Instant,
    /// Updates per second it types (0: it does not type).
    pub rate: f64,
    /// Characters per update.
    pub update_chars: usize,
    /// Presence states per second (0: no presence).
    pub presence_rate: f64,
    /// Connect and handshake limit.
    pub handshake_timeout: Duration,
}

/// Runs one visit; failures are counted, never returned, so the churn goes on.
pub async fn run(visit: Visit, counters: &VisitCounters) {
    add(&counters.started, 1);
    let connected = tokio::time::timeout(visit.handshake_timeout, connect(&visit.url)).await;
    let mut conn = match connected {
        Ok(Ok(conn)) => conn,
        Ok(Err(_)) | Err(_) => return add(&counters.failed, 1),
    };
    add(&counters.synced, 1);
    add(&counters.open, 1);
    match stay(&visit, &mut conn, counters).await {
        Ok(()) => add(&counters.completed, 1),
        Err(_) => add(&counters.dropped, 1),
    }
    let _ = tokio::time::timeout(CLOSE_TIMEOUT, conn.close()).await;
    counters.open.fetch_sub(1, Ordering::Relaxed);
}

/// Connects as an empty client and completes the sync handshake.
async fn connect(url: &str) -> anyhow::Result<Conn> {
    let mut conn = Conn::connect(url, false).await?;
    wire::queue_binary(conn.out(), &sync_frame(SYNC_STEP1, &[0x00]));
    conn.flush().await?;
    let (mut got_step1, mut got_step2) = (false, false);
    while !(got_step1 && got_step2) {
        conn.read().await?;
        let drained = conn.drain(|message, out| {
            match incoming::parse(message.bytes, message.whole)? {
                Incoming::Step1(_) => {
                    wire::queue_binary(out, &sync_frame(SYNC_STEP2, EMPTY_UPDATE));
                    got_step1 = true;
                }
                Incoming::Step2(_) => got_step2 = true,
                _ => {}
            }
            Ok(())
        })?;
        if let Drained::Closed(code) = drained {
            bail!("closed during the handshake: code {code:?}");
        }
        conn.flush().await?;
    }
    Ok(conn)
}

/// Reads (answering pings) and sends updates and presence until `visit.until`.
async fn stay(visit: &Visit, conn: &mut Conn, counters: &VisitCounters) -> anyhow::Result<()> {
    // A fresh document with a fresh client id per visit, as a reloaded browser tab has: what it
    // types appends to the room's document, so documents grow visit after visit.
    let client = fastrand::u64(1..u64::from(u32::MAX));
    let doc = Doc::with_client_id(client);
    let text = doc.get_or_insert_text("t");
    let chunk: String = std::iter::repeat_n('s', visit.update_chars.max(1)).collect();
    let mut typing = interval(visit.rate);
    let mut presence = interval(visit.presence_rate);
    let mut clock = 0u32;
    let leave = tokio::time::sleep_until(visit.until);
    tokio::pin!(leave);
    loop {
        tokio::select! {
            () = &mut leave => return Ok(()),
            read = conn.read() => {
                read?;
                if let Drained::Closed(code) = conn.drain(|_, _| Ok(()))? {
                    bail!("the server closed the connection: code {code:?}");
                }
                conn.flush().await?;
            }
            _ = tick(&mut typing) => {
                let update = {
                    let mut txn = doc.transact_mut();
                    let len = text.len(&txn);
                    text.insert(&mut txn, len, &chunk);
                    txn.encode_update_v1()
                };
                wire::queue_binary(conn.out(), &sync_frame(SYNC_UPDATE, &update));
                conn.flush().await.context("sending an update")?;
                add(&counters.updates_sent, 1);
            }
            _ = tick(&mut presence) => {
                clock += 1;
                let at = fastrand::u32(0..10_000);
                let entry = AwarenessEntry {
                    client,
                    clock,
                    state: format!(r#"{{"user":{{"name":"soak-{client}"}},"cursor":{{"anchor":{at},"head":{at}}}}}"#).into(),
                };
                wire::queue_binary(conn.out(), &awareness_frame(&encode_entries([entry].iter())));
                conn.flush().await.context("sending presence")?;
                add(&counters.presence_sent, 1);
            }
        }
    }
}

/// An interval of `rate` per second starting at a random point of its first period, or none.
fn interval(rate: f64) -> Option<tokio::time::Interval> {
    if !rate.is_finite() || rate <= 0.0 {
        return None;
    }
    let period = Duration::from_secs_f64(1.0 / rate);
    let mut interval =
        tokio::time::interval_at(Instant::now() + period.mul_f64(fastrand::f64()), period);
    // A soak measures the server over time, not bursts: a late tick is not made up for.
    interval.set_missed_tick_behavior(MissedTickBehavior::Delay);
    Some(interval)
}

async fn tick(interval: &mut Option<tokio::time::Interval>) {
    match interval {
        Some(interval) => {
            interval.tick().await;
        }
        None => std::future::pending().await,
    }
}

//! Prometheus metrics, served at `/metrics`.
//!
//! The hot paths (every frame in and out) use counter handles registered once, so counting a
//! message is an atomic add, not a registry lookup.

use std::sync::OnceLock;
use std::time::Duration;

use metrics::{Counter, Gauge, Histogram, counter, gauge, histogram};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

/// The message kinds counted, by their first bytes on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Sync step 1.
    SyncStep1 = 0,
    /// Sync step 2.
    SyncStep2 = 1,
    /// Document update.
    Update = 2,
    /// Awareness update.
    Awareness = 3,
    /// Auth message.
    Auth = 4,
    /// Query awareness.
    QueryAwareness = 5,
    /// Anything else (refused).
    Other = 6,
}

const KIND_NAMES: [&str; 7] = [
    "sync_step1",
    "sync_step2",
    "update",
    "awareness",
    "auth",
    "query_awareness",
    "other",
];

impl Kind {
    /// The kind of an encoded frame.
    pub fn of(frame: &[u8]) -> Self {
        match frame {
            [0, 0, ..] => Kind::SyncStep1,
            [0, 1, ..] => Kind::SyncStep2,
            [0, 2, ..] => Kind::Update,
            [1, ..] => Kind::Awareness,
            [2, ..] => Kind::Auth,
            [3, ..] => Kind::QueryAwareness,
            _ => Kind::Other,
        }
    }
}

/// Pre-registered handles.
pub struct Metrics {
    messages_in: Vec<Counter>,
    messages_out: Vec<Counter>,
    bytes_in: Counter,
    bytes_out: Counter,
    /// Open WebSocket connections.
    pub connections: Gauge,
    /// Rooms in memory.
    pub rooms: Gauge,
    /// Connections closed for falling behind.
    pub slow_client_disconnects: Counter,
    /// Client updates (or parts) held until the clocks they follow arrived.
    pub updates_held: Counter,
    /// Snapshot writes, by duration.
    pub snapshot_duration: Histogram,
    /// Update-log appends, by duration: one per update when rooms are small and quiet, so
    /// registered once rather than looked up by name on every append.
    log_append_duration: Histogram,
    /// Updates carried by those appends.
    log_appended_updates: Counter,
    /// Failed store operations.
    pub store_errors: Counter,
    /// Envelopes published to other nodes.
    pub relay_published: Counter,
    /// Envelopes received from other nodes.
    pub relay_received: Counter,
    /// Time from publish on one node to receipt on another.
    pub relay_lag: Histogram,
    /// Times the relay re-established its Redis connection.
    pub relay_reconnects: Counter,
}

impl Metrics {
    fn register() -> Self {
        let per_kind = |direction: &'static str| {
            KIND_NAMES
                .iter()
                .map(|kind| counter!("chorus_messages_total", "direction" => direction, "kind" => *kind))
                .collect()
        };
        Self {
            messages_in: per_kind("in"),
            messages_out: per_kind("out"),
            bytes_in: counter!("chorus_message_bytes_total", "direction" => "in"),
            bytes_out: counter!("chorus_message_bytes_total", "direction" => "out"),
            connections: gauge!("chorus_connections"),
            rooms: gauge!("chorus_rooms"),
            slow_client_disconnects: counter!("chorus_slow_client_disconnects_total"),
            updates_held: counter!("chorus_updates_held_total"),
            snapshot_duration: histogram!("chorus_snapshot_duration_seconds"),
            log_append_duration: histogram!("chorus_log_append_duration_seconds"),
            log_appended_updates: counter!("chorus_log_appended_updates_total"),
            store_errors: counter!("chorus_store_errors_total"),
            relay_published: counter!("chorus_relay_published_total"),
            relay_received: counter!("chorus_relay_received_total"),
            relay_lag: histogram!("chorus_relay_lag_seconds"),
            relay_reconnects: counter!("chorus_relay_reconnects_total"),
        }
    }

    /// Counts an update refused by `rule` (a validator rule or a document limit), labelled so
    /// that an operator sees which rule fires.
    pub fn update_refused(&self, rule: &'static str) {
        counter!("chorus_update_refusals_total", "rule" => rule).increment(1);
    }

    /// Counts a frame received from a client.
    pub fn message_in(&self, frame: &[u8]) {
        self.messages_in[Kind::of(frame) as usize].increment(1);
        self.bytes_in.increment(frame.len() as u64);
    }

    /// Counts a frame sent to a client.
    pub fn message_out(&self, frame: &[u8]) {
        self.messages_out[Kind::of(frame) as usize].increment(1);
        self.bytes_out.increment(frame.len() as u64);
    }
}

/// Counts a closed connection by close code.
pub fn connection_closed(code: u16) {
    counter!("chorus_connections_closed_total", "code" => code.to_string()).increment(1);
}

/// Counts a connection refused before the upgrade, by reason.
pub fn connection_rejected(reason: &'static str) {
    counter!("chorus_connections_rejected_total", "reason" => reason).increment(1);
}

/// Records an update-log append: its duration and how many updates it carried.
pub fn log_appended(took: Duration, updates: usize) {
    let metrics = get();
    metrics.log_append_duration.record(took.as_secs_f64());
    metrics.log_appended_updates.increment(updates as u64);
}

/// Sets `chorus_tasks` to the tasks alive on the runtime this is called from (connections,
/// rooms, the upgrades in flight, timers and background work: everything spawned and not yet
/// finished), read when `/metrics` is scraped. A leak of tasks shows as a count that does not
/// come back once the clients leave.
pub fn sample_runtime() {
    if let Ok(runtime) = tokio::runtime::Handle::try_current() {
        gauge!("chorus_tasks").set(runtime.metrics().num_alive_tasks() as f64);
    }
}

/// Records how long a snapshot write took.
pub fn snapshot_written(took: Duration) {
    get().snapshot_duration.record(took.as_secs_f64());
}

static RECORDER: OnceLock<Option<PrometheusHandle>> = OnceLock::new();
static METRICS: OnceLock<Metrics> = OnceLock::new();

/// Installs the process-wide Prometheus recorder (once; later calls reuse it) and returns the
/// handle that renders `/metrics`, or `None` if another recorder was installed first.
pub fn install() -> Option<PrometheusHandle> {
    RECORDER
        .get_or_init(|| {
            let buckets = [
                0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
            ];
            PrometheusBuilder::new()
                .set_buckets(&buckets)
                .ok()?
                .install_recorder()
                .ok()
        })
        .clone()
}

/// The handles; registered against whatever recorder is installed at first use.
pub fn get() -> &'static Metrics {
    METRICS.get_or_init(|| {
        install();
        Metrics::register()
    })
}

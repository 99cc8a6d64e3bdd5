//! How every room behaves: its timings and what its clients may cost.

use std::time::Duration;

use crate::doc::DocLimits;
use crate::held::HeldLimits;

/// How often the room looks for awareness states that were not renewed in time.
pub const PRESENCE_SWEEP_EVERY: Duration = Duration::from_secs(5);

/// Awareness changes are gathered this long and sent as one message: in a room of N people
/// moving cursors, one send per change per peer would cost N² messages; one batch per tick costs
/// N per tick, for at most this much added cursor latency.
pub const PRESENCE_BATCH: Duration = Duration::from_millis(40);

/// A document changing without pause is still announced this many debounce periods after its
/// first unannounced change.
pub const CHANGE_MAX_DELAY_FACTOR: u32 = 5;

/// Timing settings and limits of every room.
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
    /// Quiet time after a change before listeners hear of it; a document edited without pause
    /// is announced at least every [`CHANGE_MAX_DELAY_FACTOR`] times this.
    pub change_debounce: Duration,
    /// What clients may make one document cost.
    pub doc_limits: DocLimits,
    /// What one connection may keep waiting for missing clocks.
    pub held_limits: HeldLimits,
}

/// Who else a room talks to, which decides what it emits.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Surroundings {
    /// Other nodes hold the room too (`--redis-url`): publish to them, resync with them.
    pub shared: bool,
    /// Someone listens for changes (webhooks, the change hook): announce them.
    pub listened: bool,
}

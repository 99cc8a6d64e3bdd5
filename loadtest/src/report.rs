//! What the commands report: serializable types (for `--json`) and their text rendering.

use std::fmt::Write as _;

use hdrhistogram::Histogram;
use serde::Serialize;

use crate::cli::Protocol;

/// Percentiles of a latency histogram recorded in microseconds, given in milliseconds.
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq)]
pub struct LatencySummary {
    /// Samples.
    pub count: u64,
    /// Mean.
    pub mean_ms: f64,
    /// Median.
    pub p50_ms: f64,
    /// 90th percentile.
    pub p90_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// 99.9th percentile.
    pub p999_ms: f64,
    /// Largest sample.
    pub max_ms: f64,
}

fn ms(micros: u64) -> f64 {
    micros as f64 / 1000.0
}

impl LatencySummary {
    /// Summarises `histogram` (microseconds); all zeros when it is empty.
    pub fn from_histogram(histogram: &Histogram<u64>) -> Self {
        if histogram.is_empty() {
            return Self::default();
        }
        Self {
            count: histogram.len(),
            mean_ms: histogram.mean() / 1000.0,
            p50_ms: ms(histogram.value_at_quantile(0.50)),
            p90_ms: ms(histogram.value_at_quantile(0.90)),
            p99_ms: ms(histogram.value_at_quantile(0.99)),
            p999_ms: ms(histogram.value_at_quantile(0.999)),
            max_ms: ms(histogram.max()),
        }
    }

    /// `p50 … max` on one line.
    pub fn line(&self) -> String {
        if self.count == 0 {
            return "no samples".to_owned();
        }
        format!(
            "p50 {:.2} ms  p90 {:.2}  p99 {:.2}  p99.9 {:.2}  max {:.2}  (n={})",
            self.p50_ms, self.p90_ms, self.p99_ms, self.p999_ms, self.max_ms, self.count
        )
    }
}

/// The settings a run used.
#[derive(Debug, Clone, Serialize)]
pub struct RunSettings {
    /// Server endpoints.
    pub urls: Vec<String>,
    /// The protocol the users spoke.
    pub protocol: Protocol,
    /// Rooms.
    pub rooms: usize,
    /// Users per room.
    pub users_per_room: usize,
    /// Typists per room.
    pub typists_per_room: usize,
    /// Typing ticks per second per typist.
    pub rate: f64,
    /// Updates per typing tick, sent in one write.
    pub burst: u32,
    /// Presence users per room.
    pub presence_users_per_room: usize,
    /// Presence updates per second per presence user.
    pub presence_rate: f64,
    /// Warm-up, seconds.
    pub warmup_s: f64,
    /// Measured duration, seconds.
    pub duration_s: f64,
    /// Document name prefix.
    pub doc_prefix: String,
    /// Whether documents were verified.
    pub verify: bool,
}

/// Connection figures.
#[derive(Debug, Clone, Serialize)]
pub struct ConnectionReport {
    /// Connections attempted.
    pub attempted: u64,
    /// Connections that completed the handshake.
    pub synced: u64,
    /// Connections that failed to connect or sync.
    pub failed: u64,
    /// Synced connections that ended before the run did.
    pub disconnected: u64,
    /// TCP connect to the server's step 2.
    pub handshake_ms: LatencySummary,
    /// A few of the errors, for diagnosis.
    pub errors: Vec<String>,
}

/// Document update delivery.
#[derive(Debug, Clone, Serialize)]
pub struct UpdateReport {
    /// Updates the typists sent (warm-up included).
    pub sent: u64,
    /// Deliveries expected: each update to every other synced user of its room.
    pub expected: u64,
    /// First deliveries received.
    pub delivered: u64,
    /// Deliveries per second of updates sent in the measured window.
    pub deliveries_per_sec: f64,
    /// Expected deliveries that never arrived.
    pub lost: u64,
    /// Deliveries beyond the first of the same update to the same user.
    pub duplicated: u64,
    /// Updates sent back to their own sender.
    pub echoed: u64,
    /// Updates that match no typist's log.
    pub unknown: u64,
    /// First deliveries that arrived inside another sent update (a server merged a burst): a
    /// burst of N merged into one counts N − 1. Counted in `delivered` as well, with the merged
    /// update's receive time.
    pub merged: u64,
    /// Delivery latency of updates sent in the measured window.
    pub latency_ms: LatencySummary,
    /// The cross-node subset (several URLs only).
    pub cross_node_latency_ms: Option<LatencySummary>,
}

/// Acknowledgements (Hocuspocus sync statuses) of the typists' updates. Chorus sends
/// `SyncStatus(1)` once an update is durable under its `--fsync` policy; `@hocuspocus/server`
/// once it is applied in memory.
#[derive(Debug, Clone, Serialize)]
pub struct AckReport {
    /// Statuses expected: one per update sent.
    pub expected: u64,
    /// Statuses received for updates (applied or refused).
    pub received: u64,
    /// Of those, refusals (`SyncStatus(0)`).
    pub refused: u64,
    /// Statuses with no update left to answer (a server that acknowledges more than it got).
    pub unmatched: u64,
    /// Updates still unanswered when their users stopped.
    pub pending: u64,
    /// From an update's send to its `SyncStatus(1)`, for updates sent in the measured window.
    pub latency_ms: LatencySummary,
}

/// Presence delivery.
#[derive(Debug, Clone, Serialize)]
pub struct PresenceReport {
    /// Presence states sent.
    pub sent: u64,
    /// Deliveries expected if the server forwards every state (it may coalesce).
    pub expected: u64,
    /// States received newer than the last seen from their sender.
    pub delivered: u64,
    /// Deliveries per second of states sent in the measured window.
    pub deliveries_per_sec: f64,
    /// States received that were not newer than the last one seen.
    pub stale: u64,
    /// States sent back to their own sender.
    pub echoed: u64,
    /// States from clients nobody in the run sent.
    pub unknown: u64,
    /// (receiver, sender) pairs where the receiver never got the sender's final state.
    pub final_state_missing: u64,
    /// Delivery latency of states sent in the measured window.
    pub latency_ms: LatencySummary,
}

/// The generator's own health: a saturated generator measures itself, not the server.
#[derive(Debug, Clone, Serialize)]
pub struct GeneratorReport {
    /// CPU used during the measured window, percent of one core.
    pub cpu_percent: Option<f64>,
    /// Its CPU time in the measured window divided by the deliveries (updates and presence)
    /// of that window, µs: comparable with the servers' figure, and what a lighter generator
    /// lowers.
    pub cpu_us_per_delivery: Option<f64>,
    /// Cores available to it.
    pub cores: usize,
    /// CPU near the cores' capacity: latency figures include the generator's own delay.
    pub saturated: bool,
    /// Send ticks fired late (p99 above 20 ms): the generator, or something else on its
    /// machine, held it up, so the offered load came in bursts.
    pub ticks_late: bool,
    /// How late typing and presence ticks fired.
    pub schedule_lag_ms: LatencySummary,
    /// Resident memory at the end, KiB.
    pub rss_kib: Option<u64>,
}

/// A server process sampled during the run.
#[derive(Debug, Clone, Serialize)]
pub struct ServerReport {
    /// Its pid.
    pub pid: u32,
    /// CPU used during the measured window, percent of one core.
    pub cpu_percent: Option<f64>,
    /// Its CPU time in the measured window divided by the deliveries of that window, µs.
    pub cpu_us_per_delivery: Option<f64>,
    /// Resident memory before connecting, KiB.
    pub rss_kib_before: Option<u64>,
    /// Resident memory at the end of the load, KiB.
    pub rss_kib_after: Option<u64>,
    /// Peak resident memory since the process started (`VmHWM`), KiB.
    pub peak_rss_kib: Option<u64>,
}

/// Outcome of `--verify`.
#[derive(Debug, Clone, Serialize)]
pub struct VerifyReport {
    /// Everything converged and every update arrived exactly once.
    pub ok: bool,
    /// Rooms compared.
    pub rooms_checked: usize,
    /// Rooms whose users' documents differ.
    pub rooms_diverged: usize,
    /// What went wrong, one line each (capped).
    pub problems: Vec<String>,
}

/// Traffic.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct ByteReport {
    /// WebSocket payload bytes sent by all users.
    pub sent: u64,
    /// WebSocket payload bytes received by all users.
    pub received: u64,
}

/// The report of one `run`.
#[derive(Debug, Clone, Serialize)]
pub struct RunReport {
    /// Settings used.
    pub settings: RunSettings,
    /// Connections.
    pub connections: ConnectionReport,
    /// Document updates.
    pub updates: UpdateReport,
    /// Acknowledgements, with `--protocol hocuspocus`.
    pub acks: Option<AckReport>,
    /// Presence, when enabled.
    pub presence: Option<PresenceReport>,
    /// Traffic.
    pub bytes: ByteReport,
    /// Frames that did not decode, or updates yrs refused.
    pub malformed: u64,
    /// Permission-denied messages received.
    pub denied: u64,
    /// All expected deliveries arrived before the drain timeout.
    pub drain_complete: bool,
    /// Time spent draining, ms.
    pub drain_ms: f64,
    /// Generator health.
    pub generator: GeneratorReport,
    /// Sampled servers.
    pub servers: Vec<ServerReport>,
    /// Verification, with `--verify`.
    pub verify: Option<VerifyReport>,
    /// Where the chart was written.
    pub chart: Option<String>,
}

/// `12.3 MiB` or `?`.
pub fn kib(v: Option<u64>) -> String {
    v.map_or_else(
        || "?".to_owned(),
        |v| format!("{:.1} MiB", v as f64 / 1024.0),
    )
}

fn size(bytes: u64) -> String {
    if bytes < 1 << 20 {
        format!("{:.1} KiB", bytes as f64 / 1024.0)
    } else {
        format!("{:.1} MiB", bytes as f64 / 1048576.0)
    }
}

/// CPU time per delivery in µs, from a CPU share (percent of one core) over `window_s` seconds
/// and the deliveries of that window; `None` without CPU figures or deliveries.
pub fn cpu_us_per_delivery(
    cpu_percent: Option<f64>,
    window_s: f64,
    deliveries: u64,
) -> Option<f64> {
    let cpu_s = cpu_percent? / 100.0 * window_s;
    (deliveries > 0).then(|| cpu_s * 1e6 / deliveries as f64)
}

fn micros(v: Option<f64>) -> String {
    v.map_or_else(|| "?".to_owned(), |v| format!("{v:.2} µs"))
}

fn pct(v: Option<f64>) -> String {
    v.map_or_else(|| "?".to_owned(), |v| format!("{v:.0}%"))
}

impl RunReport {
    /// Human-readable report.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let s = &self.settings;
        let c = &self.connections;
        let u = &self.updates;
        // Writing to a String cannot fail.
        let _ = writeln!(
            out,
            "run: {} rooms × {} users ({} typists at {}/s, {} presence users at {}/s), warm-up {}s, measured {}s, {} url(s), {}",
            s.rooms,
            s.users_per_room,
            s.typists_per_room,
            s.rate,
            s.presence_users_per_room,
            s.presence_rate,
            s.warmup_s,
            s.duration_s,
            s.urls.len(),
            match s.protocol {
                Protocol::YWebsocket => "y-websocket",
                Protocol::Hocuspocus => "hocuspocus",
            }
        );
        let _ = writeln!(
            out,
            "connections: {} attempted, {} synced, {} failed, {} dropped during the run",
            c.attempted, c.synced, c.failed, c.disconnected
        );
        let _ = writeln!(out, "handshake:   {}", c.handshake_ms.line());
        for error in &c.errors {
            let _ = writeln!(out, "  error: {error}");
        }
        let _ = writeln!(
            out,
            "updates:     {} sent, {} of {} deliveries, {:.0} deliveries/s, lost {}, duplicated {}, echoed {}, unknown {}, merged {}",
            u.sent,
            u.delivered,
            u.expected,
            u.deliveries_per_sec,
            u.lost,
            u.duplicated,
            u.echoed,
            u.unknown,
            u.merged
        );
        let _ = writeln!(out, "latency:     {}", u.latency_ms.line());
        if let Some(cross) = &u.cross_node_latency_ms {
            let _ = writeln!(out, "cross-node:  {}", cross.line());
        }
        if let Some(a) = &self.acks {
            let _ = writeln!(
                out,
                "acks:        {} of {} updates answered, refused {}, unmatched {}, pending at the end {}",
                a.received, a.expected, a.refused, a.unmatched, a.pending
            );
            let _ = writeln!(out, "ack latency: {}", a.latency_ms.line());
        }
        if let Some(p) = &self.presence {
            let _ = writeln!(
                out,
                "presence:    {} sent, {} of {} deliveries, {:.0}/s, stale {}, echoed {}, final state missing {}",
                p.sent,
                p.delivered,
                p.expected,
                p.deliveries_per_sec,
                p.stale,
                p.echoed,
                p.final_state_missing
            );
            let _ = writeln!(out, "presence latency: {}", p.latency_ms.line());
        }
        let _ = writeln!(
            out,
            "bytes:       {} sent, {} received; malformed {}, denied {}; drain {} in {:.0} ms",
            size(self.bytes.sent),
            size(self.bytes.received),
            self.malformed,
            self.denied,
            if self.drain_complete {
                "complete"
            } else {
                "TIMED OUT"
            },
            self.drain_ms
        );
        let g = &self.generator;
        let _ = writeln!(
            out,
            "generator:   cpu {} of one core ({} cores), {} per delivery, tick lag p99 {:.2} ms max {:.2} ms, rss {}{}",
            pct(g.cpu_percent),
            g.cores,
            micros(g.cpu_us_per_delivery),
            g.schedule_lag_ms.p99_ms,
            g.schedule_lag_ms.max_ms,
            kib(g.rss_kib),
            match (g.saturated, g.ticks_late) {
                (true, _) => "  << SATURATED: latency figures include generator delay",
                (false, true) => "  << ticks late: the machine is busy, load came in bursts",
                (false, false) => "",
            }
        );
        for server in &self.servers {
            let _ = writeln!(
                out,
                "server {}: cpu {} of one core, {} per delivery, rss {} -> {}, peak {}",
                server.pid,
                pct(server.cpu_percent),
                micros(server.cpu_us_per_delivery),
                kib(server.rss_kib_before),
                kib(server.rss_kib_after),
                kib(server.peak_rss_kib)
            );
        }
        if let Some(v) = &self.verify {
            let _ = writeln!(
                out,
                "verify:      {} ({} rooms checked, {} diverged)",
                if v.ok { "OK" } else { "FAILED" },
                v.rooms_checked,
                v.rooms_diverged
            );
            for problem in &v.problems {
                let _ = writeln!(out, "  {problem}");
            }
        }
        if let Some(chart) = &self.chart {
            let _ = writeln!(out, "chart:       {chart}");
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::recorder::micros_histogram;

    #[test]
    fn summarises_in_milliseconds() {
        let mut histogram = micros_histogram(3);
        for micros in 1..=1000 {
            histogram.saturating_record(micros * 10);
        }
        let summary = LatencySummary::from_histogram(&histogram);
        assert_eq!(summary.count, 1000);
        assert!((summary.p50_ms - 5.0).abs() < 0.01, "{summary:?}");
        assert!((summary.p99_ms - 9.9).abs() < 0.01, "{summary:?}");
        assert!((summary.max_ms - 10.0).abs() < 0.01, "{summary:?}");
        assert_eq!(
            LatencySummary::from_histogram(&micros_histogram(3)).count,
            0
        );
    }

    #[test]
    fn cpu_per_delivery_is_cpu_time_over_deliveries() {
        // Half a core for 10 s is 5 s of CPU; over 1,000,000 deliveries that is 5 µs each.
        let us = cpu_us_per_delivery(Some(50.0), 10.0, 1_000_000).expect("a figure");
        assert!((us - 5.0).abs() < 1e-9, "{us}");
        assert_eq!(cpu_us_per_delivery(Some(50.0), 10.0, 0), None);
        assert_eq!(cpu_us_per_delivery(None, 10.0, 5), None);
    }
}

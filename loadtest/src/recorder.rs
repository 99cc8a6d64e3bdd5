//! Latency histograms (HdrHistogram, microseconds): overall for the measured window, split by
//! same-node and cross-node delivery, and one per second of load for the chart; and the same
//! for acknowledgements (Hocuspocus sync statuses).
//!
//! Users buffer their samples and hand them over in batches ([`SampleBuffer`]), so the shared
//! recorder's lock is taken a few hundred times a second rather than once per delivery.

use std::sync::{Mutex, PoisonError};

use hdrhistogram::Histogram;

use crate::report::LatencySummary;

/// Largest latency tracked: anything slower is recorded as this (and is a failure anyway).
const MAX_MICROS: u64 = 120_000_000;

/// Samples a user buffers before taking the recorder's lock.
pub const SAMPLE_BATCH: usize = 256;

/// A new histogram of microseconds with `sigfig` significant digits.
pub fn micros_histogram(sigfig: u8) -> Histogram<u64> {
    // The bounds and precision are constants hdrhistogram accepts (low ≥ 1, high ≥ 2·low,
    // sigfig ≤ 5), so this cannot fail.
    Histogram::new_with_bounds(1, MAX_MICROS, sigfig).expect("valid histogram bounds")
}

/// The time frame of the load, in nanoseconds since the run's epoch.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Window {
    /// Typing and presence start.
    pub load_start_ns: u64,
    /// Warm-up ends; samples sent from here on count.
    pub measure_start_ns: u64,
    /// Samples sent from here on no longer count.
    pub measure_end_ns: u64,
}

impl Window {
    /// True when something sent at `sent_ns` belongs to the measurement.
    pub fn measures(&self, sent_ns: u64) -> bool {
        (self.measure_start_ns..self.measure_end_ns).contains(&sent_ns)
    }
}

/// One delivery: when it was sent and received, and whether it crossed nodes.
#[derive(Debug, Clone, Copy)]
pub struct Sample {
    /// Send time, nanoseconds since the epoch.
    pub sent_ns: u64,
    /// Receive time, nanoseconds since the epoch.
    pub received_ns: u64,
    /// Sender and receiver are connected to different server URLs.
    pub cross_node: bool,
}

impl Sample {
    fn micros(&self) -> u64 {
        (self.received_ns.saturating_sub(self.sent_ns) / 1000).max(1)
    }
}

/// Latency of one kind of delivery.
#[derive(Debug)]
pub struct LatencySeries {
    /// Deliveries sent inside the measurement window.
    pub overall: Histogram<u64>,
    /// The subset of `overall` that crossed nodes.
    pub cross_node: Histogram<u64>,
    /// Every delivery, by the second (since load start) it was sent in.
    pub per_second: Vec<Histogram<u64>>,
}

impl Default for LatencySeries {
    fn default() -> Self {
        Self {
            overall: micros_histogram(3),
            cross_node: micros_histogram(3),
            per_second: Vec::new(),
        }
    }
}

impl LatencySeries {
    fn record(&mut self, window: &Window, sample: &Sample) {
        let micros = sample.micros();
        if window.measures(sample.sent_ns) {
            self.overall.saturating_record(micros);
            if sample.cross_node {
                self.cross_node.saturating_record(micros);
            }
        }
        let second = (sample.sent_ns.saturating_sub(window.load_start_ns) / 1_000_000_000) as usize;
        // Bound the series: a clock mix-up must not allocate without limit.
        if second < 24 * 3600 {
            while self.per_second.len() <= second {
                self.per_second.push(micros_histogram(2));
            }
            self.per_second[second].saturating_record(micros);
        }
    }

    /// Percentiles of the measured window.
    pub fn summary(&self) -> LatencySummary {
        LatencySummary::from_histogram(&self.overall)
    }
}

/// The two kinds of delivery a run measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Document updates (y-sync update messages).
    Update,
    /// Presence (awareness) states.
    Presence,
    /// Hocuspocus sync statuses: from an update's send to the status that answers it.
    Ack,
}

/// Everything the users of a run measure, behind one lock.
#[derive(Debug, Default)]
pub struct Recorder {
    /// The load's time frame; samples arrive only after it is set.
    pub window: Window,
    /// Document update latency.
    pub updates: LatencySeries,
    /// Presence latency.
    pub presence: LatencySeries,
    /// Ack latency (Hocuspocus only).
    pub acks: LatencySeries,
}

impl Recorder {
    /// Records a batch of samples of one kind.
    pub fn record(&mut self, kind: Kind, samples: &[Sample]) {
        let window = self.window;
        let series = match kind {
            Kind::Update => &mut self.updates,
            Kind::Presence => &mut self.presence,
            Kind::Ack => &mut self.acks,
        };
        for sample in samples {
            series.record(&window, sample);
        }
    }
}

/// The shared recorder.
pub type SharedRecorder = Mutex<Recorder>;

/// Locks the recorder; a user task that panicked mid-batch leaves only a few samples
/// unrecorded, so poisoning is ignored.
pub fn lock(recorder: &SharedRecorder) -> std::sync::MutexGuard<'_, Recorder> {
    recorder.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A user's local batch of samples of one kind.
#[derive(Debug)]
pub struct SampleBuffer {
    kind: Kind,
    samples: Vec<Sample>,
}

impl SampleBuffer {
    /// An empty buffer for `kind`.
    pub fn new(kind: Kind) -> Self {
        Self {
            kind,
            samples: Vec::with_capacity(SAMPLE_BATCH),
        }
    }

    /// Adds a sample, flushing to `recorder` when the batch is full.
    pub fn push(&mut self, sample: Sample, recorder: &SharedRecorder) {
        self.samples.push(sample);
        if self.samples.len() >= SAMPLE_BATCH {
            self.flush(recorder);
        }
    }

    /// Hands every buffered sample to `recorder`.
    pub fn flush(&mut self, recorder: &SharedRecorder) {
        if !self.samples.is_empty() {
            lock(recorder).record(self.kind, &self.samples);
            self.samples.clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;

    #[test]
    fn only_the_measured_window_counts_but_every_second_is_charted() {
        let mut recorder = Recorder {
            window: Window {
                load_start_ns: 1000 * MS,
                measure_start_ns: 2000 * MS,
                measure_end_ns: 3000 * MS,
            },
            ..Recorder::default()
        };
        let sample = |sent_ms: u64, latency_ms: u64, cross_node| Sample {
            sent_ns: sent_ms * MS,
            received_ns: (sent_ms + latency_ms) * MS,
            cross_node,
        };
        recorder.record(
            Kind::Update,
            &[
                sample(1500, 100, false), // warm-up
                sample(2100, 5, false),
                sample(2900, 7, true),
                sample(3000, 900, false), // after the window
            ],
        );
        let summary = recorder.updates.summary();
        assert_eq!(summary.count, 2);
        assert!((summary.max_ms - 7.0).abs() < 0.01, "{summary:?}");
        assert_eq!(recorder.updates.cross_node.len(), 1);
        let per_second: Vec<u64> = recorder
            .updates
            .per_second
            .iter()
            .map(|h| h.len())
            .collect();
        assert_eq!(per_second, [1, 2, 1]);
        assert!(recorder.presence.overall.is_empty());
    }
}

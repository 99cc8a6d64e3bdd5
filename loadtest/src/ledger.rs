//! Who sent what, when, and who received it how often.
//!
//! Each sender (a typist's document updates, or a user's presence) appends `(clock, sent_at)` to
//! its own [`SentLog`] just before the frame goes out. Receivers look deliveries up there by the
//! `(client, clock)` they read from the frame (for an update, every clock its structs cover, so a
//! merged update finds each update it holds), which gives both the send time (for latency) and
//! the update's index in the sender's history (for exactly-once accounting in [`DeliveryTally`]).
//! The logs are written by one task and read by the rest of the room, so a read-mostly lock is
//! enough; nothing is shared between rooms.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::ops::Range;
use std::sync::{Arc, PoisonError, RwLock};

/// A map keyed by client id, hashed by [`IdHasher`].
pub type IdMap<V> = HashMap<u64, V, BuildHasherDefault<IdHasher>>;

/// Hashes client ids with one multiplication. Every delivery looks its sender up twice, and
/// SipHash's guard against chosen keys buys nothing for ids the run hands out itself; it showed
/// in the generator's profile.
#[derive(Debug, Default, Clone, Copy)]
pub struct IdHasher(u64);

impl Hasher for IdHasher {
    fn write(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.write_u64(u64::from(byte));
        }
    }

    fn write_u64(&mut self, n: u64) {
        // Fibonacci hashing: the multiplication spreads the bits upwards; the fold in `finish`
        // brings them back to the low bits the table indexes by.
        self.0 = (self.0 ^ n).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }

    fn finish(&self) -> u64 {
        self.0 ^ (self.0 >> 29)
    }
}

/// The send history of one sender, in clock order.
#[derive(Debug)]
pub struct SentLog {
    /// The sender's Yjs client id.
    pub client: u64,
    /// Index of the server URL the sender is connected to (for cross-node figures).
    pub node: usize,
    entries: RwLock<Vec<(u32, u64)>>,
}

impl SentLog {
    /// An empty log for `client`, connected to node `node`.
    pub fn new(client: u64, node: usize) -> Self {
        Self {
            client,
            node,
            entries: RwLock::new(Vec::new()),
        }
    }

    /// Records that the update or presence state starting at `clock` is sent at `sent_ns`
    /// (nanoseconds since the run's epoch). Clocks must increase from call to call.
    pub fn record(&self, clock: u32, sent_ns: u64) {
        // A panic elsewhere cannot leave a half-pushed Vec, so a poisoned lock is still usable.
        self.entries
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .push((clock, sent_ns));
    }

    /// Finds the entry sent at `clock`: its index in the history and its send time.
    pub fn find(&self, clock: u32) -> Option<(usize, u64)> {
        let entries = self.entries.read().unwrap_or_else(PoisonError::into_inner);
        let index = entries.binary_search_by_key(&clock, |&(c, _)| c).ok()?;
        Some((index, entries[index].1))
    }

    /// Calls `each` with the index and send time of every entry whose clock lies in `clocks`,
    /// in order: the updates a received update holds when it covers those clocks (a server
    /// may merge several of one sender's updates into one).
    pub fn for_each_in(&self, clocks: Range<u32>, mut each: impl FnMut(usize, u64)) {
        let entries = self.entries.read().unwrap_or_else(PoisonError::into_inner);
        let first = entries.partition_point(|&(clock, _)| clock < clocks.start);
        for (index, &(clock, sent_ns)) in entries.iter().enumerate().skip(first) {
            if clock >= clocks.end {
                break;
            }
            each(index, sent_ns);
        }
    }

    /// How many entries were sent.
    pub fn len(&self) -> usize {
        self.entries
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }

    /// True when nothing was sent.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The clock of the last entry sent.
    pub fn last_clock(&self) -> Option<u32> {
        self.entries
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .last()
            .map(|&(clock, _)| clock)
    }
}

/// The send logs of one room, fixed before the load starts so lookups need no lock on the map.
#[derive(Debug, Default)]
pub struct RoomLedger {
    /// Document updates, by typist client id.
    pub updates: IdMap<Arc<SentLog>>,
    /// Presence (awareness) states, by client id.
    pub presence: IdMap<Arc<SentLog>>,
}

/// How often one receiver got each update of each sender.
#[derive(Debug, Default)]
pub struct DeliveryTally {
    counts: IdMap<Vec<u8>>,
}

/// What a receiver is missing or got twice, against the senders' logs.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct LossCount {
    /// Updates sent but never delivered.
    pub lost: u64,
    /// Extra deliveries of updates already delivered.
    pub duplicated: u64,
}

impl std::ops::AddAssign for LossCount {
    fn add_assign(&mut self, other: Self) {
        self.lost += other.lost;
        self.duplicated += other.duplicated;
    }
}

impl DeliveryTally {
    /// Counts one delivery of the `index`-th update of `client`; true if it is the first one.
    pub fn record(&mut self, client: u64, index: usize) -> bool {
        let counts = self.counts.entry(client).or_default();
        if counts.len() <= index {
            counts.resize(index + 1, 0);
        }
        counts[index] = counts[index].saturating_add(1);
        counts[index] == 1
    }

    /// Compares the deliveries with what every other sender in `ledger` sent.
    pub fn loss(&self, ledger: &RoomLedger, own_client: u64) -> LossCount {
        let mut total = LossCount::default();
        for (client, log) in &ledger.updates {
            if *client == own_client {
                continue;
            }
            let sent = log.len();
            let counts = self.counts.get(client).map(Vec::as_slice).unwrap_or(&[]);
            for index in 0..sent {
                match counts.get(index).copied().unwrap_or(0) {
                    0 => total.lost += 1,
                    n => total.duplicated += u64::from(n - 1),
                }
            }
            // Deliveries beyond what the log holds cannot happen: lookups go through the log.
        }
        total
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ledger_with(client: u64, clocks: &[u32]) -> RoomLedger {
        let log = SentLog::new(client, 0);
        for (i, &clock) in clocks.iter().enumerate() {
            log.record(clock, i as u64 * 1000);
        }
        let mut ledger = RoomLedger::default();
        ledger.updates.insert(client, Arc::new(log));
        ledger
    }

    #[test]
    fn finds_entries_by_exact_clock() {
        let ledger = ledger_with(7, &[0, 3, 4, 9]);
        let log = &ledger.updates[&7];
        assert_eq!(log.find(4), Some((2, 2000)));
        assert_eq!(log.find(5), None);
        assert_eq!(log.last_clock(), Some(9));
    }

    #[test]
    fn finds_every_entry_a_clock_range_covers() {
        let ledger = ledger_with(7, &[0, 3, 4, 9]);
        let log = &ledger.updates[&7];
        let found = |clocks: Range<u32>| {
            let mut found = Vec::new();
            log.for_each_in(clocks, |index, sent| found.push((index, sent)));
            found
        };
        assert_eq!(found(0..9), [(0, 0), (1, 1000), (2, 2000)]);
        assert_eq!(found(3..4), [(1, 1000)]);
        assert_eq!(found(5..9), []);
        assert_eq!(found(4..100), [(2, 2000), (3, 3000)]);
    }

    #[test]
    fn counts_lost_and_duplicated_updates() {
        let ledger = ledger_with(7, &[0, 1, 2, 3]);
        let mut tally = DeliveryTally::default();
        assert!(tally.record(7, 0));
        assert!(!tally.record(7, 0));
        assert!(tally.record(7, 2));
        assert_eq!(
            tally.loss(&ledger, 1),
            LossCount {
                lost: 2,
                duplicated: 1
            }
        );
        // A sender's own updates are not expected back.
        assert_eq!(tally.loss(&ledger, 7), LossCount::default());
    }
}

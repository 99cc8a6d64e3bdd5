//! Client updates that arrived before the clocks they build on, waiting in the room.
//!
//! Yjs keeps such structs pending until what they follow arrives; so does the room, outside
//! yrs (which would integrate them behind a hole, see `chorus_protocol::update::split_update_v1`).
//! A typical case: a client that edited offline types the moment its socket reopens, and that
//! edit reaches the server just before the sync step 2 that carries the offline edits.
//!
//! Nothing held has been applied, so nothing held is logged, relayed or acknowledged: it
//! becomes an ordinary update once the document reaches the clocks it needs. What one
//! connection may keep waiting is bounded in count and bytes, since it costs memory the
//! client controls; a connection that goes away takes its held updates with it (its next
//! sync step 2 carries the same content again).

use std::collections::{HashMap, VecDeque};
use std::hash::Hash;

/// An update, or the part of one, that waits for the document to reach some clocks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeldUpdate {
    /// The Yjs v1 update.
    pub update: Vec<u8>,
    /// Client ids and the clock the document must reach for each before it can be applied.
    pub needs: Vec<(u64, u32)>,
}

impl HeldUpdate {
    /// Whether a document whose clock per client is `clock_of` has every clock this waits for.
    pub fn is_ready(&self, clock_of: &impl Fn(u64) -> u32) -> bool {
        self.needs
            .iter()
            .all(|&(client, clock)| clock_of(client) >= clock)
    }
}

/// How much one connection may keep waiting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeldLimits {
    /// Updates.
    pub max_updates: usize,
    /// Bytes of those updates together.
    pub max_bytes: usize,
}

/// A connection asked to hold more than [`HeldLimits`] allow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("more than {max_updates} updates or {max_bytes} bytes waiting for missing content")]
pub struct TooMuchHeld {
    /// The limit on updates.
    pub max_updates: usize,
    /// The limit on bytes.
    pub max_bytes: usize,
}

#[derive(Debug, Default)]
struct Queue {
    updates: VecDeque<HeldUpdate>,
    bytes: usize,
}

/// The updates every connection of a room keeps waiting, in arrival order per connection.
#[derive(Debug)]
pub struct Held<K> {
    limits: HeldLimits,
    queues: HashMap<K, Queue>,
}

impl<K: Copy + Eq + Hash> Held<K> {
    /// Nothing held yet.
    pub fn new(limits: HeldLimits) -> Self {
        Self {
            limits,
            queues: HashMap::new(),
        }
    }

    /// True when no connection has anything waiting (the room's fast path: no look at the
    /// document's clocks at all).
    pub fn is_empty(&self) -> bool {
        self.queues.is_empty()
    }

    /// Keeps `update` for `conn` until the document has what it needs.
    ///
    /// # Errors
    /// [`TooMuchHeld`] when that would take `conn` past the limits; nothing is kept then.
    pub fn hold(&mut self, conn: K, update: HeldUpdate) -> Result<(), TooMuchHeld> {
        let queue = self.queues.entry(conn).or_default();
        let bytes = queue.bytes.saturating_add(update.update.len());
        if queue.updates.len() >= self.limits.max_updates || bytes > self.limits.max_bytes {
            if queue.updates.is_empty() {
                self.queues.remove(&conn);
            }
            return Err(TooMuchHeld {
                max_updates: self.limits.max_updates,
                max_bytes: self.limits.max_bytes,
            });
        }
        queue.bytes = bytes;
        queue.updates.push_back(update);
        Ok(())
    }

    /// Takes out the first held update, in its connection's arrival order, that the document
    /// (whose clock per client is `clock_of`) can now take.
    pub fn take_ready(&mut self, clock_of: impl Fn(u64) -> u32) -> Option<(K, Vec<u8>)> {
        let (conn, index) = self.queues.iter().find_map(|(&conn, queue)| {
            let index = queue.updates.iter().position(|u| u.is_ready(&clock_of))?;
            Some((conn, index))
        })?;
        let queue = self.queues.get_mut(&conn)?;
        let update = queue.updates.remove(index)?;
        queue.bytes = queue.bytes.saturating_sub(update.update.len());
        if queue.updates.is_empty() {
            self.queues.remove(&conn);
        }
        Some((conn, update.update))
    }

    /// Forgets what `conn` kept waiting.
    pub fn forget(&mut self, conn: K) {
        self.queues.remove(&conn);
    }

    /// Updates held for `conn`.
    pub fn count(&self, conn: K) -> usize {
        self.queues.get(&conn).map_or(0, |q| q.updates.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn held(bytes: usize, needs: &[(u64, u32)]) -> HeldUpdate {
        HeldUpdate {
            update: vec![0; bytes],
            needs: needs.to_vec(),
        }
    }

    const LIMITS: HeldLimits = HeldLimits {
        max_updates: 3,
        max_bytes: 100,
    };

    #[test]
    fn an_update_comes_out_once_the_document_has_every_clock_it_needs() {
        let mut waiting = Held::new(LIMITS);
        waiting
            .hold(1, held(10, &[(7, 5), (8, 2)]))
            .expect("room for it");
        assert_eq!(waiting.take_ready(|c| if c == 7 { 5 } else { 1 }), None);
        let (conn, update) = waiting
            .take_ready(|c| if c == 7 { 5 } else { 2 })
            .expect("ready");
        assert_eq!((conn, update.len()), (1, 10));
        assert!(waiting.is_empty());
    }

    #[test]
    fn each_connections_updates_come_out_in_arrival_order() {
        let mut waiting = Held::new(LIMITS);
        waiting.hold(1, held(1, &[(7, 5)])).expect("first");
        waiting.hold(1, held(2, &[(7, 5)])).expect("second");
        let clock = |_| 5;
        assert_eq!(waiting.take_ready(clock).map(|(_, u)| u.len()), Some(1));
        assert_eq!(waiting.take_ready(clock).map(|(_, u)| u.len()), Some(2));
        assert_eq!(waiting.take_ready(clock), None);
    }

    #[test]
    fn a_connection_may_hold_only_so_much_and_others_are_not_affected() {
        let mut waiting = Held::new(LIMITS);
        for _ in 0..3 {
            waiting
                .hold(1, held(1, &[(7, 5)]))
                .expect("under the count");
        }
        assert!(waiting.hold(1, held(1, &[(7, 5)])).is_err(), "a fourth");
        assert!(
            waiting.hold(2, held(101, &[(7, 5)])).is_err(),
            "too many bytes"
        );
        waiting
            .hold(2, held(100, &[(7, 5)]))
            .expect("exactly the bytes");
        assert_eq!(waiting.count(1), 3);
        waiting.forget(1);
        assert_eq!(waiting.count(1), 0);
        assert_eq!(waiting.count(2), 1);
    }
}

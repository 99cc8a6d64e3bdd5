//! Attribution: every update the room accepts is counted against the identity of whoever sent
//! it (a connection's, or the HTTP API caller's). The room only counts, in memory: its driver
//! takes the tally ([`RoomCore::take_activity`](crate::RoomCore::take_activity)) once a minute
//! and stores it as the document's activity timeline, so the cost per update is one small scan
//! and two additions, and the stored timeline has one record per minute and identity however
//! fast people type.

use crate::ids::Identity;

/// What one identity did since the tally was last taken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Activity {
    /// Who.
    pub identity: Identity,
    /// Updates accepted.
    pub updates: u64,
    /// Bytes those updates added to the document (the applied deltas).
    pub bytes: u64,
}

/// Counts per identity. A room rarely has more than a handful of editors at once, so a vector
/// scanned from the most recent entry beats a hash map here.
#[derive(Debug, Default)]
pub struct Tally {
    entries: Vec<Activity>,
}

impl Tally {
    /// Counts one accepted update of `bytes` by `identity`.
    pub fn count(&mut self, identity: &Identity, bytes: usize) {
        let bytes = u64::try_from(bytes).unwrap_or(u64::MAX);
        if let Some(entry) = self
            .entries
            .iter_mut()
            .rev()
            .find(|e| &e.identity == identity)
        {
            entry.updates += 1;
            entry.bytes = entry.bytes.saturating_add(bytes);
            return;
        }
        self.entries.push(Activity {
            identity: identity.clone(),
            updates: 1,
            bytes,
        });
    }

    /// Whether anything was counted since the last [`Tally::take`].
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Everything counted so far; the tally starts again from zero.
    pub fn take(&mut self) -> Vec<Activity> {
        std::mem::take(&mut self.entries)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_per_identity_and_starts_over() {
        let (ada, bob) = (Identity::new("ada"), Identity::new("bob"));
        let mut tally = Tally::default();
        assert!(tally.is_empty());
        tally.count(&ada, 10);
        tally.count(&bob, 1);
        tally.count(&ada, 5);
        let taken = tally.take();
        assert_eq!(taken.len(), 2);
        assert_eq!((taken[0].updates, taken[0].bytes), (2, 15));
        assert_eq!((taken[1].updates, taken[1].bytes), (1, 1));
        assert!(tally.is_empty());
    }
}

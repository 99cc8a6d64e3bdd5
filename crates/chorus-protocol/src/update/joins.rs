//! Where one client's consecutive clocks are known to sit side by side in list order, so that
//! an item whose two origins are of one client can be compared with that order.
//!
//! An item is always integrated right of its left origin, whatever else a document holds. So
//! clock `k` of a client sits right of clock `k − 1` of the same client when both are in one
//! struct, or when the struct starting at `k` names `k − 1` as its left origin (typing does:
//! every keystroke continues the one before). A chain of such joins fixes the order of a
//! client's run of clocks in the document and in every replica of it.
//!
//! Against such a run two origins of one client are out of order when the right one sits left
//! of the left one (or is the same id), or when clocks of the run lie between them. yrs
//! integrates such an item differently depending on what the document already holds, so the
//! server and a replica built from its state can read the text in different orders (the room
//! fuzz target's findings 6 and 8). Such items are **counted, not refused**
//! ([`UpdateSummary::origins_out_of_order`](super::UpdateSummary::origins_out_of_order)):
//! typing writes neighbours, but Yjs' `UndoManager` does not. When it restores a deleted type,
//! `redoItem` (yjs `src/structs/Item.js`) finds each child's new origins by walking the *old*
//! list left and right to the first item already redone and following `redone` links until
//! the parent matches; a link may lead from an item right of the child to a copy made from one
//! left of it (an earlier undo re-inserted that content left of its original), and both walks
//! can end at the same copy: left origin = its last clock, right origin = its first
//! (`tests/honest/README.md`, from the honest-traffic generator's seed 112).

use std::collections::{BTreeMap, HashMap};

/// Clock ranges per client, merged when they touch: joined clocks (every clock of a range sits
/// right of the one before it; typing makes one range per cursor jump).
#[derive(Debug, Default, Clone)]
pub(super) struct ClockRanges {
    by_client: HashMap<u64, BTreeMap<u32, u32>>,
}

impl ClockRanges {
    /// Records that every clock in `[start, end)` of `client` sits right of the one before it.
    pub(super) fn add(&mut self, client: u64, start: u32, end: u32) {
        if start >= end {
            return;
        }
        let intervals = self.by_client.entry(client).or_default();
        // Typing: the range continues the last interval that starts at or before it. Ranges
        // held never touch, so no other interval can touch this one: grow it in place.
        let none_after = intervals
            .range(start.saturating_add(1)..=end)
            .next()
            .is_none();
        if none_after
            && let Some((_, last_end)) = intervals.range_mut(..=start).next_back()
            && *last_end >= start
        {
            *last_end = (*last_end).max(end);
            return;
        }
        let (mut start, mut end) = (start, end);
        // Merge with every interval that touches or overlaps [start, end).
        let touching: Vec<(u32, u32)> = intervals
            .range(..=end)
            .rev()
            .take_while(|&(_, &e)| e >= start)
            .map(|(&s, &e)| (s, e))
            .collect();
        for (s, e) in touching {
            intervals.remove(&s);
            start = start.min(s);
            end = end.max(e);
        }
        intervals.insert(start, end);
    }

    /// Takes in another set of joins.
    pub(super) fn extend(&mut self, other: ClockRanges) {
        for (client, intervals) in other.by_client {
            for (start, end) in intervals {
                self.add(client, start, end);
            }
        }
    }

    /// True when no range is held.
    pub(super) fn is_empty(&self) -> bool {
        self.by_client.is_empty()
    }

    /// Intervals held, for [`DocIndex::len`](super::DocIndex::len).
    pub(super) fn len(&self) -> usize {
        self.by_client.values().map(BTreeMap::len).sum()
    }

    /// The end of the interval holding `clock`, or `clock` itself if none does.
    fn reach(&self, client: u64, clock: u32) -> u32 {
        self.by_client
            .get(&client)
            .and_then(|intervals| intervals.range(..=clock).next_back())
            .filter(|&(_, &end)| end > clock)
            .map_or(clock, |(_, &end)| end)
    }
}

/// True when both origins, clocks `left` and `right` of one client, lie in one joined run and
/// are not neighbours in it (`right == left + 1`), by what `sources` know together, or are the
/// same clock.
pub(super) fn origins_contradict_run(
    sources: &[&ClockRanges],
    client: u64,
    left: u32,
    right: u32,
) -> bool {
    if left.checked_add(1) == Some(right) {
        return false;
    }
    // The clocks whose joins order the two: those after the lower one, up to the higher one.
    let (Some(from), Some(to)) = (
        left.min(right).checked_add(1),
        left.max(right).checked_add(1),
    ) else {
        return false;
    };
    let mut reached = from;
    while reached < to {
        let next = sources
            .iter()
            .map(|joins| joins.reach(client, reached))
            .max()
            .unwrap_or(reached);
        if next == reached {
            return false;
        }
        reached = next;
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intervals_merge_when_they_touch() {
        let mut joins = ClockRanges::default();
        joins.add(1, 1, 5);
        joins.add(1, 5, 8);
        joins.add(1, 10, 12);
        assert_eq!(joins.len(), 2);
        joins.add(1, 7, 11);
        assert_eq!(joins.len(), 1);
        assert_eq!(joins.reach(1, 3), 12);
        assert_eq!(joins.reach(1, 0), 0);
        assert_eq!(joins.reach(2, 3), 3);
    }

    proptest::proptest! {
        /// Growing an interval in place (typing) must leave what merging anew would.
        #[test]
        fn adding_in_place_merges_as_merging_anew(
            ranges in proptest::collection::vec((0u32..60, 1u32..8), 1..40)
        ) {
            let mut joins = ClockRanges::default();
            // Every clock joined, merged by brute force: ranges touch when one ends where the
            // next starts.
            let mut covered = [false; 70];
            for (start, len) in ranges {
                joins.add(1, start, start + len);
                for clock in start..start + len {
                    covered[clock as usize] = true;
                }
            }
            let mut expected = Vec::new();
            let mut clock = 0;
            while clock < covered.len() {
                if covered[clock] {
                    let first = clock;
                    while clock < covered.len() && covered[clock] {
                        clock += 1;
                    }
                    expected.push((first as u32, clock as u32));
                } else {
                    clock += 1;
                }
            }
            let held: Vec<(u32, u32)> = joins.by_client[&1].iter().map(|(&s, &e)| (s, e)).collect();
            proptest::prop_assert_eq!(held, expected);
        }
    }

    #[test]
    fn origins_inside_one_run_must_be_neighbours() {
        let mut doc = ClockRanges::default();
        doc.add(7, 1, 10); // clocks 0..10 of client 7 sit in clock order
        assert!(!origins_contradict_run(&[&doc], 7, 3, 4), "neighbours");
        assert!(
            origins_contradict_run(&[&doc], 7, 3, 6),
            "clocks 4 and 5 between"
        );
        assert!(
            origins_contradict_run(&[&doc], 7, 9, 2),
            "right origin left of left"
        );
        assert!(
            !origins_contradict_run(&[&doc], 7, 9, 12),
            "12 is not in the run"
        );
        // A run that two sources only know together.
        let mut update = ClockRanges::default();
        update.add(7, 10, 20);
        assert!(origins_contradict_run(&[&doc, &update], 7, 15, 2));
        assert!(!origins_contradict_run(&[&update], 7, 15, 2));
        assert!(
            !origins_contradict_run(&[&doc], 7, u32::MAX, 2),
            "no overflow"
        );
        assert!(origins_contradict_run(&[&doc], 7, 3, 3), "the same clock");
        // What Yjs' UndoManager writes (`tests/honest/`): a redo copy "ab" at 11..13 (12 joined
        // to 11 by the struct), and "c" with left origin 12 and right origin 11.
        let mut redo = ClockRanges::default();
        redo.add(1, 12, 13);
        assert!(origins_contradict_run(&[&redo], 1, 12, 11));
    }
}

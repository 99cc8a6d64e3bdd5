//! How deeply the items of one update sit inside shared types the same update creates.
//!
//! yrs deletes nested types and renders them as JSON recursively, so a chain of thousands of
//! maps inside maps overflows the stack later, on a delete or `to_json` (C2/C3 in the hostile
//! input study). An item names its parent type explicitly (by root name or by the id of the
//! type's item) or, when it has an origin, lives in the same type as that origin. Both can be
//! followed for structs seen earlier in this update; anything else (the existing document, a
//! struct later in the update) counts as the shallowest it could be: an unknown parent id as a
//! root-level type, an unknown origin as a root-level item. Depths are never over-estimated, so
//! the check never refuses a legitimate update.

use std::collections::{BTreeMap, HashMap};

use super::StructId;
use super::joins::ClockRanges;

/// Clock ranges of one client's structs that sit below the root level.
#[derive(Debug, Clone, Copy)]
pub(super) struct Span {
    start: u32,
    /// Exclusive.
    end: u32,
    /// Shared types between the root and these structs: 0 for an item in a root type.
    container: usize,
    /// The span is a single item whose content is a shared type.
    is_type: bool,
}

/// Spans per client, in clock order (a client has one struct section, whose clocks increase).
/// Only structs with a container depth of 1 or more are kept: everything else has the depth an
/// unknown reference is given anyway, so plain root-level edits allocate nothing here.
/// References this update cannot resolve are looked up in `known`, the document's
/// [`DocIndex`], when the caller keeps one.
#[derive(Debug, Default)]
pub(super) struct TypeDepths<'k> {
    spans: HashMap<u64, Vec<Span>>,
    known: Option<&'k DocIndex>,
}

/// What the validator remembers of one document between its updates: where nested content
/// sits (the type depth of every struct below the root level) and where its text holds
/// characters beyond the BMP.
///
/// [`validate_update_v1`](super::validate_update_v1) alone sees one update, so a chain of maps
/// sent 60 levels per update nests without bound (and yrs' recursive delete then overflows the
/// stack: C3 in the hostile input study), and origins of one update can contradict the runs
/// of earlier ones. A server that keeps one
/// `DocIndex` per document and validates every update with
/// [`validate_update_v1_in`](super::validate_update_v1_in), and [`DocIndex::absorb`]s what each
/// applied update adds, checks both against the whole document. Memory: one entry per run of
/// consecutive clocks of one client at one depth (typing merges into the run before it) and
/// nothing for root-level content, plus the joined runs of each client.
#[derive(Debug, Default, Clone)]
pub struct DocIndex {
    spans: HashMap<u64, BTreeMap<u32, Span>>,
    /// Runs of each client's clocks that sit in clock order in the document.
    joins: ClockRanges,
}

impl DocIndex {
    /// Entries it holds: runs of nested content and joined runs.
    pub fn len(&self) -> usize {
        self.spans.values().map(BTreeMap::len).sum::<usize>() + self.joins.len()
    }

    /// True when the document has nothing the checks need to remember.
    pub fn is_empty(&self) -> bool {
        self.spans.is_empty() && self.joins.is_empty()
    }

    /// Runs of each client's clocks that sit in clock order in the document.
    pub(super) fn joins(&self) -> &ClockRanges {
        &self.joins
    }

    /// Takes the joined runs of an accepted update.
    pub(super) fn absorb_joins(&mut self, joins: ClockRanges) {
        self.joins.extend(joins);
    }

    fn find(&self, id: StructId) -> Option<&Span> {
        let (_, span) = self.spans.get(&id.client)?.range(..=id.clock).next_back()?;
        (id.clock < span.end).then_some(span)
    }

    /// Takes the spans of an accepted update.
    pub(super) fn absorb_spans(&mut self, depths: HashMap<u64, Vec<Span>>) {
        for (client, spans) in depths {
            let index = self.spans.entry(client).or_default();
            for span in spans {
                let merged = index
                    .range_mut(..span.start)
                    .next_back()
                    .is_some_and(|(_, last)| {
                        let fits = !span.is_type
                            && !last.is_type
                            && last.end == span.start
                            && last.container == span.container;
                        if fits {
                            last.end = span.end;
                        }
                        fits
                    });
                if !merged {
                    index.insert(span.start, span);
                }
            }
        }
    }
}

impl<'k> TypeDepths<'k> {
    /// Depths for one update of a document whose earlier content `known` describes.
    pub(super) fn with_known(known: Option<&'k DocIndex>) -> Self {
        Self {
            spans: HashMap::new(),
            known,
        }
    }

    /// The spans recorded, for [`DocIndex::absorb`].
    pub(super) fn into_spans(self) -> HashMap<u64, Vec<Span>> {
        self.spans
    }

    /// Remembers an item of `len` clock ticks at `id`, `container` types deep.
    pub(super) fn record(&mut self, id: StructId, len: u32, container: usize, is_type: bool) {
        if container == 0 {
            return;
        }
        let span = Span {
            start: id.clock,
            end: id.clock.saturating_add(len),
            container,
            is_type,
        };
        let spans = self.spans.entry(id.client).or_default();
        match spans.last_mut() {
            // Consecutive characters or values in the same type collapse into one span.
            Some(last)
                if !is_type
                    && !last.is_type
                    && last.end == span.start
                    && last.container == container =>
            {
                last.end = span.end;
            }
            _ => spans.push(span),
        }
    }

    /// Container depth of the children of the type whose item is `parent`.
    pub(super) fn type_depth(&self, parent: StructId) -> usize {
        match self.find(parent) {
            Some(span) if span.is_type => span.container + 1,
            // A type that already exists (or an invalid parent, which yrs refuses): at least
            // a root type's children.
            _ => 1,
        }
    }

    /// Container depth of an item next to `origin`.
    pub(super) fn container(&self, origin: StructId) -> usize {
        self.find(origin).map_or(0, |span| span.container)
    }

    fn find(&self, id: StructId) -> Option<&Span> {
        self.find_here(id)
            .or_else(|| self.known.and_then(|known| known.find(id)))
    }

    fn find_here(&self, id: StructId) -> Option<&Span> {
        let spans = self.spans.get(&id.client)?;
        let after = spans.partition_point(|span| span.start <= id.clock);
        let span = spans.get(after.checked_sub(1)?)?;
        (id.clock < span.end).then_some(span)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(client: u64, clock: u32) -> StructId {
        StructId { client, clock }
    }

    #[test]
    fn follows_parents_and_origins_seen_before() {
        let mut depths = TypeDepths::default();
        // A map at the root (container 0) is not stored; its children are 1 deep either way.
        depths.record(id(1, 0), 1, 0, true);
        assert_eq!(depths.type_depth(id(1, 0)), 1);
        // A nested map at depth 1, and text of 5 characters inside it.
        depths.record(id(1, 1), 1, 1, true);
        assert_eq!(depths.type_depth(id(1, 1)), 2);
        depths.record(id(1, 2), 5, 2, false);
        depths.record(id(1, 7), 3, 2, false);
        assert_eq!(depths.container(id(1, 9)), 2);
        assert_eq!(depths.container(id(1, 10)), 0);
        assert_eq!(depths.spans[&1].len(), 2, "adjacent text merged");
    }

    #[test]
    fn an_index_carries_depths_from_one_update_to_the_next() {
        let mut index = DocIndex::default();
        let mut first = TypeDepths::default();
        first.record(id(1, 0), 1, 1, true);
        first.record(id(1, 1), 2, 2, false);
        index.absorb_spans(first.into_spans());
        let mut second = TypeDepths::with_known(Some(&index));
        assert_eq!(second.type_depth(id(1, 0)), 2);
        assert_eq!(second.container(id(1, 2)), 2);
        second.record(id(1, 3), 4, 2, false);
        index.absorb_spans(second.into_spans());
        assert_eq!(index.len(), 2, "typing on merges into the run before");
    }

    #[test]
    fn unknown_references_are_as_shallow_as_possible() {
        let depths = TypeDepths::default();
        assert_eq!(depths.type_depth(id(9, 9)), 1);
        assert_eq!(depths.container(id(9, 9)), 0);
    }
}

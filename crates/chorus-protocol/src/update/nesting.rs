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

use std::collections::HashMap;

use super::StructId;

/// Clock ranges of one client's structs that sit below the root level.
#[derive(Debug, Clone, Copy)]
struct Span {
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
#[derive(Debug, Default)]
pub(super) struct TypeDepths {
    spans: HashMap<u64, Vec<Span>>,
}

impl TypeDepths {
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
    fn unknown_references_are_as_shallow_as_possible() {
        let depths = TypeDepths::default();
        assert_eq!(depths.type_depth(id(9, 9)), 1);
        assert_eq!(depths.container(id(9, 9)), 0);
    }
}

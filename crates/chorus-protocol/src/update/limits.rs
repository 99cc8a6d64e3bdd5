//! What one update may contain ([`UpdateLimits`]) and what an accepted one contains
//! ([`UpdateSummary`]).

#[allow(unused_imports)] // for the documentation's links
use super::{UpdateError, split_update_v1, validate_update_v1, validate_update_v1_in};

/// Default for [`UpdateLimits::max_clients`].
///
/// Every browser session is a fresh client id, so a long-lived document's full state (uploaded
/// when a client's offline copy meets a server that lacks it) can name thousands. Fake ids are
/// free for an attacker and integration is quadratic in conflicting ones: 40 000 ids cost
/// yrs ~8 s, 4 096 about 1/100 of that.
pub const DEFAULT_MAX_CLIENTS: usize = 4096;

/// Default for [`UpdateLimits::max_any_depth`]: the depth to which yrs can read JSON at all
/// (serde_json stops at 128 levels, so a deeper embed or format value fails in yrs whatever we
/// allow), far beyond what application data nests, and still ≈50 times below the ≈6 200
/// levels where yrs' recursive `Any` decoder overflows a 2 MiB stack.
pub const DEFAULT_MAX_ANY_DEPTH: usize = 128;

/// Default for [`UpdateLimits::max_type_depth`]. Rich-text editors nest shared types (list in
/// list item in list …, table → row → cell → paragraph → text) a few dozen levels at most;
/// yrs' recursive `to_json` and delete fail near 4 000 levels on a 2 MiB stack, 30 times this.
pub const DEFAULT_MAX_TYPE_DEPTH: usize = 128;

/// What a single update may contain. [`UpdateLimits::default`] suits a y-websocket server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpdateLimits {
    /// Most distinct client ids the update may mention, structs and delete set together.
    pub max_clients: usize,
    /// Deepest nesting of arrays/maps inside one `Any` value (item content, sub-document
    /// options), and of JSON arrays/objects in embeds and formatting attributes. `[[1]]` is 2.
    pub max_any_depth: usize,
    /// Deepest nesting of shared types (a map inside an array inside a map …), counted from the
    /// root, that the update itself creates. Types nested under types that already exist in the
    /// document, or under items later in the same update, count as if their unknown parent
    /// were a root type: the check never over-counts, so it never refuses a legitimate update,
    /// but a server wanting a hard bound must also check the document, which
    /// [`validate_update_v1_in`] does.
    pub max_type_depth: usize,
    /// Whether items must have origins their writer could have known (none of its own client
    /// at or past its own clock: [`UpdateError::InconsistentOrigins`]), and origins of one
    /// client that contradict the document's order are counted
    /// ([`UpdateSummary::origins_out_of_order`]). On for what clients send.
    /// Off for state the server already holds and re-reads only to index it: yrs collects
    /// content itself while applying (an item whose parent is not a type, say), and its
    /// encoding may then show a live item next to that garbage (`fuzz/FUZZING.md`, finding 12).
    pub check_origins: bool,
}

impl Default for UpdateLimits {
    fn default() -> Self {
        Self {
            max_clients: DEFAULT_MAX_CLIENTS,
            max_any_depth: DEFAULT_MAX_ANY_DEPTH,
            max_type_depth: DEFAULT_MAX_TYPE_DEPTH,
            check_origins: true,
        }
    }
}

/// The id of one struct: the client that wrote it and its first clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct StructId {
    /// Client id (below 2^53).
    pub client: u64,
    /// Clock of the struct's first element.
    pub clock: u32,
}

/// What an accepted update contains, counted during validation.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UpdateSummary {
    /// Distinct client ids in the structs and the delete set together.
    pub clients: usize,
    /// Client ids that carry structs (the clients of the update's state vector).
    pub struct_clients: usize,
    /// Structs of every kind (items, GC, Skip).
    pub structs: usize,
    /// Delete-set ranges.
    pub delete_ranges: usize,
    /// Skip structs: gap markers, which merged updates write where clocks are missing. yrs
    /// integrates what follows a gap at once (Yjs would keep it pending), so a document that
    /// takes one can hold content no replica built from its state has.
    pub skips: usize,
    /// Client sections that start past the document's clock for their client: they must wait
    /// for the clocks between (counted only by [`validate_update_v1_in`] with the document's
    /// clocks; see [`split_update_v1`]).
    pub gaps: usize,
    /// The first struct in wire order that is not a Skip (a gap marker in merged updates), if
    /// any. A single-client edit keeps this id when the server re-encodes it for relaying, so
    /// an observer (e.g. the load tester) can match a delivered update to the edit it sent.
    pub first_struct: Option<StructId>,
    /// Items whose two origins, of one client, are not neighbours in the order the document
    /// and this update fix for that client's clocks: the right origin left of the left one, the
    /// same id as both, or clocks of the run between them (counted only by
    /// [`validate_update_v1_in`]; see the `joins` module). Not refused: Yjs' `UndoManager`
    /// writes them when it restores a deleted type whose content an earlier undo had restored
    /// (`tests/honest/README.md`). yrs and Yjs place such an item by scanning right of its left
    /// origin for a right origin that is not there, so where it lands can depend on what the
    /// document already holds; a server may check such an update's effect (the room against a
    /// replica of its state).
    pub origins_out_of_order: usize,
}

impl UpdateSummary {
    /// True for an update that changes nothing (`00 00`).
    pub fn is_empty(&self) -> bool {
        self.structs == 0 && self.delete_ranges == 0
    }

    /// True when the update skips clocks, inside (Skip structs) or past the document's clock
    /// (`gaps`): yrs would integrate what follows the hole at once, where Yjs keeps it waiting,
    /// so [`split_update_v1`] cuts it into what can be applied now and what has to wait.
    pub fn skips_clocks(&self) -> bool {
        self.skips > 0 || self.gaps > 0
    }
}

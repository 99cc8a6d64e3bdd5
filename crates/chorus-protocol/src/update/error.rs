//! Why an update was refused.

use std::fmt;

use crate::ProtocolError;

/// The two parts of an update that list client ids.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Section {
    /// The structs (inserted content), one section per client.
    Structs,
    /// The delete set, one entry per client.
    DeleteSet,
}

impl fmt::Display for Section {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Section::Structs => "structs",
            Section::DeleteSet => "delete set",
        })
    }
}

/// A refused update. Apart from the [policy](UpdateError::is_policy) variants, every one means
/// bytes no Yjs or yrs encoder writes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UpdateError {
    /// Truncation, a varint longer than lib0 allows, invalid UTF-8, or bytes after the delete
    /// set ([`ProtocolError::TrailingBytes`], which is also how v2 updates usually fail).
    #[error("malformed update: {0}")]
    Malformed(#[from] ProtocolError),
    /// A client id of 2^53 or more: JavaScript cannot represent it and yrs would mask it onto
    /// another client's id.
    #[error("client id is 2^53 or larger")]
    ClientIdTooLarge,
    /// A clock, length or count above `u32::MAX`, where yrs would silently wrap it.
    #[error("{what} does not fit in 32 bits")]
    IntegerTooLarge {
        /// Which field.
        what: &'static str,
    },
    /// A declared count larger than the remaining input could hold.
    #[error("{count} {what} announced but only {remaining} bytes follow")]
    CountTooLarge {
        /// What was counted.
        what: &'static str,
        /// The declared count.
        count: u64,
        /// Bytes left at that point.
        remaining: usize,
    },
    /// A client section with no structs; encoders only write clients that have some.
    #[error("client {client} has an empty struct section")]
    EmptyClientSection {
        /// The client.
        client: u64,
    },
    /// The same client twice in one section: Yjs and yrs disagree on what that means (Yjs keeps
    /// the last struct section and appends delete ranges; yrs appends structs and keeps the
    /// last delete entry), so accepting it would fork the document.
    #[error("client {client} appears twice in the {section}")]
    DuplicateClient {
        /// The client.
        client: u64,
        /// Where.
        section: Section,
    },
    /// More distinct client ids than [`UpdateLimits::max_clients`](super::UpdateLimits).
    #[error("more than {limit} distinct client ids")]
    TooManyClients {
        /// The configured limit.
        limit: usize,
    },
    /// An info byte that is not GC (0), Skip (10) or an item with content kind 1..=9.
    #[error("unknown struct kind (info byte {info:#04x})")]
    UnknownStructKind {
        /// The info byte.
        info: u8,
    },
    /// A content kind that Yjs and yrs decode differently, so the server and its clients would
    /// read different documents: legacy JSON content (kind 2), which yrs 0.28.1 reads with one
    /// string more than its count says and Yjs 13 no longer writes.
    #[error("unsupported content kind {kind}: {reason}")]
    UnsupportedContent {
        /// The content kind (`info & 0x1f`).
        kind: u8,
        /// Why it is refused.
        reason: &'static str,
    },
    /// An item's parent marker is neither 0 (parent by id) nor 1 (root type by name).
    #[error("invalid parent info {0}")]
    InvalidParentInfo(u64),
    /// A shared-type reference other than Array, Map, Text, XmlElement, XmlFragment, XmlHook or
    /// XmlText: weak links (7) and yrs' sub-document (9) and undefined (15) refs, which Yjs
    /// cannot read, and unknown refs. (XmlHook (5) is accepted with its hook name, which the
    /// vendored yrs reads as Yjs does: 0.28.1 as published did not, see
    /// `vendor/yrs/CHORUS-PATCHES.md`.)
    #[error("unsupported shared type ref {0}")]
    UnsupportedTypeRef(u8),
    /// A lib0 `Any` value with an unknown tag byte.
    #[error("unknown Any tag {0}")]
    UnknownAnyTag(u8),
    /// A struct whose content has length 0 (yrs drops it without advancing the clock, Yjs keeps
    /// it; yrs issue #386 crashed on them).
    #[error("empty struct from client {client} at clock {clock}")]
    EmptyStruct {
        /// Its client.
        client: u64,
        /// Its clock.
        clock: u32,
    },
    /// An item whose origins no Yjs client could have written: an origin of its own client at
    /// or past its own clock (origins are items that existed when it was created, and a
    /// client's earlier items have lower clocks). Left = right origin, which Yjs' redo writes,
    /// is accepted (`chorus-protocol/RULES.md`).
    #[error("item from client {client} at clock {clock} has inconsistent origins")]
    InconsistentOrigins {
        /// Its client.
        client: u64,
        /// Its clock.
        clock: u32,
    },
    /// An item whose two origins, of one client, lie past what the document holds: yrs would
    /// keep it waiting for them and integrate it later, when nothing checks their order any
    /// more (see [`UpdateError::InconsistentOrigins`]). Honest clients meet this only out of
    /// step (an edit arriving before the content it sits in), so a server should hold such an
    /// update until the document reaches `needs_clock` for `needs_client`, then check it
    /// again, not refuse it.
    #[error(
        "item from client {client} at clock {clock} has origins the document does not hold yet"
    )]
    OriginsAheadOfDocument {
        /// Its client.
        client: u64,
        /// Its clock.
        clock: u32,
        /// The client of its two origins.
        needs_client: u64,
        /// The clock the document must reach for that client before the item can be checked.
        needs_clock: u32,
    },
    /// A struct that would end past clock 2^31 − 1 ([`MAX_STRUCT_CLOCK`](super::MAX_STRUCT_CLOCK)):
    /// past 2^32 yrs wraps the clock, and from 2^31 on it misreads the struct's offset; either
    /// way it panics while integrating and leaves a freed block linked into the document.
    #[error(
        "struct from client {client} at clock {clock} with length {len} ends past the largest clock"
    )]
    ClockOverflow {
        /// Its client.
        client: u64,
        /// Its first clock.
        clock: u32,
        /// Its length.
        len: u32,
    },
    /// A delete range of length 0.
    #[error("empty delete range for client {client} at clock {clock}")]
    EmptyDeleteRange {
        /// Its client.
        client: u64,
        /// Its clock.
        clock: u32,
    },
    /// A delete range that ends past clock 2^32 − 1 (yrs wraps it into an inverted range).
    #[error("delete range of client {client} at clock {clock} with length {len} overflows")]
    DeleteRangeOverflow {
        /// Its client.
        client: u64,
        /// Its first clock.
        clock: u32,
        /// Its length.
        len: u32,
    },
    /// An `Any` value nested deeper than [`UpdateLimits::max_any_depth`](super::UpdateLimits).
    #[error("Any value nested deeper than {limit}")]
    AnyTooDeep {
        /// The configured limit.
        limit: usize,
    },
    /// Embed or formatting JSON nested deeper than
    /// [`UpdateLimits::max_any_depth`](super::UpdateLimits).
    #[error("JSON nested deeper than {limit}")]
    JsonTooDeep {
        /// The configured limit.
        limit: usize,
    },
    /// Shared types nested deeper than [`UpdateLimits::max_type_depth`](super::UpdateLimits).
    #[error("shared types nested deeper than {limit}")]
    TypeTooDeep {
        /// The configured limit.
        limit: usize,
    },
}

impl UpdateError {
    /// The rule that refused the update, as a short stable name for close reasons, logs and
    /// metric labels (`crates/chorus-protocol/RULES.md` explains each).
    pub fn rule(&self) -> &'static str {
        match self {
            UpdateError::Malformed(_) => "malformed",
            UpdateError::ClientIdTooLarge => "client_id_too_large",
            UpdateError::IntegerTooLarge { .. } => "integer_too_large",
            UpdateError::CountTooLarge { .. } => "count_too_large",
            UpdateError::EmptyClientSection { .. } => "empty_client_section",
            UpdateError::DuplicateClient { .. } => "duplicate_client",
            UpdateError::TooManyClients { .. } => "too_many_clients",
            UpdateError::UnknownStructKind { .. } => "unknown_struct_kind",
            UpdateError::UnsupportedContent { .. } => "unsupported_content",
            UpdateError::InvalidParentInfo(_) => "invalid_parent_info",
            UpdateError::UnsupportedTypeRef(_) => "unsupported_type_ref",
            UpdateError::UnknownAnyTag(_) => "unknown_any_tag",
            UpdateError::EmptyStruct { .. } => "empty_struct",
            UpdateError::InconsistentOrigins { .. } => "inconsistent_origins",
            UpdateError::OriginsAheadOfDocument { .. } => "origins_ahead_of_document",
            UpdateError::ClockOverflow { .. } => "clock_overflow",
            UpdateError::EmptyDeleteRange { .. } => "empty_delete_range",
            UpdateError::DeleteRangeOverflow { .. } => "delete_range_overflow",
            UpdateError::AnyTooDeep { .. } => "any_too_deep",
            UpdateError::JsonTooDeep { .. } => "json_too_deep",
            UpdateError::TypeTooDeep { .. } => "type_too_deep",
        }
    }

    /// True when the update is well-formed but exceeds an [`UpdateLimits`](super::UpdateLimits)
    /// bound rather than being malformed.
    pub fn is_limit(&self) -> bool {
        matches!(
            self,
            UpdateError::TooManyClients { .. }
                | UpdateError::AnyTooDeep { .. }
                | UpdateError::JsonTooDeep { .. }
                | UpdateError::TypeTooDeep { .. }
        )
    }

    /// True when the update is well-formed but refused by policy (WebSocket close code 1008)
    /// rather than malformed (1007): over a [limit](UpdateError::is_limit), or at odds with
    /// the document it was checked against (what only
    /// [`validate_update_v1_in`](super::validate_update_v1_in) with the document's clocks
    /// finds; a client out of step meets these too).
    pub fn is_policy(&self) -> bool {
        self.is_limit() || matches!(self, UpdateError::OriginsAheadOfDocument { .. })
    }
}
